"""The operator back end over real HTTP: the adapter against the reference server (demo data
behind it), retries for reads only, idempotent writes, the circuit breaker, and a slow or failing
back end seen by a customer (deadline reply, then the pushed answer; or a polite apology)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bots.bss import BSSUnavailable, NotFound, Rejected
from bots.bss.demo import DemoBSS
from bots.bss.http import HttpBSS
from bots.bss.server import create_bss_app
from gateway import redisconn
from gateway.app import create_app
from gateway.security import mint_customer_token
from tests.bots.conftest import SECRET, Customer, demo, month_back


class Faults:
    """What the test server should do: delay or fail some paths; records every call."""

    def __init__(self) -> None:
        self.delay: dict[str, float] = {}
        self.fail: dict[str, int] = {}  # path suffix → how many calls answer 503 (-1: all)
        self.calls: Counter[str] = Counter()
        self.headers: list[tuple[str, dict[str, str]]] = []  # (method, headers) per call

    def middleware(self) -> Any:
        @web.middleware
        async def mw(request: web.Request, handler: Any) -> web.StreamResponse:
            self.calls[f"{request.method} {request.path}"] += 1
            self.headers.append((request.method, dict(request.headers)))
            for suffix, seconds in self.delay.items():
                if request.path.endswith(suffix):
                    await asyncio.sleep(seconds)
            for suffix, left in self.fail.items():
                if request.path.endswith(suffix) and left:
                    self.fail[suffix] = left - 1 if left > 0 else -1
                    return web.json_response({"error": "maintenance"}, status=503)
            return await handler(request)

        return mw


@pytest.fixture
async def backend(aiohttp_server: Any, redis_url: str, key_prefix: str) -> Any:
    redis = redisconn.client(redis_url)
    demo_bss = DemoBSS(redis, key_prefix)
    faults = Faults()
    app = create_bss_app(demo_bss)
    app.middlewares.insert(0, faults.middleware())
    server = await aiohttp_server(app)
    yield str(server.make_url("")), faults, demo_bss
    await redis.aclose()


async def test_adapter_matches_the_demo_over_http(backend):
    url, _, demo_bss = backend
    http = HttpBSS(url)
    try:
        phone = "13800138000"
        assert await http.subscriber(phone) == await demo_bss.subscriber(phone)
        assert await http.usage(phone) == await demo_bss.usage(phone)
        assert await http.bill(phone, month_back(1)) == await demo_bss.bill(phone, month_back(1))
        assert await http.plans() == await demo_bss.plans()
        assert await http.vas(phone) == await demo_bss.vas(phone)
        assert await http.stores("海淀区") == await demo_bss.stores("海淀区")
        assert await http.outages(None) == await demo_bss.outages(None)
        assert await http.repair_windows(phone) == await demo_bss.repair_windows(phone)
        assert await http.porting_check("13800138004") == await demo_bss.porting_check("13800138004")
        assert await http.roaming_rate("东京") == await demo_bss.roaming_rate("tokyo")
        assert await http.roaming_rate("atlantis") is None
        assert (await http.balance(phone)).balance == demo(phone)["balance"]
        assert await http.puk(phone) == str(demo(phone)["puk"])
        with pytest.raises(NotFound):
            await http.subscriber("13312345678")
        with pytest.raises(NotFound):
            await http.bill(phone, "1999-01")
    finally:
        await http.close()


async def test_writes_are_idempotent_and_never_retried(backend):
    url, faults, _ = backend
    http = HttpBSS(url, retries=3, backoff=0.01)
    try:
        first = await http.change_plan("13800138004", "premium_199", "conv-1:turn-1")
        again = await http.change_plan("13800138004", "premium_199", "conv-1:turn-1")
        assert first == again and first.effective is not None
        with pytest.raises(Rejected) as rejected:
            await http.change_plan("13800138004", "bigdata_39", "conv-1:turn-2")
        assert rejected.value.code == "not_open"
        faults.fail["/suspension"] = 1
        with pytest.raises(BSSUnavailable):
            await http.suspend("13800138004", "lost", "conv-1:turn-3")
        assert faults.calls["POST /subscribers/13800138004/suspension"] == 1  # a write is not retried
        assert (await http.suspend("13800138004", "lost", "conv-1:turn-3")).kind == "suspension"
        posts = [h for method, h in faults.headers if method == "POST"]
        assert len(posts) == 5 and all(h.get("Idempotency-Key", "").startswith("conv-1:") for h in posts)
    finally:
        await http.close()


async def test_reads_are_retried_with_back_off(backend):
    url, faults, _ = backend
    faults.fail["/balance"] = 2
    http = HttpBSS(url, retries=2, backoff=0.01)
    try:
        assert (await http.balance("13800138000")).balance == demo("13800138000")["balance"]
        assert faults.calls["GET /subscribers/13800138000/balance"] == 3
    finally:
        await http.close()


async def test_circuit_opens_and_closes(backend):
    url, faults, _ = backend
    faults.fail["/balance"] = -1
    http = HttpBSS(url, retries=0, failure_threshold=2, reset_after=0.3)
    try:
        for _ in range(2):
            with pytest.raises(BSSUnavailable):
                await http.balance("13800138000")
        assert http.breaker.state == "open"
        with pytest.raises(BSSUnavailable, match="circuit is open"):
            await http.balance("13800138000")
        assert faults.calls["GET /subscribers/13800138000/balance"] == 2  # the open circuit did not call
        await asyncio.sleep(0.35)
        faults.fail.clear()
        assert http.breaker.state == "half-open"
        await http.balance("13800138000")
        assert http.breaker.state == "closed"
    finally:
        await http.close()


async def test_auth_header_comes_from_the_environment(aiohttp_client, backend, make_settings, nlu_engine):
    from gateway.settings import load_settings

    url, faults, _ = backend
    settings = load_settings(env={"BSS_AUTH_HEADER": "Authorization: Bearer s3cr3t-token",
                                  "GATEWAY_BOTS_BACKEND": "http", "GATEWAY_BOTS_BACKEND_URL": url})  # fmt: skip
    assert "s3cr3t" not in repr(settings)
    bots = {"backend": "http", "backend_url": url, "backend_auth": settings.bots.backend_auth}
    base = make_settings(webchat={"token_secret": SECRET}, bots=bots)
    c = Customer(await aiohttp_client(create_app(base, nlu=nlu_engine)), "auth-1", "13800138000")
    assert "86.50" in await c.text("查话费")
    assert faults.headers[-1][1]["Authorization"] == "Bearer s3cr3t-token"


async def test_failing_back_end_gets_a_polite_answer_and_opens_the_circuit(aiohttp_client, backend, make_settings,
                                                                           nlu_engine, caplog):  # fmt: skip
    caplog.set_level(logging.DEBUG)
    url, faults, _ = backend
    faults.fail["/balance"] = -1
    bots = {"backend": "http", "backend_url": url, "backend_retries": 0, "circuit_failures": 2, "circuit_reset": 60}
    settings = make_settings(webchat={"token_secret": SECRET}, bots=bots)
    c = Customer(await aiohttp_client(create_app(settings, nlu=nlu_engine)), "fail-1", "13800138000")
    for _ in range(3):
        reply = await c.text("查话费")
        assert "业务系统暂时繁忙" in reply and ("转人工客服", "/request_human") in c.buttons()
    assert faults.calls["GET /subscribers/13800138000/balance"] == 2
    # the gateway's own records (the fake back end's access log is the operator's, not ours)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    assert "operator back end" in logged and "138****8000" in logged
    assert not re.search(r"1[3-9]\d{9}", logged)  # logs never hold a full number


async def frames_until(ws: Any, predicate: Any, timeout: float = 8.0) -> list[dict[str, Any]]:
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            seen.append(json.loads(msg.data))
            if predicate(seen[-1]):
                return seen


async def test_slow_back_end_checking_then_the_pushed_answer(aiohttp_client, backend, make_settings, nlu_engine):
    url, faults, _ = backend
    faults.delay["/balance"] = 1.0
    settings = make_settings(webchat={"token_secret": SECRET}, pipeline={"reply_deadline": 0.3},
                             bots={"backend": "http", "backend_url": url, "backend_timeout": 3})  # fmt: skip
    client = await aiohttp_client(create_app(settings, nlu=nlu_engine))
    token = mint_customer_token("13800138000", SECRET)
    async with client.ws_connect(f"/ws/chat?visitor_id=slow-ws&token={token}") as ws:
        await ws.receive()
        started = time.monotonic()
        await ws.send_json({"type": "message", "text": "查话费", "client_id": "m-1"})
        seen = await frames_until(ws, lambda f: f.get("from") == "bot")
        assert seen[-1]["text"] == "正在为您查询，请稍候…" and time.monotonic() - started < 0.9
        seen = await frames_until(ws, lambda f: f.get("from") == "bot")
        assert "86.50元" in seen[-1]["text"] and time.monotonic() - started >= 0.9
    metrics = await (await client.get("/metrics")).text()
    assert 'gateway_deadline_misses_total{channel="webchat"} 1.0' in metrics
    assert 'gateway_late_answer_seconds_count{channel="webchat"} 1.0' in metrics


async def test_slow_back_end_that_then_fails(aiohttp_client, backend, make_settings, nlu_engine):
    url, faults, _ = backend
    faults.delay["/usage"] = 0.6
    faults.fail["/usage"] = -1
    settings = make_settings(webchat={"token_secret": SECRET}, pipeline={"reply_deadline": 0.3},
                             bots={"backend": "http", "backend_url": url, "backend_retries": 0})  # fmt: skip
    client = await aiohttp_client(create_app(settings, nlu=nlu_engine))
    token = mint_customer_token("13800138000", SECRET)
    async with client.ws_connect(f"/ws/chat?visitor_id=fail-ws&token={token}") as ws:
        await ws.receive()
        await ws.send_json({"type": "message", "text": "查流量", "client_id": "m-1"})
        await frames_until(ws, lambda f: f.get("from") == "bot")
        seen = await frames_until(ws, lambda f: f.get("from") == "bot")
        assert "业务系统暂时繁忙" in seen[-1]["text"]
        assert seen[-1]["buttons"] == [{"title": "转人工客服", "payload": "/request_human"}]
