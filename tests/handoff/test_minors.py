"""What an agent and a customer expect in small things: a chat an agent takes at once hears no queue place;
supervisors pull chats (pushed only when routing.yml says so); a poor survey rating is acknowledged with a way
back to a person, not thanked like a top one."""

from __future__ import annotations

import asyncio

from tests.handoff.test_handoff import is_


def bot(frame: dict) -> bool:
    return frame.get("from") == "bot"


def drained(client) -> list[dict]:
    out = []
    while not client.frames.empty():
        out.append(client.frames.get_nowait())
    return out


async def test_a_chat_an_agent_takes_at_once_hears_no_queue_place(make_gateway, people):
    gw = await make_gateway()
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    await agent.connect()
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("转人工")
    first = await customer.expect(bot)
    assert "排在第" not in first["text"] and "接通" in first["text"], first
    await customer.expect(is_("agent_joined"))
    await asyncio.sleep(0.3)
    assert not any("排在第" in f.get("text", "") or f.get("kind") == "queued" for f in drained(customer))


async def test_supervisors_pull_unless_configured_to_be_pushed(make_gateway, people, handoff_config):
    gw = await make_gateway()
    boss = people("agent", gw.base, "super1", "demo-super1")
    await boss.login()
    await boss.connect()
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("转人工")
    assert "排在第1位" in (await customer.expect(bot))["text"]
    chat_id = (await boss.expect(is_("queue_add")))["chat"]["id"]
    await asyncio.sleep(0.5)
    assert not any(f["type"] == "assigned" for f in drained(boss)), "a supervisor was pushed a chat"
    assert (await boss.call("POST", f"/api/chats/{chat_id}/accept"))["chat"]["agent"] == "super1"

    pushed = await make_gateway(handoff_config.replace(supervisors_push=True))
    boss2 = people("agent", pushed.base, "super1", "demo-super1")
    await boss2.login()
    await boss2.connect()
    other = people("customer", pushed.base, "13800138001")
    await other.connect()
    await other.send("转人工")
    assert (await boss2.expect(is_("assigned")))["chat"]["customer"] == "138****8001"


async def rate(gw, people, phone: str, score: str, comment: str) -> dict:
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    await agent.connect()
    customer = people("customer", gw.base, phone)
    await customer.connect()
    await customer.send("转人工")
    chat_id = (await agent.expect(is_("assigned")))["chat"]["id"]
    await agent.call("POST", f"/api/chats/{chat_id}/close", {"disposition": "resolved"})
    await customer.expect(lambda f: bot(f) and "打分" in f["text"])
    await customer.send(score)
    asked = await customer.expect(bot)
    await customer.send(comment)
    thanks = await customer.expect(bot)
    await agent.close()
    return {"asked": asked, "thanks": thanks}


async def test_a_poor_rating_is_acknowledged_and_offered_a_follow_up(make_gateway, people):
    gw = await make_gateway()
    poor = await rate(gw, people, "13800138000", "1", "等了很久也没解决")  # 非常不满意
    top = await rate(gw, people, "13800138001", "5", "很好")  # 非常满意
    assert "抱歉" in poor["asked"]["text"] and "抱歉" not in top["asked"]["text"]
    assert poor["thanks"]["text"] != top["thanks"]["text"]
    assert "跟进" in poor["thanks"]["text"] and poor["thanks"]["buttons"], poor
    assert not top["thanks"].get("buttons")


async def test_an_english_chat_hears_the_agents_english_name(make_gateway, people):
    gw = await make_gateway()
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    await agent.connect()
    customer = people("customer", gw.base, None)
    await customer.connect()
    await customer.send("I want to talk to a human agent")
    joined = await customer.expect(is_("agent_joined"))
    assert "Xiaoming Wang" in joined["text"] and "王小明" not in joined["text"], joined
    chat_id = (await agent.expect(is_("assigned")))["chat"]["id"]
    await agent.call("POST", f"/api/chats/{chat_id}/messages", {"text": "Hello, how can I help?"})
    assert (await customer.expect(lambda f: f.get("from") == "agent"))["agent"] == "Xiaoming Wang"


async def test_the_supervisors_load_table_follows_assignments_and_closes_at_once(make_gateway, people):
    gw = await make_gateway()
    boss, agent = people("agent", gw.base, "super1", "demo-super1"), people("agent", gw.base, "agent1", "demo-agent1")
    await boss.login()
    await agent.login()
    await agent.connect()
    await boss.connect()
    await asyncio.sleep(0.5)
    drained(boss)

    def load_of(name: str, load: int):
        return lambda f: f["type"] == "agents" and any(a["name"] == name and a["load"] == load for a in f["agents"])

    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("转人工")
    chat_id = (await agent.expect(is_("assigned")))["chat"]["id"]
    await boss.expect(load_of("agent1", 1), timeout=2)
    await agent.call("POST", f"/api/chats/{chat_id}/close", {"disposition": "resolved"})
    await boss.expect(load_of("agent1", 0), timeout=2)


async def test_away_is_kept_when_the_console_comes_back_after_going_offline(make_gateway, people, handoff_config,
                                                                            redis_client, key_prefix):  # fmt: skip
    gw = await make_gateway(handoff_config.replace(disconnect_grace=0.3, restart_grace=0))
    agent = people("agent", gw.base, "agent2", "demo-agent2")
    await agent.login()
    await agent.connect()
    await agent.call("POST", "/api/agent/status", {"status": "away"})
    await agent.disconnect()
    for _ in range(
        50
    ):  # the presence check finds the console gone: offline (read in Redis: a request is a sign of life)
        if await redis_client.hget(f"{key_prefix}{{handoff}}:presence:agent2", "status") == b"offline":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the agent never went offline")
    agent.frames = asyncio.Queue()
    agent.ws = await agent.session.ws_connect(f"{gw.base}/ws/agent")
    hello = await agent.ws.receive_json()
    assert hello["type"] == "hello" and hello["status"] == "away", hello
    assert (await agent.call("GET", "/api/agent/me"))["status"] == "away"
