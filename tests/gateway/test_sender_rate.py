"""``pipeline.sender_rate`` / ``sender_burst``: one sender (a phone number, a WeChat user, a web chat visitor, a REST
sender) may send ``burst`` messages at once and then ``rate`` a second — a person pasting lines or clicking buttons
never meets it; a script, a looping client or an auto-responder answering the bot does. Past it the message is not
accepted (nothing stored, nothing answered): 429 with ``Retry-After`` and the limit named in both languages; an error
frame on web chat. The bucket is in the sender's Redis hash, so every process of the deployment counts the same."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gateway.app import create_app


def _limited(make_settings: Any, rate: float = 1.0, burst: int = 3) -> Any:
    return make_settings(pipeline={"sender_rate": rate, "sender_burst": burst})


async def _say(client: Any, sender: str, message_id: str, text: str = "你好") -> tuple[int, Any, Any]:
    body = {"sender": sender, "message": text, "metadata": {"message_id": message_id}}
    resp = await client.post("/webhooks/rest/webhook", json=body)
    return resp.status, await resp.json(), resp.headers


async def test_a_sender_over_its_rate_gets_429_on_any_process_and_the_message_later(make_settings, nlu_engine,
                                                                                     aiohttp_client):  # fmt: skip
    settings = _limited(make_settings)
    one = await aiohttp_client(create_app(settings, nlu=nlu_engine))
    two = await aiohttp_client(create_app(settings, nlu=nlu_engine))  # a second process on the same Redis
    for i, client in enumerate((one, two, one)):  # the burst, spread over both processes
        status, body, _ = await _say(client, "fast-1", f"m{i}")
        assert status == 200, body
    status, body, headers = await _say(two, "fast-1", "m3")
    assert status == 429, body
    assert "at most 3 at once" in body["error"] and "频繁" in body["error_zh"] and int(headers["Retry-After"]) >= 1
    assert (await _say(one, "someone-else", "x1"))[0] == 200  # per sender
    status, first, _ = await _say(one, "fast-1", "m0")  # a duplicate of an accepted message: answered all the same
    assert status == 200 and first

    await asyncio.sleep(int(headers["Retry-After"]))
    status, body, _ = await _say(two, "fast-1", "m3")  # the refused message, sent again later: now handled
    assert status == 200 and body
    metrics = await (await two.get("/metrics")).text()  # (each test app counts its own)
    assert 'gateway_throttled_total{channel="rest"} 1.0' in metrics
    assert 'gateway_duplicates_total{channel="rest"} 0.0' in metrics  # m3 again: not stored when it was refused
    assert 'gateway_duplicates_total{channel="rest"} 1.0' in await (await one.get("/metrics")).text()  # m0 again


async def test_web_chat_gets_an_error_frame_past_the_rate(make_settings, nlu_engine, aiohttp_client):
    client = await aiohttp_client(create_app(_limited(make_settings, rate=0.2, burst=2), nlu=nlu_engine))
    ws = await client.ws_connect("/ws/chat")
    assert json.loads((await ws.receive(timeout=10)).data)["type"] == "hello"
    for i in range(3):
        await ws.send_json({"type": "message", "text": "你好", "client_id": f"c{i}"})
    bot, errors = 0, []
    async with asyncio.timeout(15):
        while bot < 2 or not errors:
            frame = json.loads((await ws.receive()).data)
            bot += frame.get("from") == "bot"
            if frame.get("type") == "error":
                errors.append(frame)
    assert "at most 2 at once" in errors[0]["error"] and "频繁" in errors[0]["error_zh"]
    assert not ws.closed  # the customer stays connected
    await ws.close()
