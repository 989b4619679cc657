"""History and search over loopback: a customer's earlier chats with people stay readable (read-only) after the
conversation goes to people again, are listed for the customer of a chat (same number on another web chat visitor,
tickets, survey scores), exported as text or JSON with numbers masked, and found by number (full digits only),
ticket, text, agent and dates — agents only what they may, supervisors all; no number in clear in any new key."""

from __future__ import annotations

import asyncio
import json

from gateway.privacy import mask_text
from gateway.rkeys import deployment_keys
from tests.handoff.test_handoff import is_

PHONE = "13800138000"


def bot(frame: dict) -> bool:
    return frame.get("from") == "bot"


async def served(gw, people, agent, phone: str | None, words: list[str], close: bool = True) -> tuple:
    """A customer asks for a person, says ``words``, the agent answers; the chat closes (unless not ``close``)."""
    customer = people("customer", gw.base, phone)
    await customer.connect()
    await customer.send("转人工")
    chat_id = (await agent.expect(is_("assigned")))["chat"]["id"]
    for text in words:
        await customer.send(text)
        shown = mask_text(text)  # the console shows numbers masked, as the log keeps them
        await agent.expect(lambda f, t=shown: f["type"] == "message" and f["entry"].get("text") == t)
    await agent.call("POST", f"/api/chats/{chat_id}/messages", {"text": "好的，已为您处理"})
    if close:
        await agent.call("POST", f"/api/chats/{chat_id}/close", {"disposition": "resolved"})
        await customer.expect(lambda f: bot(f) and "打分" in f["text"])
    return customer, chat_id


async def test_earlier_chats_stay_readable_listed_and_exported_masked(make_gateway, people):
    gw = await make_gateway()
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    await agent.connect()
    customer, chat_id = await served(gw, people, agent, PHONE, ["我的宽带断了，号码13800138000"])
    await customer.send("5")  # 非常满意: the score belongs to this chat
    await customer.expect(bot)
    await customer.send("谢谢")
    await customer.expect(bot)
    # the same conversation goes to people again: the record of the chat is replaced, its history is not
    await customer.send("转人工")
    again = (await agent.expect(is_("assigned")))["chat"]["id"]
    assert again == chat_id
    await customer.send("还有一个话费问题")
    await agent.expect(lambda f: f["type"] == "message" and f["entry"].get("text") == "还有一个话费问题")
    # the same number as another visitor: the same customer
    _other, other_id = await served(gw, people, agent, PHONE, ["another visitor, same number"])

    history = await agent.call("GET", f"/api/chats/{chat_id}/history")
    refs = [c["chat"] for c in history["conversations"]]
    assert refs == [other_id, chat_id], history  # newest first; the open chat is not history yet
    first = history["conversations"][1]
    assert first["customer"] == "138****8000" and first["agent"] == "agent1" and first["disposition"] == "resolved"
    assert first["score"] == 100 and history["surveys"][0]["score"] == 100
    assert PHONE not in json.dumps(history, ensure_ascii=False)

    detail = await agent.call("GET", f"/api/history/{first['id']}")
    texts = [e.get("text") for e in detail["transcript"]]
    assert detail["read_only"] and "我的宽带断了，号码138****8000" in texts and "好的，已为您处理" in texts
    assert "还有一个话费问题" not in texts  # the next chat of the conversation is not in this one

    async with agent.session.get(f"{gw.base}/api/history/{first['id']}/export?format=txt&lang=zh") as resp:
        assert resp.status == 200 and "attachment" in resp.headers["Content-Disposition"]
        text = await resp.text()
    assert "客户" in text and "坐席" in text and "已解决" in text and "满意度: 100" in text
    assert "138****8000" in text and PHONE not in text and "宽带断了" in text
    async with agent.session.get(f"{gw.base}/api/history/{first['id']}/export?format=json&lang=en") as resp:
        data = json.loads(await resp.text())
    assert data["labels"]["customer"] == "Customer" and PHONE not in json.dumps(data, ensure_ascii=False)
    assert any(line["kind_label"] == "Agent" for line in data["transcript"])
    status, bad = await agent.raw("GET", f"/api/history/{first['id']}/export?format=pdf")
    assert status == 400 and bad["field"] == "format" and bad["error_zh"]


async def test_who_may_read_history(make_gateway, people):
    gw = await make_gateway()
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    await agent.connect()
    _, chat_id = await served(gw, people, agent, PHONE, ["查一下话费"])
    episode = (await agent.call("GET", f"/api/search?phone={PHONE}"))["results"][0]["id"]
    other = people("agent", gw.base, "agent2", "demo-agent2")
    await other.login()
    status, body = await other.raw("GET", f"/api/history/{episode}")
    assert status == 403 and body["error_zh"], body
    status, body = await other.raw("GET", f"/api/chats/{chat_id}/history")
    assert status == 403 and body["error_zh"]
    status, body = await other.raw("GET", f"/api/history/{episode}/export?format=txt")
    assert status == 403 and body["error_zh"]
    assert (await other.call("GET", f"/api/search?phone={PHONE}"))["results"] == []  # not theirs
    status, body = await other.raw("GET", "/api/history/nope.1")
    assert status == 404 and body["error_zh"]
    status, body = await other.raw("GET", "/api/history/bad%20id")
    assert status == 400 and body["field"] == "episode"
    boss = people("agent", gw.base, "super1", "demo-super1")
    await boss.login()
    assert (await boss.call("GET", f"/api/history/{episode}"))["chat"] == chat_id
    anonymous = people("agent", gw.base, "nobody", "x")
    status, body = await anonymous.raw("GET", f"/api/history/{episode}")
    assert status == 401 and body["error_zh"]


