"""Agent sign-in and the console under attack, over HTTP on loopback with real Redis: login throttling per
account and per client address, bcrypt off the event loop (a flood does not stall /healthz), passwords over
72 bytes, login CSRF (JSON only, Origin), Secure cookies behind a trusted TLS proxy, security headers, /metrics
in production, who may read which chat, and JSON 4xx for malformed bodies, ids and WebSocket frames."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from gateway import redisconn
from gateway.rkeys import deployment_keys
from handoff.agents import AgentError, AgentStore
from tests.handoff.test_handoff import is_

PROXY = {"trusted_proxies": ("127.0.0.1/32",)}


async def post_login(base: str, name: str, password: str, headers: dict[str, str] | None = None,
                     session: aiohttp.ClientSession | None = None) -> tuple[int, Any, Any]:  # fmt: skip
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        async with session.post(f"{base}/api/agent/login", json={"name": name, "password": password},
                                headers=headers or {}) as resp:  # fmt: skip
            return resp.status, await resp.json(), resp.headers
    finally:
        if own:
            await session.close()


async def raw_http(base: str, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One request written byte for byte (headers a client library would refuse to send)."""
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    top, _, payload = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, payload


def assert_json_error(status: int, body: Any, expected: int | None = None) -> None:
    assert 400 <= status < 500, (status, body)
    if expected is not None:
        assert status == expected, (status, body)
    assert isinstance(body, dict) and body["error"] and body["error_zh"], body


# ---- throttling ------------------------------------------------------------------------------------------
async def test_failures_lock_the_account_with_a_growing_delay_and_a_success_resets_it(make_gateway):
    gw = await make_gateway(server={"login_lockout": 1.0})
    for _ in range(4):
        assert (await post_login(gw.base, "agent1", "wrong-password"))[0] == 401
    assert (await post_login(gw.base, "agent1", "demo-agent1"))[0] == 200  # the fifth try is right: reset
    for _ in range(5):
        status, body, _ = await post_login(gw.base, "agent1", "wrong-password")
        assert status == 401 and body == {"error": "wrong name or password", "error_zh": "账号或密码错误"}
    status, body, headers = await post_login(gw.base, "agent1", "demo-agent1")  # right, but locked
    assert status == 429 and headers["Retry-After"] == "1"
    assert "too many failed sign-ins" in body["error"] and "登录失败次数过多" in body["error_zh"]
    await asyncio.sleep(1.1)
    assert (await post_login(gw.base, "agent1", "wrong-password"))[0] == 401  # sixth failure: 2 s now
    status, _, headers = await post_login(gw.base, "agent1", "demo-agent1")
    assert status == 429 and headers["Retry-After"] == "2"
    await asyncio.sleep(2.1)
    assert (await post_login(gw.base, "agent1", "demo-agent1"))[0] == 200
    for _ in range(5):  # the success started the count afresh
        assert (await post_login(gw.base, "agent1", "wrong-password"))[0] == 401
    assert (await post_login(gw.base, "agent1", "wrong-password"))[0] == 429


async def test_fifty_wrong_passwords_at_once_then_the_right_one_is_refused(make_gateway):
    gw = await make_gateway()  # the defaults: 5 failures, then 15 s doubling
    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(*(post_login(gw.base, "agent1", f"guess-{i:04d}", session=session)
                                         for i in range(50)))  # fmt: skip
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [401] * 5 + [429] * 45  # counted as they start: 50 at once cannot slip past the limit
    status, _, headers = await post_login(gw.base, "agent1", "demo-agent1")
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 15
    assert (await post_login(gw.base, "agent2", "demo-agent2"))[0] == 200  # other accounts are not locked


