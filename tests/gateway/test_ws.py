"""The customer WebSocket /ws/chat: frames, replay after reconnect, origin and token checks,
and delivery across two gateway processes sharing one Redis."""

from __future__ import annotations

import asyncio
import json
import re
import time

import aiohttp
import pytest

from gateway.app import create_app
from gateway.channels.webchat import WEBCHAT
from gateway.models import InboundMessage


async def frames_until(ws, predicate, limit=20, timeout=5.0):
    seen = []
    async with asyncio.timeout(timeout):
        while len(seen) < limit:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            frame = json.loads(msg.data)
            seen.append(frame)
            if predicate(frame):
                return seen
    raise AssertionError(f"no matching frame in {seen}")


def bot_reply(frame):
    return frame.get("type") == "message" and frame.get("from") == "bot"


async def test_message_echo_and_bot_reply(client):
    async with client.ws_connect("/ws/chat?visitor_id=w1&lang=zh") as ws:
        hello = json.loads((await ws.receive()).data)
        # a visitor id is the server's own (signed), never one the client picked
        assert hello["type"] == "hello" and hello["last_seq"] == 0
        assert re.fullmatch(r"[0-9a-f]{32}\.[0-9a-f]{20}", hello["visitor_id"])
        await ws.send_json({"type": "message", "text": "你好", "client_id": "c-1", "lang": "zh"})
        seen = await frames_until(ws, bot_reply)
    echo = next(f for f in seen if f.get("from") == "customer")
    assert echo["client_id"] == "c-1" and echo["text"] == "你好"
    reply = seen[-1]
    assert reply["seq"] > echo["seq"]
    assert "您好" in reply["text"] and reply["buttons"]


async def test_quick_reply_display_text_is_echoed(client):
    async with client.ws_connect("/ws/chat?visitor_id=w2") as ws:
        await ws.receive()
        await ws.send_json(
            {"type": "message", "text": "/query_data_usage", "display": "查流量", "client_id": "c-2", "lang": "zh"}
        )
        seen = await frames_until(ws, bot_reply)
    assert any(f.get("from") == "customer" and f["text"] == "查流量" for f in seen)
    assert "流量" in seen[-1]["text"]


async def test_reconnect_replays_what_was_missed(client):
    async with client.ws_connect("/ws/chat") as ws:
        w3 = json.loads((await ws.receive()).data)["visitor_id"]
        await ws.send_json({"type": "message", "text": "查一下余额", "client_id": "c-3"})
        await ws.send_json({"type": "message", "text": "还有流量", "client_id": "c-4"})
        # close at once: both messages are still handled and kept for the visitor
    await asyncio.sleep(0)
    async with client.ws_connect(f"/ws/chat?visitor_id={w3}&last_seq=0") as ws:
        await ws.receive()
        seen = await frames_until(ws, lambda f: f.get("seq") == 4)
    assert [f["seq"] for f in seen] == [1, 2, 3, 4]
    assert [f["from"] for f in seen] == ["customer", "bot", "customer", "bot"]
    async with client.ws_connect(f"/ws/chat?visitor_id={w3}&last_seq=2") as ws:
        await ws.receive()
        seen = await frames_until(ws, lambda f: f.get("seq") == 4)
    assert [f["seq"] for f in seen] == [3, 4]


async def test_bad_frames_get_error_frames(client):
    async with client.ws_connect("/ws/chat?visitor_id=w4") as ws:
        await ws.receive()
        for bad, needle in [
            ("not json", "not valid JSON"),
            ("[1]", "object"),
            ('{"type": "message", "text": "\\ud800"}', "not valid JSON"),
            ('{"type": "message", "text": ["x"]}', "text"),
            ('{"type": "message", "text": "hi", "client_id": {"a": 1}}', "client_id"),
            ('{"type": "dance"}', "unknown frame"),
            ('{"type": "message", "text": ""}', "empty"),
            (json.dumps({"type": "message", "text": "x" * 1001}), "too long"),
        ]:
            await ws.send_str(bad)
            frame = json.loads((await ws.receive()).data)
            assert frame["type"] == "error" and needle in frame["error"], (bad, frame)


async def test_foreign_origin_is_refused(client):
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/ws/chat", headers={"Origin": "https://evil.example"})
    assert info.value.status == 403
    resp = await client.get("/ws/chat", headers={"Origin": "https://evil.example"})
    assert resp.status == 403 and "not allowed" in (await resp.json())["error"]


async def test_configured_origin_is_allowed(aiohttp_client, make_settings, nlu_engine):
    settings = make_settings(webchat={"allowed_origins": ("https://shop.example",)})
    client = await aiohttp_client(create_app(settings, nlu=nlu_engine))
    async with client.ws_connect("/ws/chat?visitor_id=w5", headers={"Origin": "https://shop.example"}) as ws:
        assert json.loads((await ws.receive()).data)["type"] == "hello"


