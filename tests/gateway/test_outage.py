"""A Redis outage: every request gets a JSON 503 with Retry-After (never a plain-text 500 or a hang), the
customer's WebSocket an error frame, and the gateway serves again as soon as Redis is back."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from gateway.app import EMBEDDED, create_app


async def test_redis_down_answers_json_503_then_recovers(aiohttp_client, make_settings, nlu_engine, tmp_path):
    settings = make_settings(server={"data_dir": str(tmp_path / "own")}, redis={"url": "", "appendfsync": "always"})
    client = await aiohttp_client(create_app(settings, nlu=nlu_engine))

    async def say(sender: str, text: str = "你好") -> tuple[int, dict[str, str], object]:
        started = time.monotonic()
        resp = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
        assert time.monotonic() - started < 5, "a hang"
        return resp.status, dict(resp.headers), await resp.json()  # JSON whatever happens

    assert (await say("o-1"))[0] == 200
    ws = await client.ws_connect("/ws/chat")
    await ws.receive()  # hello
    embedded = client.app[EMBEDDED]
    embedded.kill()
    await asyncio.sleep(0.3)

    for i in range(20):
        status, headers, body = await say(f"o-{i}", "查话费")
        assert status == 503, body
        assert headers["Retry-After"] and body["error"] and body["error_zh"]
    health = await client.get("/healthz")
    assert health.status == 503 and (await health.json())["status"] == "unavailable"
    await ws.send_json({"type": "message", "text": "你好", "client_id": "o-ws"})
    frame = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
    assert frame["type"] == "error" and frame["error_zh"]
    await ws.close()
    # a socket opened while Redis is away: refused before the upgrade or closed "try again later", never
    # an HTTP response written into the WebSocket
    try:
        async with client.ws_connect("/ws/chat") as again:
            frames = [m async for m in again]
        assert again.close_code in (1013, None) and all(m.type.name in ("TEXT", "CLOSE", "CLOSED") for m in frames)
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 503

    await embedded.start()  # Redis is back (its AOF kept everything)
    for _ in range(50):
        status, _, body = await say("o-back")
        if status == 200:
            break
        await asyncio.sleep(0.1)
    assert status == 200 and body
    assert (await client.get("/healthz")).status == 200