async def test_one_address_spraying_many_accounts_is_locked_and_forwarded_for_counts_only_from_a_trusted_proxy(
    make_gateway,
):
    plain, proxied = await make_gateway(), await make_gateway(server=PROXY)  # two processes, one Redis
    for i in range(20):  # one try per name: no account reaches its limit, the address does
        assert (await post_login(plain.base, f"nobody{i}", "wrong-password"))[0] == 401
    status, body, headers = await post_login(plain.base, "agent1", "demo-agent1")
    assert status == 429 and int(headers["Retry-After"]) >= 1 and body["error_zh"]
    spoofed = {"X-Forwarded-For": "198.51.100.7"}
    assert (await post_login(plain.base, "agent1", "demo-agent1", spoofed))[0] == 429  # not a trusted proxy
    assert (await post_login(proxied.base, "agent1", "demo-agent1", spoofed))[0] == 200  # another client
    assert (await post_login(proxied.base, "agent1", "demo-agent1"))[0] == 429  # the proxy itself is the client
    locked = {"X-Forwarded-For": "192.0.2.50"}
    for i in range(20):
        assert (await post_login(proxied.base, f"other{i}", "wrong-password", locked))[0] == 401
    assert (await post_login(proxied.base, "agent1", "demo-agent1", locked))[0] == 429
    # a client cannot put an address in front of the one the proxy appended: the nearest untrusted hop counts
    chained = {"X-Forwarded-For": "198.51.100.99, 192.0.2.50, 127.0.0.1"}
    assert (await post_login(proxied.base, "agent1", "demo-agent1", chained))[0] == 429
    assert (await post_login(proxied.base, "agent1", "demo-agent1", {"X-Forwarded-For": "garbage"}))[0] == 200


async def test_a_login_flood_does_not_stall_healthz(make_gateway, redis_client, key_prefix):
    """120 wrong sign-ins, 30 at a time, each from its own address (through the trusted proxy, so throttling
    lets every one reach bcrypt) while /healthz is polled: bcrypt runs in the bounded pool, off the loop."""
    gw = await make_gateway(server=PROXY)
    latencies: list[float] = []
    done = asyncio.Event()

    async def probe(session: aiohttp.ClientSession) -> None:
        while not done.is_set():
            start = time.perf_counter()
            async with session.get(f"{gw.base}/healthz") as resp:
                assert resp.status == 200
            latencies.append(time.perf_counter() - start)
            await asyncio.sleep(0.02)

    gate = asyncio.Semaphore(30)

    async def attempt(session: aiohttp.ClientSession, i: int) -> tuple[int, str | None]:
        async with gate:
            headers = {"X-Forwarded-For": f"203.0.113.{i % 120 + 1}"}
            async with session.post(f"{gw.base}/api/agent/login", json={"name": f"flood{i}", "password": "x" * 12},
                                    headers=headers) as resp:  # fmt: skip
                await resp.json()
                return resp.status, resp.headers.get("Retry-After")

    async with aiohttp.ClientSession() as probes, aiohttp.ClientSession() as flood:
        prober = asyncio.create_task(probe(probes))
        await asyncio.sleep(0.1)
        start = time.perf_counter()
        results = await asyncio.wait_for(asyncio.gather(*(attempt(flood, i) for i in range(120))), 30)
        took = time.perf_counter() - start
        done.set()
        await prober
    statuses = [s for s, _ in results]
    assert set(statuses) <= {401, 503}, statuses
    assert all(retry == "1" for s, retry in results if s == 503)
    assert statuses.count(401) >= 16  # the pool checked a good share; the rest were told to retry at once
    worst, median = max(latencies), statistics.median(latencies)
    print(f"\nlogin flood: 120 in {took:.2f} s ({statuses.count(401)} checked, {statuses.count(503)} busy); "
          f"/healthz during it: median {median * 1000:.1f} ms, max {worst * 1000:.1f} ms "
          f"over {len(latencies)} probes")  # fmt: skip
    assert worst < 1.0, latencies
    # a sign-in refused because the pool was full was never judged: it counts against nobody
    counted = [k async for k in redis_client.scan_iter(match=f"{key_prefix}{{login}}:account:flood*", count=1000)]
    assert len(counted) == statuses.count(401)


