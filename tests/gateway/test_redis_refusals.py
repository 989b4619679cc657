"""A Redis that is up but refuses: full (``maxmemory``), unable to save (``MISCONF``: the disk is full and
``stop-writes-on-bgsave-error``), or a read-only replica. Every request that needs a write gets what an outage gets —
a JSON 503 with ``Retry-After`` and the problem named in both languages, never a 500 — the web chat customer an error
frame on an open socket, the operator one warning naming the cause and what to do (not a traceback a request or a
second), and the message the client sends again once Redis is back is answered, once."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway import errors
from gateway.app import create_app
from gateway.settings import load_settings
from tests.conftest import one_server_only

pytestmark = one_server_only


async def _full(r: aioredis.Redis) -> Callable[[], Awaitable[None]]:
    await r.config_set("maxmemory", "1")  # bytes: whatever it holds is over it

    async def undo() -> None:
        await r.config_set("maxmemory", "0")

    return undo


async def _cannot_save(r: aioredis.Redis) -> Callable[[], Awaitable[None]]:
    """A snapshot that fails (its folder gone, as a full disk fails it) with saving on: Redis refuses writes."""
    before = (await r.config_get("dir"))["dir"]
    gone = tempfile.mkdtemp(prefix="gw-gone-")
    await r.config_set("save", "3600 1")
    await r.config_set("dir", gone)
    shutil.rmtree(gone)
    await r.bgsave()
    async with asyncio.timeout(10):
        while (await r.info("persistence"))["rdb_last_bgsave_status"] != "err":
            await asyncio.sleep(0.05)

    async def undo() -> None:
        await r.config_set("dir", before)
        await r.bgsave()
        async with asyncio.timeout(10):
            while (await r.info("persistence"))["rdb_last_bgsave_status"] != "ok":
                await asyncio.sleep(0.05)

    return undo


async def _replica(r: aioredis.Redis) -> Callable[[], Awaitable[None]]:
    await r.execute_command("REPLICAOF", "127.0.0.1", "1")  # a master that is not there: never synced, read-only

    async def undo() -> None:
        await r.execute_command("REPLICAOF", "NO", "ONE")

    return undo


REFUSE = {"OOM": _full, "MISCONF": _cannot_save, "READONLY": _replica}


@pytest.mark.parametrize("code", list(REFUSE))
async def test_a_redis_that_refuses_writes_gets_503_and_the_retry_is_answered_once(
    code: str, private_redis_url: str, nlu_engine: Any, aiohttp_client: Any, tmp_path: Path, caplog: Any,
    monkeypatch: Any,
) -> None:  # fmt: skip
    monkeypatch.setattr(errors, "_warned", {})  # another test's warning must not quieten this one's
    settings = load_settings(env={"REDIS_URL": private_redis_url}, server={"data_dir": str(tmp_path / "var")})
    client = await aiohttp_client(create_app(settings, nlu=nlu_engine))
    admin = aioredis.Redis.from_url(private_redis_url)

    async def ask(message_id: str) -> tuple[int, Any, Any]:
        body = {"sender": "refused-1", "message": "查话费", "metadata": {"message_id": message_id}}
        resp = await client.post("/webhooks/rest/webhook", json=body)
        return resp.status, await resp.json(), resp.headers

    try:
        assert (await ask("m-0"))[0] == 200
        ws = await client.ws_connect("/ws/chat")
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "hello"

        undo = await REFUSE[code](admin)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            for _ in range(3):  # the channel's retries, while it lasts
                status, body, headers = await ask("m-1")
                assert status == 503, (status, body)
                assert body["error"] and body["error_zh"] and headers["Retry-After"]
            await ws.send_json({"type": "message", "text": "你好", "client_id": "c-1"})
            async with asyncio.timeout(10):
                while (frame := json.loads((await ws.receive()).data))["type"] != "error":
                    pass
            assert frame["error"] and frame["error_zh"] and not ws.closed  # the customer is told; the socket stays
            resp = await client.post(
                "/api/agent/login",
                json={"name": "agent1", "password": "wrong"},
                headers={"Origin": str(client.make_url(""))},
            )  # redis-py's way, not the lean one
            assert resp.status == 503, await resp.text()
            health = await client.get("/healthz")  # a load balancer's or a monitor's view: not able to take a message
            assert health.status == 503 and (await health.json())["redis"] == code

        records = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith(("gateway", "hand"))]
        assert not [r for r in records if r.levelno >= logging.ERROR or r.exc_info], [r.getMessage() for r in records]
        rest = [r.getMessage() for r in records if "/webhooks/rest/webhook" in r.getMessage()]
        assert len(rest) == 1 and f"Redis refuses ({code}:" in rest[0], rest  # once, naming the cause

        await undo()
        assert (await client.get("/healthz")).status == 200
        status, first, _ = await ask("m-1")  # the channel's retry once Redis is back: handled
        assert status == 200 and first, first
        status, again, _ = await ask("m-1")  # and a later duplicate gets the same answer
        assert status == 200 and again == first
        metrics = await (await client.get("/metrics")).text()
        assert 'gateway_duplicates_total{channel="rest"} 1.0' in metrics
        assert 'gateway_messages_total{channel="rest"} ' in metrics
        await ws.close()
    finally:
        await admin.aclose()