async def test_search_by_number_ticket_text_agent_and_dates(make_gateway, people, redis_client, key_prefix):
    gw = await make_gateway()
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    await agent.connect()
    await served(gw, people, agent, PHONE, ["家里的宽带一直掉线"])
    await served(gw, people, agent, "13900139000", ["my roaming bill is wrong"])
    boss = people("agent", gw.base, "super1", "demo-super1")
    await boss.login()

    async def find(query: str) -> list[dict]:
        return (await boss.call("GET", f"/api/search?{query}"))["results"]

    by_phone = await find("phone=%2B86%20138-0013-8000")
    assert [r["customer"] for r in by_phone] == ["138****8000"] and "宽带" in by_phone[0]["snippet"]
    assert await find("phone=13800138") == []  # the full digits only
    assert [r["customer"] for r in await find("text=宽带")] == ["138****8000"]
    assert [r["customer"] for r in await find("text=roaming%20bill")] == ["139****9000"]
    assert await find("text=roaming%20refund") == []
    assert len(await find("agent=agent1")) == 2 and await find("agent=agent2") == []
    assert len(await find("from=2000-01-01&agent=agent1")) == 2
    assert await find("to=2000-01-01&agent=agent1") == []
    status, body = await boss.raw("GET", "/api/search")
    assert status == 400 and body["error_zh"]
    status, body = await boss.raw("GET", "/api/search?from=yesterday")
    assert status == 400 and body["field"] == "from"

    # no number in clear in any key the history added, nor in its records
    keys = deployment_keys(key_prefix)
    names = [k.decode() async for k in redis_client.scan_iter(match=f"{key_prefix}{{handoff}}:*")]
    assert not any(PHONE in n for n in names)
    for name in names:
        if name.startswith(keys.handoff_episode("")):
            record = {k.decode(): v.decode() for k, v in (await redis_client.hgetall(name)).items()}
            assert PHONE not in json.dumps(record, ensure_ascii=False)


async def test_a_ticket_is_found_and_listed_for_the_customer(make_gateway, people):
    gw = await make_gateway()
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    await agent.connect()
    customer = people("customer", gw.base, PHONE)
    await customer.connect()
    await customer.send("你们乱扣费太过分了，我要投诉到工信部！！")
    await customer.expect(lambda f: bot(f) and "投诉单号" in f["text"])
    assigned = await agent.expect(is_("assigned"), timeout=10)
    chat_id, ticket = assigned["chat"]["id"], assigned["chat"]["ticket"]
    assert ticket and ticket.startswith("TS")
    await agent.call("POST", f"/api/chats/{chat_id}/close", {"disposition": "complaint_registered"})
    await asyncio.sleep(0.1)
    history = await agent.call("GET", f"/api/chats/{chat_id}/history")
    assert [t["ticket"] for t in history["tickets"]] == [ticket]
    found = (await agent.call("GET", f"/api/search?ticket={ticket.lower()}"))["results"]
    assert [r["ticket"] for r in found] == [ticket]


async def test_an_agent_reads_the_history_of_a_customer_they_hold_now_and_only_then(make_gateway, people):
    gw = await make_gateway()
    first = people("agent", gw.base, "agent1", "demo-agent1")
    await first.login()
    await first.connect()
    customer, chat_id = await served(gw, people, first, PHONE, ["上个月的账单不对"])
    episode = (await first.call("GET", f"/api/chats/{chat_id}/history"))["conversations"][0]["id"]
    await first.call("POST", "/api/agent/status", {"status": "away"})
    second = people("agent", gw.base, "agent2", "demo-agent2")
    await second.login()
    await second.connect()
    status, _ = await second.raw("GET", f"/api/history/{episode}")
    assert status == 403  # not their customer (yet)
    await customer.send("5")
    await customer.expect(bot)
    await customer.send("谢谢")
    await customer.expect(bot)
    await customer.send("转人工")
    assert (await second.expect(is_("assigned")))["chat"]["id"] == chat_id
    listed = await second.call("GET", f"/api/chats/{chat_id}/history")
    assert [c["id"] for c in listed["conversations"]] == [episode]
    earlier = await second.call("GET", f"/api/history/{episode}")
    assert "上个月的账单不对" in [e.get("text") for e in earlier["transcript"]]
    await second.call("POST", f"/api/chats/{chat_id}/close", {"disposition": "resolved"})
    await asyncio.sleep(0.1)
    status, _ = await second.raw("GET", f"/api/history/{episode}")
    assert status == 403  # the customer is no longer theirs; their own chat with them still is
    mine = (await second.call("GET", "/api/search?agent=agent2"))["results"]
    assert len(mine) == 1 and (await second.call("GET", f"/api/history/{mine[0]['id']}"))["agent"] == "agent2"
