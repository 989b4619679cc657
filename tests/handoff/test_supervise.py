"""Supervisors' tools over loopback: every live chat listed, a chat watched as it happens (its messages on the
supervisor's socket), a whisper the holding agent sees at once and the customer never, taking a chat over (the
agent is told, the customer hears who joined), the queue by skill with waiting times, and system outages — each
refused to agents (403 JSON)."""

from __future__ import annotations

import asyncio
import json
import time

from gateway.rkeys import deployment_keys
from tests.handoff.test_handoff import is_


def drained(client) -> list[dict]:
    out = []
    while not client.frames.empty():
        out.append(client.frames.get_nowait())
    return out


async def test_watch_whisper_and_take_over(make_gateway, people):
    gw = await make_gateway()
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    boss = people("agent", gw.base, "super1", "demo-super1")
    for a in (agent, boss):
        await a.login()
        await a.connect()
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("转人工")
    chat_id = (await agent.expect(is_("assigned")))["chat"]["id"]

    live = await boss.call("GET", "/api/live")
    assert [(c["id"], c["agent"], c["agent_name"]) for c in live["chats"]] == [(chat_id, "agent1", "王小明")]
    assert live["by_skill"] == [] and isinstance(live["outages"], list)

    assert boss.ws is not None
    await boss.ws.send_json({"type": "watch", "chat": chat_id})
    await asyncio.sleep(0.2)
    await customer.send("我的流量用完了")
    seen = await boss.expect(lambda f: f["type"] == "message" and f["chat"] == chat_id, timeout=3)
    assert seen["entry"]["text"] == "我的流量用完了" and seen["watched"]
    await agent.call("POST", f"/api/chats/{chat_id}/messages", {"text": "我帮您查一下"})
    assert (await boss.expect(lambda f: f["type"] == "message" and f["entry"].get("kind") == "agent"))["entry"][
        "text"] == "我帮您查一下"  # fmt: skip

    whisper = await boss.call("POST", f"/api/chats/{chat_id}/notes", {"text": "先看一下他的套餐余量"})
    assert whisper["entry"]["whisper"] is True
    got = await agent.expect(lambda f: f["type"] == "message" and f["entry"].get("kind") == "note", timeout=3)
    assert got["entry"]["text"] == "先看一下他的套餐余量" and got["entry"]["agent"] == "李主管"
    await asyncio.sleep(0.3)
    assert not any("套餐余量" in json.dumps(f, ensure_ascii=False) for f in drained(customer))

    status, body = await agent.raw("POST", f"/api/chats/{chat_id}/takeover")
    assert status == 403 and body["error_zh"]
    status, body = await agent.raw("GET", "/api/live")
    assert status == 403 and body["error_zh"]
    taken = await boss.call("POST", f"/api/chats/{chat_id}/takeover")
    assert taken["chat"]["agent"] == "super1"
    removed = await agent.expect(is_("chat_removed", chat=chat_id), timeout=3)
    assert removed["reason"] == "taken_over" and removed["by"] == "李主管"
    assert (await boss.expect(is_("assigned"), timeout=3))["chat"]["id"] == chat_id
    assert "李主管" in (await customer.expect(is_("agent_joined"), timeout=3))["text"]
    status, body = await agent.raw("POST", f"/api/chats/{chat_id}/messages", {"text": "还在吗"})
    assert status == 403  # no longer theirs
    status, body = await boss.raw("POST", f"/api/chats/{chat_id}/takeover")
    assert status == 409 and body["error_zh"]
    await boss.call("POST", f"/api/chats/{chat_id}/close", {"disposition": "resolved"})
    history = (await boss.call("GET", "/api/search?agent=agent1"))["results"]
    assert [h["agent"] for h in history] == ["super1"]  # both took part: found under either


async def test_an_agent_may_not_watch(make_gateway, people):
    gw = await make_gateway()
    agent = people("agent", gw.base, "agent2", "demo-agent2")
    await agent.login()
    await agent.connect()
    assert agent.ws is not None
    await agent.ws.send_json({"type": "watch", "chat": "abc"})
    error = await agent.expect(is_("error"), timeout=3)
    assert error["error_zh"] == "仅主管可以监听会话"


async def test_queue_by_skill_and_outages_for_supervisors(make_gateway, people, handoff_config, redis_client,
                                                        key_prefix):  # fmt: skip
    keys = deployment_keys(key_prefix)
    await redis_client.set(keys.handoff_alive(), time.time() - 40)  # the deployment was down for 40 s
    gw = await make_gateway(handoff_config.replace(push=False))
    boss = people("agent", gw.base, "super1", "demo-super1")
    await boss.login()
    await boss.connect()
    for phone, text in (("13800138001", "转人工"), ("13800138002", "转人工"), (None, "I want a human agent")):
        customer = people("customer", gw.base, phone)
        await customer.connect()
        await customer.send(text)
        await boss.expect(is_("queue_add"), timeout=5)
        await asyncio.sleep(0.3)
    queue = await boss.call("GET", "/api/queue")
    by_skill = {row["skill"]: row for row in queue["by_skill"]}
    assert by_skill["zh"]["waiting"] == 2 and by_skill["en"]["waiting"] == 1
    assert by_skill["zh"]["longest"] >= by_skill["en"]["longest"] >= 0.2
    (outage,) = queue["outages"]
    assert 35 <= outage["seconds"] <= 60
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    mine = await agent.call("GET", "/api/queue")
    assert "by_skill" not in mine and "outages" not in mine
    live = await boss.call("GET", "/api/live")
    assert live["outages"][0]["seconds"] == outage["seconds"]
    assert {r["skill"]: r["waiting"] for r in live["by_skill"]} == {s: r["waiting"] for s, r in by_skill.items()}
    assert all(r["longest"] >= by_skill[r["skill"]]["longest"] for r in live["by_skill"])  # waits grow


async def test_a_supervisor_on_another_process_watches_and_whispers(make_gateway, people):
    """The agent and the customer on one gateway process, the supervisor on another (same Redis)."""
    one, two = await make_gateway(), await make_gateway()
    agent = people("agent", one.base, "agent1", "demo-agent1")
    boss = people("agent", two.base, "super1", "demo-super1")
    for a in (agent, boss):
        await a.login()
        await a.connect()
    customer = people("customer", one.base)
    await customer.connect()
    await customer.send("转人工")
    chat_id = (await agent.expect(is_("assigned")))["chat"]["id"]
    assert boss.ws is not None
    await boss.ws.send_json({"type": "watch", "chat": chat_id})
    await asyncio.sleep(0.2)
    await customer.send("网速很慢")
    seen = await boss.expect(lambda f: f["type"] == "message" and f.get("watched"), timeout=3)
    assert seen["chat"] == chat_id and seen["entry"]["text"] == "网速很慢"
    await boss.call("POST", f"/api/chats/{chat_id}/notes", {"text": "问一下是几点开始慢的"})
    got = await agent.expect(lambda f: f["type"] == "message" and f["entry"].get("whisper"), timeout=3)
    assert got["entry"]["text"] == "问一下是几点开始慢的"
    await boss.ws.send_json({"type": "unwatch"})
    await asyncio.sleep(0.2)
    drained(boss)
    await customer.send("还在吗")
    await agent.expect(lambda f: f["type"] == "message" and f["entry"].get("text") == "还在吗", timeout=3)
    await asyncio.sleep(0.3)
    assert not any(f.get("watched") for f in drained(boss))  # no longer watching: nothing more
