"""Callback tasks over HTTP: while a customer's task is open their messages attach to it (the bot confirms), a
second request for a person adds to it instead of opening another (one open task per customer), a clear request
the bot answers itself is answered, and a task an agent has handled swallows nothing — the next "转人工" reaches
the agents."""

from __future__ import annotations

from tests.handoff.test_handoff import is_


def bot(frame: dict) -> bool:
    return frame.get("from") == "bot"


async def test_an_open_callback_task_takes_the_customers_messages_and_a_handled_one_takes_none(
    make_gateway, people, redis_client, key_prefix
):
    gw = await make_gateway()
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    await agent.call("POST", "/api/agent/status", {"status": "away"})  # nobody online: a callback task
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("转人工")
    offer = await customer.expect(bot)
    assert "留言" in offer["text"], offer
    await customer.send("宽带三天连不上了，光猫灯一直红")
    assert "留言已记录" in (await customer.expect(bot))["text"]
    await customer.send("我的宽带坏了")
    assert "已补充到您的留言" in (await customer.expect(bot))["text"]
    await customer.send("请晚上6点以后给我回电话")
    assert "已补充到您的留言" in (await customer.expect(bot))["text"]
    await customer.send("转人工")  # asking again adds to the open task, no second one
    await customer.expect(bot)
    await customer.send("查话费")  # a clear request the bot answers itself
    balance = await customer.expect(bot)
    assert "余额" in balance["text"] and "留言" not in balance["text"], balance
    await customer.send("还有，周末也可以打")
    assert "已补充到您的留言" in (await customer.expect(bot))["text"]

    (task,) = (await agent.call("GET", "/api/callbacks"))["callbacks"]
    assert [m["text"] for m in task["messages"]] == [
        "宽带三天连不上了，光猫灯一直红", "我的宽带坏了", "请晚上6点以后给我回电话", "转人工", "还有，周末也可以打"
    ]  # fmt: skip

    # an agent handles it; the customer's next request for a person goes to the agents, not to the closed task
    await agent.call("POST", "/api/agent/status", {"status": "online"})
    await agent.connect()
    await agent.call("POST", f"/api/callbacks/{task['id']}/done", {"note": "已回电"})
    await customer.send("转人工")
    await customer.expect(is_("agent_joined"))
    chat = (await agent.expect(is_("assigned")))["chat"]
    assert chat["reason"] == "request_human"
    (after,) = (await agent.call("GET", "/api/callbacks?all=1"))["callbacks"]
    assert len(after["messages"]) == 5 and after["handled"]["note"] == "已回电"


async def test_in_english_the_bot_confirms_the_addition(make_gateway, people, handoff_config):
    gw = await make_gateway(handoff_config.replace(days=()))  # outside service hours
    customer = people("customer", gw.base, None)
    await customer.connect()
    await customer.send("I want to talk to a human agent")
    assert "Leave a message" in (await customer.expect(bot))["text"]
    await customer.send("My internet has been down since Monday")
    assert "Your message is recorded" in (await customer.expect(bot))["text"]
    await customer.send("please call me back after 6pm")
    assert "Added to your message" in (await customer.expect(bot))["text"]