# ---- passwords bcrypt cannot take ---------------------------------------------------------------------------
async def test_passwords_over_72_bytes_are_refused_cleanly(make_gateway, redis_url, key_prefix):
    gw = await make_gateway()
    for password in ("a" * 73, "密" * 25):  # 73 bytes; 75 bytes in 25 characters
        status, body, _ = await post_login(gw.base, "agent1", password)
        assert_json_error(status, body, 400)
        assert body["field"] == "password" and "72 bytes" in body["error"]
    assert (await post_login(gw.base, "agent1", "a" * 72))[0] == 401
    assert (await post_login(gw.base, "agent1", "a\x00b-nul-inside"))[0] == 401
    client = redisconn.client(redis_url)
    store = AgentStore(client, deployment_keys(key_prefix))
    with pytest.raises(AgentError, match="72 bytes"):
        await store.add("longpw", "密" * 25)
    await store.add("longpw", "密" * 24, skills=("zh",))  # exactly 72 bytes
    await client.aclose()
    assert (await post_login(gw.base, "longpw", "密" * 24))[0] == 200
    env = {**os.environ, "REDIS_URL": redis_url, "GATEWAY_REDIS_KEY_PREFIX": key_prefix}
    cli = subprocess.run([sys.executable, "-m", "gateway", "agents", "add", "li", "--password-stdin"],
                         input="b" * 80 + "\n", capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert cli.returncode == 2 and "72 bytes" in cli.stderr and "Traceback" not in cli.stderr


# ---- login CSRF ---------------------------------------------------------------------------------------------
async def test_login_wants_json_from_our_own_origin(make_gateway, people):
    gw = await make_gateway(server={"public_url": "https://cs.example.com"},
                            webchat={"allowed_origins": ("https://shop.example",)})  # fmt: skip
    creds = json.dumps({"name": "agent1", "password": "demo-agent1"}).encode()
    async with aiohttp.ClientSession() as session:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            async with session.post(f"{gw.base}/api/agent/login", data=creds,
                                    headers={"Content-Type": content_type}) as resp:  # fmt: skip
                assert_json_error(resp.status, await resp.json(), 415)
                assert "Set-Cookie" not in resp.headers
    for origin in ("https://evil.example", "null", "http://127.0.0.1.evil.example", "https://shop.example.evil"):
        status, body, headers = await post_login(gw.base, "agent1", "demo-agent1", {"Origin": origin})
        assert_json_error(status, body, 403)
        assert body["field"] == "Origin" and "Set-Cookie" not in headers
    for origin in (gw.base, "https://cs.example.com", "https://shop.example"):
        assert (await post_login(gw.base, "agent1", "demo-agent1", {"Origin": origin}))[0] == 200
    klingon = {"Content-Type": "application/json; charset=klingon"}  # unknown: the body is UTF-8 JSON anyway
    async with aiohttp.ClientSession() as session, session.post(f"{gw.base}/api/agent/login", data=creds,
                                                                headers=klingon) as resp:  # fmt: skip
        assert resp.status == 200

    # every other state-changing endpoint still wants the session's CSRF token
    boss = people("agent", gw.base, "super1", "demo-super1")
    await boss.login()
    for path, body in (("/api/agent/status", {"status": "away"}), ("/api/chats/c1/accept", None),
                       ("/api/chats/c1/messages", {"text": "hi"}), ("/api/chats/c1/notes", {"text": "n"}),
                       ("/api/chats/c1/transfer", {"to_skill": "network"}),
                       ("/api/chats/c1/close", {"disposition": "resolved"}), ("/api/callbacks/CB1/done", {}),
                       ("/api/callbacks/CB1/reply", {"text": "hi"}), ("/api/agent/logout", None),
                       ("/api/sms/broadcast", {"text": "hi", "numbers": ["13800138000"]})):  # fmt: skip
        status, data = await boss.raw("POST", path, body, csrf=False)
        assert status == 403 and "CSRF" in data["error"], (path, status, data)
    # a token that is not even ASCII is a wrong token, not a crash
    cookie = next(iter(boss.session.cookie_jar)).value
    head = (f"POST /api/agent/status HTTP/1.1\r\nHost: x\r\nCookie: gw_agent={cookie}\r\n"
            "Content-Type: application/json\r\n").encode() + "X-CSRF-Token: 令牌\r\n".encode()  # fmt: skip
    status, _, payload = await raw_http(gw.base, head, b'{"status": "away"}')
    assert status == 403 and json.loads(payload)["field"] == "X-CSRF-Token"


# ---- cookies and headers ------------------------------------------------------------------------------------
async def test_cookies_are_secure_over_tls_through_a_trusted_proxy_only(make_gateway):
    plain, proxied = await make_gateway(), await make_gateway(server={**PROXY, "production": True})
    https = {"X-Forwarded-Proto": "https"}

    def cookie_of(headers: Any) -> str:
        return next(c for c in headers.getall("Set-Cookie") if c.startswith("gw_agent="))

    _, _, headers = await post_login(plain.base, "agent1", "demo-agent1", https)
    assert "Secure" not in cookie_of(headers)  # anyone can send the header: not believed
    assert "HttpOnly" in cookie_of(headers) and "SameSite=Strict" in cookie_of(headers)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{proxied.base}/healthz", headers=https) as resp:
            assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        async with session.get(f"{proxied.base}/healthz") as resp:
            assert "Strict-Transport-Security" not in resp.headers


async def test_login_cookie_is_secure_behind_the_trusted_proxy(make_gateway):
    proxied = await make_gateway(server=PROXY)
    _, _, headers = await post_login(proxied.base, "agent1", "demo-agent1", {"X-Forwarded-Proto": "https"})
    cookie = next(c for c in headers.getall("Set-Cookie") if c.startswith("gw_agent="))
    assert "Secure" in cookie and "HttpOnly" in cookie
    _, _, headers = await post_login(proxied.base, "agent2", "demo-agent2", {"X-Forwarded-Proto": "http"})
    assert "Secure" not in next(c for c in headers.getall("Set-Cookie") if c.startswith("gw_agent="))


async def test_security_headers_on_pages_and_everything_else(make_gateway):
    gw = await make_gateway(webchat={"allowed_origins": ("https://shop.example",)})
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{gw.base}/agent") as resp:
            console, html = resp.headers, await resp.text()
        async with session.get(f"{gw.base}/") as resp:
            widget, widget_html = resp.headers, await resp.text()
        others = {}
        for path in ("/api/queue", "/static/agent.js", "/widget.js", "/healthz", "/no-such-page", "/api/chats/x"):
            async with session.get(f"{gw.base}{path}") as resp:
                others[path] = resp.headers
    for headers in (console, widget, *others.values()):
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
    csp = console["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
    assert console["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'self' https://shop.example" in widget["Content-Security-Policy"]
    assert "X-Frame-Options" not in widget  # embeddable by the operator's site
    for path, headers in others.items():
        assert headers["X-Frame-Options"] == "DENY", path
        assert "default-src 'none'" in headers["Content-Security-Policy"], path
    for page in (html, widget_html):  # what the CSP forbids is not in the pages
        assert "<script>" not in page and "<style" not in page and " style=" not in page
        assert " onclick=" not in page and " onload=" not in page and "javascript:" not in page


async def test_metrics_in_production(make_gateway):
    token = "metrics-token-0123456789"
    opened = await make_gateway()  # outside production: open
    local = await make_gateway(server={"production": True})  # the defaults: loopback only
    walled = await make_gateway(server={"production": True, "metrics_networks": ("10.0.0.0/8",),
                                        "metrics_token": token})  # fmt: skip
    proxied = await make_gateway(server={"production": True, **PROXY})
    outside = {"X-Forwarded-For": "203.0.113.9"}
    async with aiohttp.ClientSession() as session:

        async def get(base: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
            async with session.get(f"{base}/metrics", headers=headers or {}) as resp:
                body = await (resp.json() if resp.content_type == "application/json" else resp.text())
                return resp.status, body

        assert (await get(opened.base, outside))[0] == 200
        assert (await get(local.base))[0] == 200
        status, body = await get(local.base, outside)  # came through a proxy we were not told about
        assert_json_error(status, body, 403)
        status, body = await get(walled.base)
        assert_json_error(status, body, 403)
        assert "监控指标" in body["error_zh"]
        status, body = await get(walled.base, {"Authorization": f"Bearer {token}"})
        assert status == 200 and "gateway_" in body
        assert (await get(walled.base, {"Authorization": f"Bearer {token}x"}))[0] == 403
        assert (await get(walled.base, {"Authorization": token}))[0] == 403
        assert (await get(proxied.base, outside))[0] == 403  # the proxy says: an outside client
        assert (await get(proxied.base, {"X-Forwarded-For": "127.0.0.1"}))[0] == 200
    head = "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer 令牌\r\n".encode()
    status, _, payload = await raw_http(walled.base, head)
    assert status == 403 and json.loads(payload)["error_zh"]


# ---- whose chat ---------------------------------------------------------------------------------------------------
async def test_agents_read_only_their_own_chats(make_gateway, people, handoff_config):
    gw = await make_gateway(handoff_config.replace(push=False))
    a1, a2 = people("agent", gw.base, "agent1", "demo-agent1"), people("agent", gw.base, "agent2", "demo-agent2")
    boss = people("agent", gw.base, "super1", "demo-super1")
    for a in (a1, a2, boss):
        await a.login()
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("转人工")
    await customer.expect(lambda f: f.get("from") == "bot")
    (queued,) = (await a2.call("GET", "/api/queue"))["chats"]  # the queue's summary is for every agent
    chat = queued["id"]
    assert queued["customer"] == "138****8000" and "transcript" not in queued
    for path in (f"/api/chats/{chat}", f"/api/chats/{chat}/canned"):  # a transcript is not, before it is taken
        status, body = await a2.raw("GET", path)
        assert_json_error(status, body, 403)
    assert (await boss.raw("GET", f"/api/chats/{chat}"))[0] == 200
    await a1.call("POST", f"/api/chats/{chat}/accept")
    assert (await a1.call("GET", f"/api/chats/{chat}/canned"))[0]["text"]
    for method, path, body in (("GET", "", None), ("GET", "/canned", None), ("POST", "/notes", {"text": "n"}),
                               ("POST", "/messages", {"text": "hi"}), ("POST", "/transfer", {"to_agent": "agent2"}),
                               ("POST", "/close", {"disposition": "resolved"})):  # fmt: skip
        status, data = await a2.raw(method, f"/api/chats/{chat}{path}", body)
        assert_json_error(status, data, 403)
    status, data = await a2.raw("POST", f"/api/chats/{chat}/accept")
    assert_json_error(status, data, 409)
    assert (await boss.raw("GET", f"/api/chats/{chat}/canned"))[0] == 200
    await a1.call("POST", f"/api/chats/{chat}/close", {"disposition": "resolved"})
    assert (await a1.raw("GET", f"/api/chats/{chat}"))[0] == 200  # their own closed chat
    assert (await a2.raw("GET", f"/api/chats/{chat}"))[0] == 403
    assert (await a2.raw("GET", f"/api/chats/{chat}/canned"))[0] == 403


# ---- malformed requests ----------------------------------------------------------------------------------
async def test_malformed_bodies_ids_and_charsets_get_json_4xx(make_gateway, people, handoff_config):
    gw = await make_gateway(handoff_config.replace(push=False))
    a1 = people("agent", gw.base, "agent1", "demo-agent1")
    await a1.login()
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("转人工")
    await customer.expect(lambda f: f.get("from") == "bot")
    chat = (await a1.call("GET", "/api/queue"))["chats"][0]["id"]
    await a1.call("POST", f"/api/chats/{chat}/accept")
    messages = f"/api/chats/{chat}/messages"
    cases: list[tuple[str, str, bytes, str, int, str | None]] = [
        ("POST", messages, b'{"text": 5}', "application/json", 400, "text"),
        ("POST", messages, b'{"text": "\\ud800"}', "application/json", 400, None),
        ("POST", messages, b'{"text": "   "}', "application/json", 400, "text"),
        ("POST", messages, json.dumps({"text": "a" * 4001}).encode(), "application/json", 400, "text"),
        ("POST", messages, b"[" * 5000 + b"]" * 5000, "application/json", 400, None),
        ("POST", messages, b'["text"]', "application/json", 400, None),
        ("POST", messages, b"\xff\xfe\x00", "application/json", 400, None),
        ("POST", messages, b"", "application/json", 400, None),
        ("POST", messages, b'{"text": "' + b"x" * 70_000 + b'"}', "application/json", 413, None),
        ("POST", f"/api/chats/{chat}/notes", b'{"text": {"a": 1}}', "application/json", 400, "text"),
        ("POST", "/api/agent/status", b'{"status": "busy"}', "application/json", 400, "status"),
        ("POST", "/api/agent/status", b'{"status": ["online"]}', "application/json", 400, "status"),
        ("POST", f"/api/chats/{chat}/close", b'{"disposition": "bored"}', "application/json", 400, "disposition"),
        ("POST", f"/api/chats/{chat}/close", b'{"disposition": NaN}', "application/json", 400, None),
        ("POST", f"/api/chats/{chat}/transfer", b"{}", "application/json", 400, "to_agent"),
        ("POST", f"/api/chats/{chat}/transfer", b'{"to_agent": 1}', "application/json", 400, "to_agent"),
        ("POST", f"/api/chats/{chat}/transfer", b'{"to_agent": "nobody"}', "application/json", 404, "to_agent"),
        ("POST", f"/api/chats/{chat}/transfer", b'{"to_skill": "x", "note": 7}', "application/json", 400, "note"),
        ("POST", "/api/callbacks/CB1/reply", b'{"text": null}', "application/json", 400, "text"),
        ("POST", "/api/callbacks/CB1/done", b'{"note": ["x"]}', "application/json", 400, "note"),
        ("POST", "/api/callbacks/..%2F..%2Fetc/done", b"{}", "application/json", 400, "id"),
        ("GET", "/api/chats/%ED%A0%80", b"", "", 400, "id"),
        ("GET", "/api/chats/" + "a" * 200, b"", "", 400, "id"),
        ("GET", "/api/chats/%00", b"", "", 400, "id"),
        ("GET", "/api/chats/no-such-chat", b"", "", 404, None),
        ("POST", "/api/chats/%F0%9F%98%80/accept", b"", "", 400, "id"),
        ("POST", messages, '{"text": "好"}'.encode("utf-16"), "application/json; charset=utf-16", 400, None),
        ("POST", messages, b'{"text": "ok"}', "application/json; charset=no-such-charset", 200, None),
        ("POST", "/api/agent/login", b'{"name": "\\udfff", "password": "x"}', "application/json", 400, None),
        ("POST", "/api/agent/login", b'{"name": ["agent1"], "password": "x"}', "application/json", 400, "name"),
        ("POST", "/api/agent/login", b'{"name": "agent1"}', "application/json", 400, None),
        ("POST", "/api/agent/login", b'{"name": "agent1", "password": 12345678}', "application/json", 400, "password"),
        ("POST", "/api/agent/login", b'{"name": "' + b"n" * 99 + b'", "password": "x"}', "application/json", 400,
         "name"),
    ]  # fmt: skip
    for method, path, body, content_type, expected, field in cases:
        headers = {"X-CSRF-Token": a1.csrf} | ({"Content-Type": content_type} if content_type else {})
        async with a1.session.request(method, f"{gw.base}{path}", data=body, headers=headers) as resp:
            data = await resp.json()
            if expected == 200:
                assert resp.status == 200, (path, body[:60], resp.status, data)
                continue
            assert resp.status == expected, (path, body[:60], resp.status, data)
            assert data["error"] and data["error_zh"], data
            if field:
                assert data.get("field") == field, (path, body[:60], data)
    async with aiohttp.ClientSession() as session, session.get(f"{gw.base}/healthz") as resp:
        assert resp.status == 200


async def test_bad_console_frames_are_answered_and_the_socket_stays(make_gateway, people, handoff_config):
    gw = await make_gateway(handoff_config.replace(push=False))
    a1 = people("agent", gw.base, "agent1", "demo-agent1")
    await a1.login()
    await a1.connect()
    customer = people("customer", gw.base)
    await customer.connect()
    await customer.send("转人工")
    await customer.expect(lambda f: f.get("from") == "bot")
    chat = (await a1.call("GET", "/api/queue"))["chats"][0]["id"]
    await a1.call("POST", f"/api/chats/{chat}/accept")
    assert a1.ws is not None
    junk = ["not json", "[]", "5", '{"type": 5}', '{"type": "typing", "chat": ["x"]}', '{"type": "dance"}',
            '{"type": "typing", "chat": "\\ud800"}', "[" * 3000, '"' + "x" * 7000 + '"']  # fmt: skip
    for frame in junk:
        await a1.ws.send_str(frame)
        error = await a1.expect(is_("error"))
        assert error["error"] and error["error_zh"], error
    await a1.ws.send_bytes(b"\x00\x01")  # binary: ignored
    await a1.ws.send_str('{"type": "typing", "chat": "../../etc"}')  # a shape no chat has: ignored
    await a1.ws.send_str(json.dumps({"type": "typing", "chat": chat}))  # the socket still works
    assert (await customer.expect(is_("typing")))["from"] == "agent"
    assert not a1.ws.closed
    async with aiohttp.ClientSession(cookie_jar=a1.session.cookie_jar) as session:  # another site's page
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"{gw.base}/ws/agent", headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403
