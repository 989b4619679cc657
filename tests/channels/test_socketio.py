"""Rasa's Socket.IO channel (gateway/channels/socketio.py) over loopback with python-socketio's own client: the
session handshake, answers and quick replies as Rasa emits them, sessions only the server issues, persistence and
messages kept while no socket is open, a handoff across two gateway processes, and bad input at the edge."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import aiohttp

from gateway.channels.socketio import SOCKETIO
from gateway.models import Button, OutboundMessage
from gateway.rkeys import deployment_keys
from gateway.security import mint_customer_token
from tests.channels.conftest import eventually

SESSION = re.compile(r"^[0-9a-f]{32}\.[0-9a-f]{20}$")
JWT_SECRET = "socketio-test-secret-of-32-bytes-at-least"
LEVELS = ["非常满意", "满意", "一般", "不满意", "非常不满意"]


def has(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda d: text in d.get("text", "")


async def test_handshake_answers_and_quick_replies_as_rasa_emits_them(gateways, widgets, redis_client, key_prefix):
    gw = await gateways()
    w = widgets(gw.base)
    session = await w.open()
    assert SESSION.match(session)
    await w.say("你好", language="zh")
    hello = await w.bot(lambda d: "quick_replies" in d)
    assert set(hello) == {"text", "quick_replies"}  # the widget shows a message only with exactly these keys
    assert "客服" in hello["text"]
    reply = next(r for r in hello["quick_replies"] if r["payload"] == "/request_human")
    assert reply == {"content_type": "text", "title": "转人工客服", "payload": "/request_human"}
    await w.say("/query_balance")  # a quick reply sends its payload
    asked = await w.bot()
    assert set(asked) == {"text"} and "验证" in asked["text"]
    sender = session.split(".")[0]  # the conversation is kept under the session's random part
    keys = deployment_keys(key_prefix)  # names carry the sender's keyed hash; entries are encrypted
    match = f"{key_prefix}{{sender:socketio:{keys.cid(sender)}}}:log:*"
    (log_key,) = [k async for k in redis_client.scan_iter(match)]
    entries = [json.loads(keys.unseal(f[b"e"])) for _, f in await redis_client.xrange(log_key)]
    clicked = next(e for e in entries if e.get("text") == "/query_balance")
    assert clicked["display"] == "查话费余额"  # the console shows what the customer clicked
    await w.say("how much data do I have left", language="en")
    english = await w.bot()
    assert re.search(r"[A-Za-z]{4,}", english["text"]) and not re.search(r"[\u4e00-\u9fff]", english["text"])


async def test_a_session_the_server_did_not_issue_is_replaced_and_never_read(gateways, widgets):
    gw = await gateways()
    victim = widgets(gw.base)
    real = await victim.open()
    forged = "0" * 32 + "." + "1" * 20
    w = widgets(gw.base)
    assert (await w.open(forged)) not in {forged, real}
    # a session id that is not this socket's is refused, even a real one (another customer's)
    await w.client.emit("user_uttered", {"message": "查话费", "session_id": real})
    _, error = await w.expect("error")
    assert error["field"] == "session_id" and error["error_zh"]
    w2 = widgets(gw.base)
    await w2.client.connect(gw.base, socketio_path="/socket.io/", transports=["websocket"])
    await w2.client.emit("user_uttered", {"message": "查话费"})  # before session_request
    assert (await w2.expect("error"))[1]["field"] == "session_id"
    assert victim.pending() == []


async def test_the_session_persists_and_messages_wait_while_no_socket_is_open(gateways, widgets):
    gw = await gateways()
    w = widgets(gw.base)
    session = await w.open()
    await w.say("你好")
    await w.bot(lambda d: "quick_replies" in d)
    await w.close()
    channel = gw.app[SOCKETIO]
    sender = session.split(".")[0]
    await eventually(lambda: sender not in channel.hub.local)
    notice = OutboundMessage("socketio", sender, "第一段\n\n第二段", "c1", (Button("好的", "/affirm"),), sender="agent")
    await channel.push(notice)  # nobody listening: kept
    again = widgets(gw.base)
    assert await again.open(session) == session  # the widget's stored id continues
    first, second = await again.bot(), await again.bot()
    assert first == {"text": "第一段"}
    assert second == {
        "text": "第二段",
        "quick_replies": [{"content_type": "text", "title": "好的", "payload": "/affirm"}],
    }
    await again.say("/affirm")  # answered in the same conversation (the bot knows it was not asked anything)
    await again.bot()
    await again.close()
    third = widgets(gw.base)
    await third.open(session)
    await third.say("你好")
    await third.bot(lambda d: "quick_replies" in d)
    assert [e for e in third.pending() if e[1] in ({"text": "第一段"},)] == []  # delivered once, not replayed


async def test_persistence_off_gives_every_connection_a_new_session(gateways, widgets):
    gw = await gateways(socketio={"session_persistence": False})
    w = widgets(gw.base)
    first = await w.open()
    await w.close()
    assert await widgets(gw.base).open(first) != first


async def test_handoff_across_processes_agent_message_and_survey_reach_the_widget(gateways, widgets, agents):
    gw_a, gw_b = await gateways(), await gateways()  # the customer on A, the agent on B, one Redis
    agent = agents(gw_b.base)
    await agent.login()
    await agent.connect()
    w = widgets(gw_a.base)
    await w.open()
    await w.say("帮我转人工客服")
    await w.bot(has("王小明"))
    chat_id = (await agent.expect(lambda f: f["type"] == "assigned"))["chat"]["id"]
    await agent.call("POST", f"/api/chats/{chat_id}/messages", {"text": "您好，我是王小明，请问有什么可以帮您？"})
    assert (await w.bot(has("请问有什么可以帮您"))) == {"text": "您好，我是王小明，请问有什么可以帮您？"}
    await w.say("我的宽带一直掉线")
    heard = await agent.expect(lambda f: f["type"] == "message" and f["entry"]["kind"] == "customer")
    assert heard["entry"]["text"] == "我的宽带一直掉线"
    await agent.call("POST", f"/api/chats/{chat_id}/close", {"disposition": "resolved"})
    survey = await w.bot(lambda d: "quick_replies" in d and "打分" in d["text"])
    assert [r["title"] for r in survey["quick_replies"]] == LEVELS
    await w.say(survey["quick_replies"][1]["payload"])
    await w.bot(has("意见或建议"))
    await w.say("处理得很快")
    await w.bot(has("感谢您的反馈"))
    transcript = (await agent.call("GET", f"/api/chats/{chat_id}"))["transcript"]
    assert any(e.get("text") == "我的宽带一直掉线" for e in transcript)


async def test_a_logged_in_customer_and_a_bad_token(gateways, widgets):
    gw = await gateways(webchat={"token_secret": JWT_SECRET})
    w = widgets(gw.base)
    await w.open()
    await w.say("查一下话费余额", token=mint_customer_token("13800138000", JWT_SECRET))
    balance = await w.bot()
    assert "元" in balance["text"] and "验证" not in balance["text"]
    await w.say("查一下话费余额", token="not-a-token")
    _, error = await w.expect("error")
    assert error["field"] == "customData.token" and error["error_zh"] == "身份令牌无效"
    assert "验证" in (await w.bot())["text"]  # answered without the identity


async def test_bad_events_sizes_and_origins_at_the_edge(gateways, widgets, make_settings):
    gw = await gateways(webchat={"allowed_origins": ["https://shop.example.com"]})
    w = widgets(gw.base)
    await w.open()
    for bad, field in ((None, "data"), ("text", "data"), ({"message": ""}, "message"), ({"message": 5}, "message")):
        await w.client.emit("user_uttered", bad)
        assert (await w.expect("error"))[1]["field"] == field
    await w.client.emit("session_request", "not an object")  # a new session, nothing breaks
    w.session = (await w.expect("session_confirm"))[1]
    await w.say("查" * 1500)  # over pipeline.max_message_chars: the channel's notice, in the customer's words
    assert "太长" in (await w.bot())["text"]
    await w.say("x" * 20000)  # over webchat.max_body_bytes: Engine.IO drops that socket, the server goes on
    await eventually(lambda: not w.client.connected, timeout=10)
    other = widgets(gw.base)
    await other.open()
    async with aiohttp.ClientSession() as http:
        query = "/socket.io/?EIO=4&transport=polling"
        async with http.get(gw.base + query, headers={"Origin": "https://evil.example.net"}) as resp:
            assert resp.status == 403
            body = await resp.json()
            assert body["field"] == "Origin" and body["error_zh"]
        async with http.get(gw.base + query, headers={"Origin": "https://shop.example.com"}) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
        async with http.get(gw.base + "/socket.io/?EIO=3&transport=polling") as resp:
            assert resp.status == 400  # an old protocol is refused, not a 5xx
        async with http.post(gw.base + "/socket.io/?EIO=4&transport=polling&sid=nope", data=b"4junk") as resp:
            assert resp.status == 400


async def test_turned_off_nothing_is_served(gateways):
    gw = await gateways(socketio={"enabled": False})
    async with aiohttp.ClientSession() as http, http.get(gw.base + "/socket.io/?EIO=4&transport=polling") as resp:
        assert resp.status == 404


async def test_a_stopping_process_drops_its_sockets_so_widgets_reconnect_elsewhere(gateways, widgets):
    gw = await gateways()
    w = widgets(gw.base)
    await w.open()
    channel = gw.app[SOCKETIO]
    await channel.shutdown()  # what the gateway does first on SIGTERM
    await eventually(lambda: not w.client.connected, timeout=5)
    async with aiohttp.ClientSession() as http, http.get(gw.base + "/socket.io/?EIO=4&transport=polling") as resp:
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
        assert (await resp.json())["error_zh"]
    started = asyncio.get_running_loop().time()
    await gw.close()
    assert asyncio.get_running_loop().time() - started < 3


async def test_a_session_of_another_process_is_relayed_to_it(gateways):
    """``--workers N`` (SO_REUSEPORT) gives each TCP connection to any process: Engine.IO's polls and the upgrade
    naming a sid another process issued are relayed to that process (raw Engine.IO v4 on the wire)."""
    gw_a, gw_b = await gateways(), await gateways()
    q = "/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http:
        async with http.get(gw_a.base + q) as resp:  # the handshake, made by A
            handshake = json.loads((await resp.text())[1:])
        sid = handshake["sid"]
        assert sid not in gw_b.app[SOCKETIO].sio.eio.sockets

        async def post(base: str, packet: str) -> int:
            async with http.post(f"{base}{q}&sid={sid}", data=packet.encode()) as resp:
                return resp.status

        async def poll(base: str) -> str:
            async with http.get(f"{base}{q}&sid={sid}") as resp:
                assert resp.status == 200
                return await resp.text()

        assert await post(gw_b.base, "40") == 200  # the Socket.IO connect, sent to B, reaches A
        assert (await poll(gw_b.base)).startswith("40")
        assert await post(gw_b.base, '42["session_request",{"session_id":null}]') == 200
        confirmed = json.loads((await poll(gw_b.base))[2:])
        assert confirmed[0] == "session_confirm" and SESSION.match(confirmed[1])
        async with http.ws_connect(f"{gw_b.base}/socket.io/?EIO=4&transport=websocket&sid={sid}") as ws:
            await ws.send_str("2probe")  # the upgrade, through B's pipe to A
            assert (await ws.receive_str(timeout=5)) == "3probe"
            await ws.send_str("5")
            await ws.send_str('42["user_uttered",{"message":"你好"}]')
            async with asyncio.timeout(10):
                while True:
                    frame = await ws.receive_str()
                    if frame == "2":  # Engine.IO's ping
                        await ws.send_str("3")
                    elif frame.startswith('42["bot_uttered"'):
                        break
            assert "quick_replies" in json.loads(frame[2:])[1]
        forged = "1." + "A" * 16 + "." + "0" * 16  # a port of the client's choosing is never relayed to
        async with http.get(f"{gw_b.base}{q}&sid={forged}") as resp:
            assert resp.status == 400
