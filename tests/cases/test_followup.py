"""The follow-up visit (回访) on the customer's own channel, on three channels: the web chat (WebSocket), Telegram
(python-telegram-bot against the local fake of the Bot API) and SMS (the HTTP provider's fake: no buttons, the
customer answers with digits). "Not solved" reopens the case (a new solution clock,
the customer told when); "solved" goes on to the satisfaction (five levels, 100 points) and a comment, and the
case is ``followed_up`` with the result kept for reports."""

from __future__ import annotations

import json
from typing import Any

from tests.cases.conftest import TICKET, bot, complain, drive
from tests.channels.conftest import (  # noqa: F401
    agents,
    eventually,
    gateways,
    http_sms,
    http_sms_sections,
    telegram_api,
    telegram_sections,
)
from tests.channels.test_sms import E164, text_in
from tests.channels.test_telegram import Chat, buttons


def followup_config(config: Any) -> Any:
    return config.replace(cases=config.cases.replace(followup_delay=0.0))


async def test_the_visit_on_the_web_chat_reopens_then_records_satisfaction(make_gateway, people, quiet_config,
                                                                           key_prefix, redis_client):  # fmt: skip
    gw = await make_gateway(followup_config(quiet_config))
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    customer = people("customer", gw.base)
    await customer.connect()
    ticket = await complain(customer, "我要投诉，家里信号差，电话总断")
    await drive(agent, ticket, "in_progress", "replied")
    await agent.call("POST", f"/api/cases/{ticket}/transition", {"to": "resolved", "reply": "基站已扩容"})
    resolved = await customer.expect(lambda f: "处理完毕" in f.get("text", ""), timeout=10)
    assert ticket in resolved["text"] and "基站已扩容" in resolved["text"]
    ask = await customer.expect(lambda f: "解决了吗" in f.get("text", ""), timeout=10)
    assert ticket in ask["text"] and [b["title"] for b in ask["buttons"]] == ["已解决", "未解决"]

    await customer.send(ask["buttons"][1]["payload"])  # 未解决
    reopened = await customer.expect(lambda f: bot(f) and "重新打开" in f.get("text", ""), timeout=10)
    assert ticket in reopened["text"] and "前给出新的解决方案" in reopened["text"]
    case = await agent.call("GET", f"/api/cases/{ticket}")
    assert case["status"] == "reopened" and case["reopens"] == 1 and case["followup"]["solved"] is False
    reopen = next(h for h in case["history"] if h.get("to") == "reopened")
    assert (reopen["by_kind"], reopen["by"]) == ("bot", "followup")

    await drive(agent, ticket, "in_progress", "replied", "resolved")
    ask = await customer.expect(lambda f: "解决了吗" in f.get("text", ""), timeout=10)
    await customer.send("投诉进度")  # something else first: the status, and the visit's question again
    status = await customer.expect(lambda f: bot(f) and "处理进度" in f.get("text", ""), timeout=10)
    assert ticket in status["text"] and "已解决" in status["text"] and "回访" not in status["text"]
    again = await customer.expect(lambda f: bot(f) and "解决了吗" in f.get("text", ""), timeout=10)
    assert [b["title"] for b in again["buttons"]] == ["已解决", "未解决"]
    await customer.send("1")  # typed, not tapped: solved
    score = await customer.expect(lambda f: bot(f) and "打分" in f.get("text", ""), timeout=10)
    assert [b["title"] for b in score["buttons"]] == ["非常满意", "满意", "一般", "不满意", "非常不满意"]
    await customer.send(score["buttons"][1]["payload"])  # 满意: 80
    await customer.expect(lambda f: bot(f) and "意见或建议" in f.get("text", ""), timeout=10)
    await customer.send("工程师很负责，电话 13912345678")
    thanks = await customer.expect(bot, timeout=10)
    assert "回访已完成" in thanks["text"]

    case = await agent.call("GET", f"/api/cases/{ticket}")
    assert case["status"] == "followed_up" and case["followup"]["solved"] is True
    assert case["followup"]["score"] == 80 and case["followup"]["level"] == "satisfied"
    assert "13912345678" not in case["followup"]["comment"] and case["followup"]["comment"].startswith("工程师很负责")
    assert [(h["by_kind"], h["by"]) for h in case["history"] if h.get("to") == "followed_up"] == [("bot", "followup")]
    stream = [json.loads(f[b"e"]) for _, f in await redis_client.xrange(f"{key_prefix}{{cases}}:events")]
    results = [(e["solved"], e.get("score")) for e in stream if e.get("event") == "followup"]
    assert results == [(False, None), (True, 80)]
    # the visit is over: its answer is not taken twice
    await customer.send(ask["buttons"][0]["payload"])
    assert "回访已经结束" in (await customer.expect(bot, timeout=10))["text"]


