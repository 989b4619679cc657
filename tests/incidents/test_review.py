"""The review generated from an incident's record: stages with the time spent in each, what customers were told on
which channel, queue protection, complaints linked by district and channel, the follow-ups, the lessons; as JSON
and as Markdown in Chinese and English."""

from __future__ import annotations

from gateway.security import mint_customer_token
from tests.handoff.conftest import SECRET
from tests.incidents.conftest import CHAOYANG, open_incident, rest, supervisor


async def test_the_review_has_the_record_counted(make_gateway, people):
    gw = await make_gateway()
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss, "acting")
    token = mint_customer_token("13800138000", SECRET)
    await rest(gw.base, "v1", "手机没信号了", token)
    await rest(gw.base, "v1", "转人工", token)
    await rest(gw.base, "v1", "投诉你们的信号太差", token)
    await rest(gw.base, "v2", "朝阳区网络信号很差")
    path = f"/api/incidents/{incident['id']}"
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
    assert "| 处置中 |" in zh and "- 劝阻转人工: 1" in zh and f"- {CHAOYANG}: 2" in zh and "提前储备油机" in zh
    status, en = await _text(boss, f"{path}/review?format=md&lang=en")
    assert "# Incident review" in en and "| acting |" in en and "Handoffs deflected: 1" in en
    assert (await boss.raw("GET", f"{path}/review?format=pdf"))[0] == 400
    assert (await boss.raw("GET", "/api/incidents/INC000/review"))[0] == 404


async def _text(boss, path: str) -> tuple[int, str]:
    async with boss.session.get(f"{boss.base}{path}") as resp:
        assert resp.headers["Content-Type"].startswith("text/markdown")
        return resp.status, await resp.text()
