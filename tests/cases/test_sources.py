"""Complaints from the other sources: an agent closing a chat with ``complaint_registered`` (the chat linked to the
new case, or to the customer's open one), an agent registering one for a callback task's customer or for a number
(phone, on-site), a second registration for the same customer linked; bad bodies are 4xx JSON."""

from __future__ import annotations

from tests.cases.conftest import bot, complain
from tests.handoff.test_handoff import is_


async def test_an_agent_closing_a_chat_as_complaint_registered_opens_a_case(make_gateway, people, quiet_config):
    gw = await make_gateway(quiet_config)
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    await agent.connect()
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("转人工")
    chat_id = (await agent.expect(is_("assigned"), timeout=10))["chat"]["id"]
    await customer.send("上次营业厅的人态度很差，我的号码13800138000被乱扣费")
    await agent.expect(is_("message", chat=chat_id))
    await agent.call("POST", f"/api/chats/{chat_id}/close", {"disposition": "complaint_registered"})
    (listed,) = (await agent.call("GET", "/api/cases"))["cases"]
    case = await agent.call("GET", f"/api/cases/{listed['ticket']}")
    assert case["source"] == "agent" and case["status"] == "dispatched" and case["assignee"] == "agent1"
    assert [c["id"] for c in case["chats"]] == [chat_id] and "13800138000" not in case["summary"]
    assert (case["history"][0]["by_kind"], case["history"][0]["by"]) == ("agent", "agent1")

    # the same customer's next chat closed the same way: linked to the open case, not a second one
    await customer.expect(lambda f: bot(f) and "打分" in f.get("text", ""), timeout=10)
    await customer.send("转人工")
    second = (await agent.expect(is_("assigned"), timeout=10))["chat"]["id"]
    await agent.call("POST", f"/api/chats/{second}/close", {"disposition": "complaint_registered"})
    (again,) = (await agent.call("GET", "/api/cases"))["cases"]
    case = await agent.call("GET", f"/api/cases/{again['ticket']}")
    assert again["ticket"] == listed["ticket"] and [c["id"] for c in case["chats"]] == list(
        dict.fromkeys([chat_id, second])
    )
    assert [h["event"] for h in case["history"] if h["kind"] == "event"] == ["linked"]


async def test_registered_by_an_agent_for_a_callback_task_or_a_number(make_gateway, people, quiet_config):
    gw = await make_gateway(quiet_config)
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    await agent.call("POST", "/api/agent/status", {"status": "away"})  # nobody online: a callback task
    customer = people("customer", gw.base, None)
    await customer.connect()
    await customer.send("转人工")
    await customer.expect(bot)
    await customer.send("办的套餐和宣传的不一样，请回电")
    await customer.expect(bot)
    (task,) = (await agent.call("GET", "/api/callbacks"))["callbacks"]
    body = {"callback": task["id"], "text": "套餐与宣传不符", "type": "business"}
    made = await agent.call("POST", "/api/cases", body, status=201)
    assert made["source"] == "callback" and made["channel"] == "webchat" and made["type"] == "business"
    assert made["department"] == "business" and made["history"][0]["by"] == "agent1"
    await customer.send("投诉进度")
    status = await customer.expect(bot, timeout=10)
    assert made["ticket"] in status["text"]

    by_phone = await agent.call("POST", "/api/cases", {"phone": "13800138004", "text": "营业员态度差",
                                                       "type": "service"}, status=201)  # fmt: skip
    assert by_phone["channel"] == "phone" and by_phone["customer"] == "138****8004" and by_phone["facts"]["district"]
    linked = await agent.call("POST", "/api/cases", {"phone": "13800138004", "text": "还是没人回电"})
    assert linked["linked"] is True and linked["ticket"] == by_phone["ticket"]
    for body, field in (({"text": "x"}, "callback"), ({"phone": "12ab", "text": "x"}, "phone"),
                        ({"phone": "13800138004", "text": ""}, "text"),
                        ({"phone": "13800138004", "text": "x", "type": "billing"}, "type")):  # fmt: skip
        status, error = await agent.raw("POST", "/api/cases", body)
        assert status == 400 and error["field"] == field and error["error_zh"], (body, error)
    assert (await agent.raw("POST", "/api/cases", {"callback": "CB2000010100001", "text": "x"}))[0] == 404


async def test_a_complaint_on_another_channel_of_the_same_number_links(make_gateway, people, quiet_config):
    gw = await make_gateway(quiet_config)
    web = people("customer", gw.base)
    await web.connect()
    ticket = await complain(web, "投诉：上网速度特别慢")
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    made = await agent.call("POST", "/api/cases", {"phone": "13800138000", "text": "电话里又投诉网速慢"})
    assert made["linked"] is True and made["ticket"] == ticket  # the same number: the same customer