async def test_the_visit_on_telegram(gateways, telegram_api, agents, quiet_config):  # noqa: F811
    gw = await gateways(handoff=followup_config(quiet_config), **telegram_sections(telegram_api))
    me = Chat(gw, telegram_api, chat_id=987654321, lang="en")
    await me.say("I want to make a complaint: the mobile signal at home keeps dropping")
    ticket = await eventually(lambda: next((TICKET.search(m["text"]).group(0) for m in telegram_api.sent(me.chat_id)
                                            if TICKET.search(m["text"])), None))  # fmt: skip
    supervisor = agents(gw.base, "super1", "demo-super1")
    await supervisor.login()
    case = await supervisor.call("GET", f"/api/cases/{ticket}")
    assert case["channel"] == "telegram" and case["type"] == "network" and "987654321" not in json.dumps(case)
    before = len(telegram_api.sent(me.chat_id))
    await drive(supervisor, ticket, "in_progress", "replied", "resolved")
    sent = await telegram_api.wait_for("sendMessage", before + 3, chat_id=me.chat_id, timeout=10)
    replied, resolved, ask = sent[before:][:3]
    assert ticket in replied["text"] and "answer" in replied["text"] and "resolved" in resolved["text"]
    assert "follow-up" in ask["text"] and [t for t, _ in buttons(ask)] == ["Solved", "Not solved"]

    score = (await me.press(buttons(ask)[0][1]))[0]
    assert "rate" in score["text"] and buttons(score)[0][0] == "Very satisfied"
    comment = (await me.press(buttons(score)[0][1]))[0]  # very satisfied: 100
    assert "Skip" in [t for t, _ in buttons(comment)]
    thanks = (await me.say("skip"))[0]
    assert "follow-up is complete" in thanks["text"]
    case = await supervisor.call("GET", f"/api/cases/{ticket}")
    assert case["status"] == "followed_up" and case["followup"]["score"] == 100 and case["followup"]["solved"] is True
    assert case["followup"]["comment"] == ""
    status = (await me.say("complaint status"))[0]["text"]
    assert ticket in status and "followed up" in status


async def test_the_visit_by_sms_where_there_are_no_buttons(gateways, http_sms, agents, quiet_config):  # noqa: F811
    gw = await gateways(handoff=followup_config(quiet_config), **http_sms_sections(http_sms))
    await text_in(gw, http_sms, "我要投诉，营业厅多收了我的卡费")
    ack = (await http_sms.wait_messages(1))[0]["text"]
    ticket = TICKET.search(ack).group(0)
    supervisor = agents(gw.base, "super1", "demo-super1")
    await supervisor.login()
    case = await supervisor.call("GET", f"/api/cases/{ticket}")
    assert case["channel"] == "sms" and case["customer"] == "138****8000" and case["facts"]["district"] == "朝阳区"
    await drive(supervisor, ticket, "in_progress", "replied", "resolved")
    ask = await eventually(lambda: next((t for t in http_sms.sent_to(E164) if "解决了吗" in t), None), timeout=10)
    assert ticket in ask and "回复“1”已解决" in ask
    sent = len(http_sms.sent_to(E164))
    await text_in(gw, http_sms, "1")
    score = await eventually(lambda: http_sms.sent_to(E164)[sent:], timeout=10)
    assert "回复1–5" in score[0]
    await text_in(gw, http_sms, "2")  # 2 of 5: 40 points
    await eventually(lambda: any("哪里还需要改进" in t for t in http_sms.sent_to(E164)), timeout=10)
    await text_in(gw, http_sms, "跳过")
    await eventually(lambda: any("回访已完成" in t for t in http_sms.sent_to(E164)), timeout=10)
    case = await supervisor.call("GET", f"/api/cases/{ticket}")
    assert case["status"] == "followed_up" and case["followup"]["score"] == 40 and case["followup"]["solved"] is True
