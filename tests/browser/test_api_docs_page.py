"""/docs in real Chromium: the OpenAPI document as a page, under the gateway's CSP, readable at desktop and phone
widths, its contents linked, its language switchable."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser

pytestmark = pytest.mark.browser


async def test_docs_page_renders_every_operation_without_errors(browser: Browser, gateway_url: str,
                                                                 artifacts: Path) -> None:  # fmt: skip
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    await page.goto(f"{gateway_url}docs?lang=en")
    assert await page.title() == "API reference · Telecom customer-service gateway"
    paths = await page.eval_on_selector_all("article.op code.path", "els => els.map(e => e.textContent)")
    doc = await (await page.request.get(f"{gateway_url}openapi.json")).json()
    assert sorted(set(paths)) == sorted(doc["paths"])
    assert len(paths) == sum(len(item) for item in doc["paths"].values())
    # nothing wider than the window (a long schema scrolls inside its box)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.click("nav.toc a[href='#postWebhooksRestWebhook']")
    target = page.locator("#postWebhooksRestWebhook")
    await target.wait_for()
    assert await target.is_visible()
    assert "RestBody" in await target.inner_text()  # the body's Struct, resolved and linked
    await page.screenshot(path=str(artifacts / "api-docs-en.png"))
    await page.set_viewport_size({"width": 420, "height": 800})
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.click("a.lang")
    await page.wait_for_url("**/docs?lang=zh")
    assert "接口文档" in await page.locator("h1").inner_text()
    assert "发送客户消息" in await page.locator("#postWebhooksRestWebhook").inner_text()
    assert not problems, problems
    await page.close()
