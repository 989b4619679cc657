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
    embedded.kill(restart=False)  # down until the test starts it (the gateway would start it again at once)
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


async def test_an_embedded_redis_that_dies_is_started_again_and_nothing_is_lost(aiohttp_client, make_settings,
                                                                                 nlu_engine, tmp_path):  # fmt: skip
    """The embedded Redis killed (SIGKILL: a crash, the kernel's OOM killer) while the gateway runs: the gateway starts
    it again by itself, customers are answered again within seconds, and what was answered before is still there (a
    duplicate of it gets the recorded reply, the conversation goes on)."""
    settings = make_settings(server={"data_dir": str(tmp_path / "own")}, redis={"url": ""})
    client = await aiohttp_client(create_app(settings, nlu=nlu_engine))

    async def say(message_id: str, text: str) -> tuple[int, object]:
        body = {"sender": "crash-1", "message": text, "metadata": {"message_id": message_id}}
        resp = await client.post("/webhooks/rest/webhook", json=body)
        return resp.status, await resp.json()

    status, before = await say("c-1", "查话费")
    assert status == 200
    embedded = client.app[EMBEDDED]
    dead = embedded.pid
    embedded.kill()
    began = time.monotonic()
    async with asyncio.timeout(15):
        while (await say("c-2", "你好"))[0] != 200:  # 503 while it is away, then answered
            await asyncio.sleep(0.1)
    assert time.monotonic() - began < 10 and embedded.pid != dead
    async with asyncio.timeout(5):  # (counted once its start returns, which may be after the first answer)
        while embedded.restarts != 1:
            await asyncio.sleep(0.05)
    assert await say("c-1", "查话费") == (200, before)  # accepted before the crash: kept, answered once
    metrics = await (await client.get("/metrics")).text()
    assert 'gateway_duplicates_total{channel="rest"} 1.0' in metrics
    assert (await client.get("/healthz")).status == 200
