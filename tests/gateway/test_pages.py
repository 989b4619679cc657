"""Every HTML page opens in the language the request asks for, by one rule (``gateway.pages.ui_lang``): ``?lang=``
when it is zh or en, else English for a browser whose first language is English (any case, any region), else
Chinese. Served over HTTP by the real gateway."""

from __future__ import annotations

from typing import Any

import pytest

PAGES = ["/", "/agent", "/cases", "/incidents", "/reports", "/audit", "/nlu/review", "/docs"]
ZH, EN = '<html lang="zh-CN">', '<html lang="en">'


@pytest.mark.parametrize(
    ("query", "accept", "expected"),
    [
        ("", None, ZH),  # nothing asked: Chinese first
        ("", "en-US,en;q=0.9", EN),
        ("", "EN-GB", EN),  # the header's case does not matter
        ("", " en", EN),
        ("", "zh-CN,zh;q=0.9,en;q=0.8", ZH),  # English only as a second choice
        ("", "fr-FR", ZH),
        ("?lang=en", "zh-CN", EN),  # the query wins
        ("?lang=zh", "en-US", ZH),
        ("?lang=fr", "en-US", EN),  # a language the product does not have: the browser's
        ("?lang=fr", None, ZH),
    ],
)
async def test_every_page_opens_in_the_language_asked_for(client: Any, query: str, accept: str | None,
                                                          expected: str) -> None:  # fmt: skip
    headers = {"Accept-Language": accept} if accept is not None else {}
    for path in PAGES:
        resp = await client.get(path + query, headers=headers)
        assert resp.status == 200, path
        assert resp.content_type == "text/html", path
        assert expected in await resp.text(), (path, query, accept)
