"""The review generated from an incident's record: stages with the time spent in each, what customers were told on
which channel and in which district, their sentiment, queue protection, complaints linked by district and channel,
the follow-ups, the satisfaction of the affected customers against the baseline, the lessons; as JSON, as Markdown
in Chinese and English, and as HTML."""

from __future__ import annotations

import itertools
import json
import time
from html.parser import HTMLParser

from gateway.rkeys import Keys
from gateway.security import mint_customer_token
from tests.handoff.conftest import SECRET
from tests.incidents.conftest import CHAOYANG, open_incident, rest, supervisor

SEQ = itertools.count(1)  # stream ids' sequence parts ("<ms>-*" is Redis 7; the embedded Redis is 6.2)


async def _survey(redis_client, key_prefix: str, at: float, conversation: str, score: int) -> None:
    """A survey score on the human side's stream, as ``handoff.surveys.Surveys.record`` writes it, at ``at``."""
    entry = {"conversation": conversation, "score": score, "channel": "rest", "at": at}
    await redis_client.xadd(
        Keys(key_prefix).handoff_surveys(), {"e": json.dumps(entry)}, id=f"{int(at * 1000)}-{next(SEQ)}"
    )


async def test_the_review_has_the_record_counted(make_gateway, people, redis_client, key_prefix):
    day = 86400
    for i, score in enumerate((100, 80, 60)):  # the baseline: surveys of the weeks before
        await _survey(redis_client, key_prefix, time.time() - (10 - i) * day, f"before-{i}", score)
    gw = await make_gateway()
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss, "acting")
    token = mint_customer_token("13800138000", SECRET)
    await rest(gw.base, "v1", "手机没信号了", token)
    await rest(gw.base, "v1", "转人工", token)
    await rest(gw.base, "v1", "投诉你们的信号太差", token)
    await rest(gw.base, "v2", "朝阳区网络信号很差")
    path = f"/api/incidents/{incident['id']}"
    conversations = {link["conversation"] for link in (await boss.call("GET", path))["links"]}
    assert len(conversations) == 2
    for conversation in conversations:  # the affected customers, asked after their chats
        await _survey(redis_client, key_prefix, time.time(), conversation, 40)
    await _survey(redis_client, key_prefix, time.time(), "not-affected", 100)
    await boss.call("POST", f"{path}/transition", {"to": "monitoring"})
    await boss.call("POST", f"{path}/transition", {"to": "closed"})
    await boss.call("POST", f"{path}/lessons", {"text": "基站备用电源不足；提前储备油机。"})
    data = await boss.call("GET", f"{path}/review")
    assert [s["stage"] for s in data["stages"]] == ["reported", "assessed", "plan", "acting", "monitoring", "closed"]
    assert all(s["seconds"] is not None and s["seconds"] >= 0 for s in data["stages"][:-1])
    assert data["stages"][-1]["seconds"] is None and data["to_close_seconds"] >= data["to_assess_seconds"] >= 0
    counters = data["counters"]
    assert counters["notices"] == 4 and counters["deflected"] == 1 and counters["complaints"] == 2
    assert counters["linked"] == 2
    assert data["notices_by_channel"] == {"rest": 4}
    assert data["linked_by_district"] == {CHAOYANG: 2} and data["linked_by_channel"] == {"rest": 2}
    assert data["lessons"] == "基站备用电源不足；提前储备油机。"
    status, zh = await _text(boss, f"{path}/review?format=md")
    assert status == 200 and zh.startswith(f"# 事件总结报告: {incident['id']}")
    assert data["districts"] == [{"district": CHAOYANG, "affected": True, "inbound_last_hour": 0, "notices": 4,
                                  "linked": 2}]  # fmt: skip
    mood = data["sentiment"]
    assert mood["total"] == 4 and mood["annoyed"] >= 1 and 0 < mood["negative_share"] < 1  # "信号太差": annoyed
    assert data["satisfaction"] == {"affected": {"surveys": 2, "mean": 40.0, "satisfied_share": 0.0},
                                    "baseline": {"surveys": 3, "mean": 80.0, "satisfied_share": 0.667},
                                    "difference": -40.0}  # fmt: skip
    assert "| 处置中 |" in zh and "- 劝阻转人工: 1" in zh and f"| {CHAOYANG} | 4 | 2 |" in zh and "提前储备油机" in zh
    assert "受影响客户：2 份评价，平均 40.0" in zh and "差值：-40" in zh and "负面占比" in zh
    status, en = await _text(boss, f"{path}/review?format=md&lang=en")
    assert "# Incident review" in en and "| acting |" in en and "Handoffs deflected: 1" in en
    assert "Affected customers: 2 surveys, mean 40.0" in en and "Difference: -40" in en
    page = await _text(boss, f"{path}/review?format=html&lang=en", "text/html")
    found = _Html()
    found.feed(page[1])
    assert page[0] == 200 and found.title.startswith(f"Incident review: {incident['id']}")
    assert "Stages" in found.headings and "Lessons" in found.headings and ["acting"] in [row[:1] for row in found.cells]
    assert "<script" not in page[1]
    assert (await boss.raw("GET", f"{path}/review?format=pdf"))[0] == 400
    assert (await boss.raw("GET", "/api/incidents/INC000/review"))[0] == 404


async def _text(boss, path: str, kind: str = "text/markdown") -> tuple[int, str]:
    async with boss.session.get(f"{boss.base}{path}") as resp:
        assert resp.headers["Content-Type"].startswith(kind)
        return resp.status, await resp.text()


class _Html(HTMLParser):
    """The review page's title, headings and table rows, as a browser parses them."""

    def __init__(self) -> None:
        super().__init__()
        self.title, self.headings, self.cells, self._in = "", [], [], ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._in = tag
        if tag == "tr":
            self.cells.append([])

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
        elif self._in in ("h2", "h3"):
            self.headings.append(data)
        elif self._in in ("td", "th") and self.cells:
            self.cells[-1].append(data)