async def test_forged_token_is_refused_before_upgrade(client):
    resp = await client.get("/ws/chat?token=abc.def.ghi")
    assert resp.status == 401
    assert "error" in await resp.json()


async def test_cookie_from_the_page_identifies_the_visitor(client):
    page = await client.get("/")
    assert page.status == 200
    cookie = page.cookies["gw_vid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    async with client.ws_connect("/ws/chat") as ws:
        hello = json.loads((await ws.receive()).data)
    assert hello["visitor_id"] == cookie.value


async def test_two_processes_share_visitors_through_redis(aiohttp_client, settings, nlu_engine):
    """Customer on process A; a frame published by process B reaches them."""
    a = await aiohttp_client(create_app(settings, nlu=nlu_engine))
    b = await aiohttp_client(create_app(settings, nlu=nlu_engine))
    async with a.ws_connect("/ws/chat") as ws:
        w6 = json.loads((await ws.receive()).data)["visitor_id"]
        await asyncio.sleep(0.1)  # let A's subscription reach Redis
        await b.app[WEBCHAT].hub.publish(
            w6, {"type": "message", "from": "agent", "text": "您好，我是客服小王", "agent": "小王"}
        )
        frame = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
    assert frame["from"] == "agent" and frame["agent"] == "小王"


async def test_a_resent_message_is_answered_once(client):
    """The widget resends messages the server has not echoed yet after a reconnect; the server
    handles each client_id once (here the resend arrives after the first was handled)."""
    async with client.ws_connect("/ws/chat?visitor_id=w7") as ws:
        await ws.receive()
        await ws.send_json({"type": "message", "text": "查流量", "client_id": "c-77"})
        await frames_until(ws, bot_reply)
        await ws.send_json({"type": "message", "text": "查流量", "client_id": "c-77"})
        await ws.send_json({"type": "message", "text": "谢谢", "client_id": "c-78"})
        seen = await frames_until(ws, bot_reply)
    customer = [f for f in seen if f.get("from") == "customer"]
    assert [f["client_id"] for f in customer] == ["c-78"]  # the resend produced nothing new


async def test_a_message_whose_turn_finished_unpublished_gets_its_answer_when_sent_again(client):
    """The turn of a message finished (logged, its replies recorded) but its handling failed before the frames were
    published (a 503 after the finish, a Redis error in between): the page sends the same client_id again on its
    next connection — a duplicate — and now gets the echo and the recorded answer, once."""
    async with client.ws_connect("/ws/chat") as ws:
        visitor = json.loads((await ws.receive()).data)["visitor_id"]
    sender = visitor
    turn = await client.app[WEBCHAT].host.handle(
        InboundMessage("webchat", sender, sender, "查流量", "c-lost", time.time(), {}, None, "zh", display="查流量")
    )  # the state a failed handling leaves: finished, nothing published
    assert turn.replies and not turn.duplicate
    async with client.ws_connect(f"/ws/chat?visitor_id={visitor}") as ws:
        assert json.loads((await ws.receive()).data)["last_seq"] == 0  # nothing was published for it
        await ws.send_json({"type": "message", "text": "查流量", "client_id": "c-lost"})
        seen = await frames_until(ws, bot_reply)
        assert [f["client_id"] for f in seen if f.get("from") == "customer"] == ["c-lost"]
        assert seen[-1]["text"] == turn.replies[-1].text  # the recorded answer, not a second turn
        await ws.send_json({"type": "message", "text": "查流量", "client_id": "c-lost"})  # once more: nothing
        await ws.send_json({"type": "message", "text": "谢谢", "client_id": "c-next"})
        later = await frames_until(ws, bot_reply)
    assert [f["client_id"] for f in later if f.get("from") == "customer"] == ["c-next"]


async def test_a_visitor_id_not_issued_by_the_server_is_not_adopted(client):
    """Someone who learns or guesses a visitor's id cannot open that visitor's conversation by naming it."""
    async with client.ws_connect("/ws/chat") as ws:
        real = json.loads((await ws.receive()).data)["visitor_id"]
    raw, mac = real.split(".")
    for forged in ("victim", f"{raw}.{'0' * 20}", f"{'a' * 32}.{mac}"):
        async with client.ws_connect(f"/ws/chat?visitor_id={forged}") as ws:
            assert json.loads((await ws.receive()).data)["visitor_id"] not in (forged, real)
    async with client.ws_connect(f"/ws/chat?visitor_id={real}") as ws:  # the genuine id reconnects
        assert json.loads((await ws.receive()).data)["visitor_id"] == real


async def test_visitor_cookie_is_secure_behind_a_trusted_tls_proxy(aiohttp_client, make_settings, nlu_engine):
    for proxies, secure in (((), False), (("127.0.0.1/32",), True)):
        settings = make_settings(server={"trusted_proxies": proxies})
        client = await aiohttp_client(create_app(settings, nlu=nlu_engine))
        resp = await client.get("/", headers={"X-Forwarded-Proto": "https"})
        cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and ("Secure" in cookie) == secure, (proxies, cookie)
