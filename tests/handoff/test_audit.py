"""The audit trail, roles on every /api route, and revealing a number with a reason — on a real gateway over loopback,
a real Redis, the real CLI in a child process."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway import audit
from gateway.app import create_app
from gateway.rkeys import deployment_keys
from handoff import auth
from handoff.agents import AgentStore

PHONE = "13800138000"
PROXY = {"trusted_proxies": ("127.0.0.1/32",)}
ADMIN_PASSWORD = "admin-password-123"


async def entries(redis_client: Any, key_prefix: str) -> list[dict[str, Any]]:
    keys = deployment_keys(key_prefix)
    return [audit.entry_of(i, raw) for i, raw in await redis_client.xrange(keys.audit())]


async def test_record_reads_and_trims_without_keeping_a_number(redis_client, key_prefix):
    keys = deployment_keys(key_prefix)
    await redis_client.xadd(keys.audit(), {"who": "ancient", "what": "sign_in", "at": "1"}, id="1000-0")
    first = await audit.record(redis_client, keys, "agent1", "reveal", "+86 138-0013-8000", "1.2.3.4",
                               "客户要求改回电号码 13900139000", chat="c1")  # fmt: skip
    await audit.record(redis_client, keys, "super1", "reveal", PHONE, reason="complaint follow-up", chat="c2")
    await audit.record(redis_client, keys, "cli:ops", "config_change", setting="nlu.model", value="m2")
    with pytest.raises(ValueError):
        await audit.record(redis_client, keys, "x", "Drop Table")
    found = await entries(redis_client, key_prefix)
    assert [e["who"] for e in found] == ["agent1", "super1", "cli:ops"]  # the three-year-old entry trimmed (MINID)
    assert found[0]["id"] == first and found[0]["where"] == "1.2.3.4"
    ref = audit.customer_ref(keys, PHONE)
    assert found[0]["customer"] == found[1]["customer"] == ref and re.fullmatch(r"[0-9a-f]{24}", ref)
    assert "13900139000" not in found[0]["reason"] and "139****9000" in found[0]["reason"]
    raw = json.dumps([[i.decode(), {k.decode(): v.decode() for k, v in f.items()}]
                      for i, f in await redis_client.xrange(keys.audit())], ensure_ascii=False)  # fmt: skip
    assert PHONE not in raw and "0013" not in raw and "13900139000" not in raw

    newest, cursor = await audit.page(redis_client, keys, audit.Query(), limit=2)
    assert [e["who"] for e in newest] == ["cli:ops", "super1"] and cursor
    older, cursor = await audit.page(redis_client, keys, audit.Query(), cursor, limit=2)
    assert [e["who"] for e in older] == ["agent1"] and cursor == ""
    mine = await audit.collect(redis_client, keys, audit.Query(customer=ref, what="reveal"))
    assert [e["details"]["chat"] for e in mine] == ["c2", "c1"]
    assert await audit.collect(redis_client, keys, audit.Query(since=time.time() + 86400)) == []
    assert len(await audit.collect(redis_client, keys, audit.Query(until=time.time() + 1))) == 3
    assert await audit.trim(redis_client, keys, time.time() + 1) == 3
    assert await redis_client.xlen(keys.audit()) == 0


async def test_details_keep_the_gateways_own_ids_and_mask_numbers(redis_client, key_prefix):
    """A chat id is random hex: one with a long run of digits inside (a CI run met one) looked like a bank card to
    the masker and was stored as 8cd3c*********9099…, so the trail no longer named the chat."""
    keys = deployment_keys(key_prefix)
    chat = "8cd3c6400552429099f49184df7d4627"
    await audit.record(redis_client, keys, "agent1", "reveal", PHONE, reason="回电确认", chat=chat, count=3,
                       note="客户说改用 13900139000", card="6222021234567890123", tags=["13900139000"])  # fmt: skip
    (entry,) = await entries(redis_client, key_prefix)
    assert entry["details"]["chat"] == chat and entry["details"]["count"] == 3
    assert entry["details"]["note"] == "客户说改用 139****9000" and entry["details"]["tags"] == ["139****9000"]
    assert entry["details"]["card"].endswith("0123") and "62220212345678" not in json.dumps(entry)


async def test_sign_ins_failures_and_sign_outs_are_audited_with_the_address(make_gateway, people, redis_client,
                                                                            key_prefix):  # fmt: skip
    gw = await make_gateway(server=PROXY)
    async with aiohttp.ClientSession() as http:
        body = {"name": "agent1", "password": "wrong-password"}
        async with http.post(f"{gw.base}/api/agent/login", json=body, headers={"X-Forwarded-For": "203.0.113.7"}):
            pass
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    await agent.call("POST", "/api/agent/logout")
    found = [(e["who"], e["what"], e["where"]) for e in await entries(redis_client, key_prefix)]
    assert ("agent1", "sign_in_failed", "203.0.113.7") in found
    assert ("agent1", "sign_in", "127.0.0.1") in found and ("agent1", "sign_out", "127.0.0.1") in found


async def test_an_untrusted_peer_cannot_choose_its_address(make_gateway, redis_client, key_prefix):
    gw = await make_gateway()  # no trusted proxies: X-Forwarded-For is the client's word, not believed
    async with aiohttp.ClientSession() as http:
        body = {"name": "nobody", "password": "wrong-password"}
        async with http.post(f"{gw.base}/api/agent/login", json=body, headers={"X-Forwarded-For": "203.0.113.7"}):
            pass
    [entry] = [e for e in await entries(redis_client, key_prefix) if e["what"] == "sign_in_failed"]
    assert entry["who"] == "nobody" and entry["where"] == "127.0.0.1"


async def _admin(redis_client: Any, key_prefix: str) -> None:
    await AgentStore(redis_client, deployment_keys(key_prefix)).add("root1", ADMIN_PASSWORD, role="admin",
                                                                    skills=("zh",), by="system")  # fmt: skip


async def test_audit_api_roles_filters_export_and_no_way_to_change_it(make_gateway, people, redis_client,
                                                                      key_prefix):  # fmt: skip
    gw = await make_gateway()
    await _admin(redis_client, key_prefix)
    a1, boss = people("agent", gw.base, "agent1", "demo-agent1"), people("agent", gw.base, "super1", "demo-super1")
    root = people("agent", gw.base, "root1", ADMIN_PASSWORD)
    for a in (a1, boss, root):
        await a.login()
    keys = deployment_keys(key_prefix)
    await audit.record(redis_client, keys, "agent1", "reveal", PHONE, "127.0.0.1", "customer asked", chat="c9")
    status, body = await a1.raw("GET", "/api/audit")
    assert status == 403 and body["error"] == "only supervisors and admins may read the audit trail"
    assert body["error_zh"] == "仅主管和管理员可查看审计日志"

    listed = await boss.call("GET", "/api/audit")
    whats = [e["what"] for e in listed["entries"]]
    assert whats[0] == "reveal" and "sign_in" in whats and "agent_created" in whats  # newest first
    assert [e["details"]["chat"] for e in (await boss.call("GET", f"/api/audit?customer=%2B86{PHONE}"))["entries"]] == [
        "c9"
    ]
    signed = (await boss.call("GET", "/api/audit?what=sign_in&who=super1"))["entries"]
    assert [(e["who"], e["what"]) for e in signed] == [("super1", "sign_in")]
    page = await boss.call("GET", "/api/audit?limit=1")
    assert len(page["entries"]) == 1 and page["next"]
    second = await boss.call("GET", f"/api/audit?limit=1&cursor={page['next']}")
    assert second["entries"][0]["id"] < page["entries"][0]["id"]
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert (await boss.call("GET", f"/api/audit?since={today}&until={today}"))["entries"]
    assert (await boss.call("GET", "/api/audit?until=2001-01-01"))["entries"] == []
    bad_queries = (("since=yesterday", "since"), ("customer=12", "customer"), ("what=DROP", "what"),
                   ("limit=0", "limit"), ("cursor=abc", "cursor"), ("cursor=99999999999999999999-1", "cursor"),
                   ("until=1e400", "until"), ("since=99999999999999999999", "since"),
                   ("since=2026-12-06&until=2026-12-01", "since"))  # fmt: skip
    for bad, field in bad_queries:
        status, body = await boss.raw("GET", f"/api/audit?{bad}")
        assert status == 400 and body["field"] == field and body["error_zh"], (bad, body)

    status, body = await boss.raw("GET", "/api/audit/export?format=csv")
    assert status == 403 and body["error"] == "only admins may export the audit trail"
    async with root.session.get(f"{gw.base}/api/audit/export?format=csv&what=reveal") as resp:
        assert resp.status == 200 and resp.content_type == "text/csv"
        assert "attachment" in resp.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO((await resp.text()).lstrip("\ufeff"))))
    assert [(r["who"], r["what"], r["reason"]) for r in rows] == [("agent1", "reveal", "customer asked")]
    async with root.session.get(f"{gw.base}/api/audit/export?format=json") as resp:
        assert resp.status == 200 and len((await resp.json())["entries"]) >= 5
    assert (await root.raw("GET", "/api/audit/export?format=xml"))[0] == 400
    exports = [e for e in await entries(redis_client, key_prefix) if e["what"] == "audit_export"]
    assert [(e["who"], e["details"]["format"]) for e in exports] == [("root1", "csv"), ("root1", "json")]

    before = await redis_client.xlen(keys.audit())
    first_id = (await redis_client.xrange(keys.audit(), count=1))[0][0].decode()
    for method in ("PUT", "DELETE", "PATCH"):
        for path in ("/api/audit", "/api/audit/export", f"/api/audit/{first_id}"):
            async with root.session.request(method, f"{gw.base}{path}", headers={"X-CSRF-Token": root.csrf}) as resp:
                assert resp.status in (404, 405), (method, path, resp.status)
    for path in ("/api/audit", f"/api/audit/{first_id}"):
        assert (await root.raw("POST", path, {"who": "x"}))[0] in (404, 405)
    assert await redis_client.xlen(keys.audit()) >= before
    assert (await redis_client.xrange(keys.audit(), count=1))[0][0].decode() == first_id


async def test_reveal_needs_the_chat_and_a_reason_and_is_audited(make_gateway, people, redis_client, key_prefix,
                                                                 handoff_config):  # fmt: skip
    gw = await make_gateway(handoff_config.replace(push=False))
    a1, a2 = people("agent", gw.base, "agent1", "demo-agent1"), people("agent", gw.base, "agent2", "demo-agent2")
    boss = people("agent", gw.base, "super1", "demo-super1")
    for a in (a1, a2, boss):
        await a.login()
    customer = people("customer", gw.base, PHONE)
    await customer.connect()
    await customer.send("转人工")
    await customer.expect(lambda f: f.get("from") == "bot")
    chat_id = (await a1.call("GET", "/api/queue"))["chats"][0]["id"]
    path = f"/api/chats/{chat_id}/reveal"
    status, body = await a1.raw("POST", path, {"reason": "need to call back"})
    assert status == 403 and body["error_zh"] == "仅接待该会话的坐席或主管可以查看客户的完整号码"  # queued: nobody's
    await a1.call("POST", f"/api/chats/{chat_id}/accept")
    await a1.connect()
    await customer.send("我的身份证110101199003074518，备用号码13900139000")
    frame = await a1.expect(lambda f: f.get("type") == "message" and f["entry"].get("kind") == "customer")
    assert frame["entry"]["text"] == "我的身份证110***********4518，备用号码139****9000"  # live, as in the log
    detail = await a1.call("GET", f"/api/chats/{chat_id}")
    shown = json.dumps(detail, ensure_ascii=False)
    assert detail["profile"]["phone"] == "138****8000" and PHONE not in shown and "19900307" not in shown
    status, body = await a2.raw("POST", path, {"reason": "curious about it"})
    assert status == 403 and "only the agent holding this chat" in body["error"]
    for reason in ("", "abc", "x" * 201):
        status, body = await a1.raw("POST", path, {"reason": reason})
        assert status == 400 and body["field"] == "reason" and body["error_zh"]
    assert (await a1.raw("POST", path, {"why": "no reason field"}))[0] == 400
    assert (await a1.raw("POST", "/api/chats/no-such-chat/reveal", {"reason": "call back"}))[0] == 404
    assert (await a1.raw("POST", path, {"reason": "call back"}, csrf=False))[0] == 403
    shown = await a1.call("POST", path, {"reason": "回电确认  装机地址"})
    assert shown == {"phone": PHONE, "masked": "138****8000", "shown_for": 60}
    assert (await boss.call("POST", path, {"reason": "quality check"}))["phone"] == PHONE
    reveals = [e for e in await entries(redis_client, key_prefix) if e["what"] == "reveal"]
    ref = audit.customer_ref(deployment_keys(key_prefix), PHONE)
    assert [(e["who"], e["reason"], e["customer"], e["details"]["chat"]) for e in reveals] == [
        ("agent1", "回电确认 装机地址", ref, chat_id), ("super1", "quality check", ref, chat_id)]  # fmt: skip


def _api_routes(app: web.Application) -> list[tuple[web.AbstractRoute, web.Application]]:
    """Every route whose path starts with /api, with the application that serves it."""
    out: list[tuple[web.AbstractRoute, web.Application]] = []
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            out += [(r, resource._app) for r in resource._app.router.routes()]
        else:
            out += [(r, app) for r in resource]
    return [(r, a) for r, a in out if (r.resource.canonical if r.resource else "").startswith("/api")]


def _sample(route: web.AbstractRoute) -> str:
    """A path the route matches: each variable ``x1``, or the first word of an alternation (``{name:a|b}`` → a)."""
    info = route.resource.get_info() if route.resource else {}
    if "formatter" not in info:
        return route.resource.canonical if route.resource else ""
    groups = dict(re.findall(r"\(\?P<(\w+)>([^)]*)\)", info["pattern"].pattern))
    values = {k: v.split("|")[0] if re.fullmatch(r"[\w|]+", v) else "x1" for k, v in groups.items()}
    return route.resource.canonical.format(**values)


async def test_every_api_route_has_a_role_checked_by_the_middleware(make_gateway, people, settings, nlu_engine):
    app = create_app(settings, nlu=nlu_engine)
    routes = [(r, a) for r, a in _api_routes(app) if r.method != "HEAD"]
    assert len(routes) > 40
    unguarded = [r.resource.canonical for r, a in routes if auth.middleware not in a.middlewares]
    assert unguarded == []  # every /api route is in the sub-application behind the sign-in middleware
    guards = {(r.method, r.resource.canonical): getattr(r.handler, auth.ROLE_MARK, auth.DEFAULT) for r, _ in routes}
    samples = {(r.method, r.resource.canonical): _sample(r) for r, _ in routes}
    assert {g.role for g in guards.values()} <= {"agent", "supervisor", "admin", "public"}
    # public: sign-in, and the incident alert endpoint (a supervisor's session or the monitoring token, checked inside)
    assert sorted(k for k, g in guards.items() if g.role == "public") == [("POST", "/api/agent/login"),
                                                                          ("POST", "/api/incidents")]  # fmt: skip
    assert guards[("GET", "/api/audit")].role == "supervisor" and guards[("GET", "/api/audit/export")].role == "admin"

    gw = await make_gateway()
    agent = people("agent", gw.base, "agent2", "demo-agent2")
    await agent.login()
    async with aiohttp.ClientSession() as anonymous:
        for (method, path), guard in guards.items():
            if path == "/api/agent/login":
                continue
            async with anonymous.request(method, gw.base + samples[method, path], json={}) as resp:
                assert resp.status == 401, (method, path, resp.status)  # no session: refused before the handler
            if guard.role in ("supervisor", "admin"):
                headers = {"X-CSRF-Token": agent.csrf}
                async with agent.session.request(method, gw.base + samples[method, path], json={},
                                                 headers=headers) as resp:  # fmt: skip
                    body = await resp.json()
                assert resp.status == 403 and body["error"].startswith("only "), (method, path, body)  # by role


async def test_agent_accounts_and_roles_are_audited_and_the_cli_reads_the_trail(redis_client, key_prefix):
    store = AgentStore(redis_client, deployment_keys(key_prefix))
    await store.add("zhao", "a-long-password", role="agent", by="root1")
    await store.add("zhao", "a-long-password", role="supervisor", by="root1")
    await store.add("zhao", "a-long-password", role="supervisor", capacity=5, by="root1")
    env = {**os.environ, "REDIS_URL": os.environ.get("REDIS_URL", ""), "GATEWAY_REDIS_KEY_PREFIX": key_prefix}
    if not env["REDIS_URL"]:
        pytest.skip("the CLI part needs REDIS_URL (a server both processes reach)")
    add = subprocess.run([sys.executable, "-m", "gateway", "agents", "add", "qian", "--role", "admin",
                          "--password-stdin"], input="a-long-password\n", capture_output=True, text=True, env=env,
                         timeout=60)  # fmt: skip
    assert add.returncode == 0, add.stderr
    keys = deployment_keys(key_prefix)
    await audit.record(redis_client, keys, "agent1", "reveal", PHONE, "10.0.0.1", "call back", chat="c1")
    found = [(e["who"], e["what"], e["details"].get("role_before")) for e in await entries(redis_client, key_prefix)]
    assert found[:3] == [("root1", "agent_created", None), ("root1", "role_change", "agent"),
                         ("root1", "agent_changed", None)]  # fmt: skip
    assert found[3][1] == "agent_created" and found[3][0].startswith("cli:")

    run = subprocess.run([sys.executable, "-m", "gateway", "audit", "--customer", f"+86 {PHONE}", "--json"],
                         capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(e["who"], e["what"], e["reason"]) for e in lines] == [("agent1", "reveal", "call back")]
    table = subprocess.run([sys.executable, "-m", "gateway", "audit", "--what", "role_change", "--since", "2026-01-01"],
                           capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert table.returncode == 0 and "role_change" in table.stdout and "reveal" not in table.stdout
    bad = subprocess.run([sys.executable, "-m", "gateway", "audit", "--since", "last week"], capture_output=True,
                         text=True, env=env, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "not a date" in bad.stderr
    reads = [e for e in await entries(redis_client, key_prefix) if e["what"] == "audit_export"]
    assert [(e["customer"], e["details"]["format"], e["details"]["via"]) for e in reads] == [
        (audit.customer_ref(keys, PHONE), "json", "cli"), ("", "text", "cli")]  # fmt: skip
    assert all(e["who"].startswith("cli:") for e in reads)
