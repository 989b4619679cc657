"""A complaint becomes a case: registered by the bot, analysed (type, severity, the customer's account facts) and
dispatched (department per type and region, a responsible agent) by the system, each step in the history with
who and when; a second complaint of the same customer links to the open case; the bot's complaint status answers
with the real stage and the next promised time."""

from __future__ import annotations

import json

from tests.cases.conftest import bot, complain


async def test_a_bot_complaint_is_registered_analysed_and_dispatched(make_gateway, people, quiet_config, key_prefix,
                                                                     redis_client):  # fmt: skip
    gw = await make_gateway(quiet_config)
    supervisor = people("agent", gw.base, "super1", "demo-super1")
    await supervisor.login()
    customer = people("customer", gw.base)
    await customer.connect()
    ticket = await complain(customer, "我要投诉，家里宽带三天都连不上网，信号太差了")
    case = await supervisor.call("GET", f"/api/cases/{ticket}")
    assert case["status"] == "dispatched" and case["type"] == "network" and case["source"] == "bot"
    assert case["customer"] == "138****8000" and "13800138000" not in json.dumps(case, ensure_ascii=False)
    assert case["facts"]["district"] == "朝阳区" and case["facts"]["tier"] == "gold" and case["facts"]["name"] == "张*"
    assert case["department"] == "network_ops" and case["assignee"] == "agent1" and case["severity"] == "medium"
    steps = [(h["from"], h["to"], h["by_kind"], h["by"]) for h in case["history"]]
    assert steps == [("", "registered", "bot", "webchat"), ("registered", "analysed", "system", "analysis"),
                     ("analysed", "dispatched", "system", "dispatch")]  # fmt: skip
    assert all(h["at"] >= case["created_at"] for h in case["history"])
    fr, sol = case["clocks"]
    assert fr["clock"] == "first_response" and round(fr["due_at"] - case["created_at"]) == 1800
    assert sol["clock"] == "solution" and round(sol["due_at"] - case["created_at"]) == 86400
    assert case["allowed"] == ["in_progress"]
    events = [json.loads(f[b"e"]) for _, f in await redis_client.xrange(f"{key_prefix}{{cases}}:events")]
    assert [e["to"] for e in events] == ["registered", "analysed", "dispatched"]

    # the same customer complains again while the case is open: linked, not registered twice
    await customer.send("我还要投诉，宽带还是不能用")
    linked = await customer.expect(bot, timeout=10)
    assert ticket in linked["text"] and "不会重复登记" in linked["text"]
    listed = (await supervisor.call("GET", "/api/cases"))["cases"]
    assert [c["ticket"] for c in listed] == [ticket]
    assert listed[0]["linked"][0]["text"] == "我还要投诉，宽带还是不能用"

    await customer.send("投诉进度")
    status = await customer.expect(bot, timeout=10)
    assert ticket in status["text"] and "已派单至处理部门" in status["text"] and "前与您联系" in status["text"]
