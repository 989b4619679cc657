"""The OpenAPI contract: the document covers exactly the routes a created app registers (both ways), is valid
OpenAPI 3.1, documents the bodies the handlers really decode, is served with its page, and a bounded schemathesis
run against a live gateway on loopback finds no 5xx and no answer the document does not describe."""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from openapi_spec_validator import OpenAPIV31SpecValidator

from gateway.app import create_app
from gateway.openapi import document, routes_of
from gateway.openapi_ops import operations
from gateway.settings import Settings
from handoff.auth import SERVICE

# a body decoded through one of these (the Struct is their second argument)
DECODERS = {"json_body", "decode", "_signed", "_body"}
# what the schemathesis run leaves out, and why: signing out ends the run's own session; retraining starts a
# scikit-learn child process that takes minutes on this machine (both are covered by their own tests)
SCHEMATHESIS_EXCLUDED = ("/api/agent/logout", "/api/nlu/retrain")
# 5xx: a 500 (or any status the document does not give) fails status_code_conformance; a 503 is documented
# (Redis unavailable, or a back end a feature needs is not there), so not_a_server_error is not run
CHECKS = "status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"


@pytest.fixture
def every_channel(make_settings: Any) -> Settings:
    """Settings with every channel's webhook enabled (the secrets are dummies: nothing is started)."""
    return make_settings(
        sms={"provider": "twilio", "twilio_account_sid": "AC1", "twilio_auth_token": "t", "webhook_secret": "s"},
        telegram={"token": "1:x", "webhook_secret": "w"},
        wechat={"token": "w", "appid": "wx1", "app_secret": "a"},
        weibo={"app_secret": "b", "uid": "1", "access_token": "c"},
        forum={"webhook_secret": "d", "discourse_url": "http://127.0.0.1:9", "api_key": "k"},
    )


def _registered(settings: Settings) -> set[tuple[str, str]]:
    return {(r.method, r.path) for r in routes_of(create_app(settings))}


def test_every_registered_route_is_documented_and_every_entry_registered(every_channel: Settings) -> None:
    app = create_app(every_channel)
    # what the document leaves out is only HEAD (beside each GET) and the static files: no any-method route
    left_out = [r for r in app.router.routes() if r.method != "HEAD" and not isinstance(r.resource, web.StaticResource)]
    assert len(left_out) == len(list(routes_of(app)))
    registered, documented = {(r.method, r.path) for r in routes_of(app)}, set(operations())
    missing = sorted(registered - documented)
    assert not missing, f"routes without an entry in gateway/openapi_ops.py: {missing}"
    stale = sorted(documented - registered)
    assert not stale, f"entries in gateway/openapi_ops.py that no route answers: {stale}"
    assert ("POST", "/channels/telegram/webhook") in registered and ("GET", "/api/queue") in registered
    for op in operations().values():
        op.bodies()  # every "module:Struct" an entry names is importable and a Struct


def test_the_served_document_is_the_apps_own_and_valid_openapi_3_1(settings: Settings) -> None:
    app = create_app(settings)
    doc = document(app)
    OpenAPIV31SpecValidator(doc).validate()
    in_doc = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert in_doc == {(r.method, r.path) for r in routes_of(app)}
    undocumented = [f"{m} {p}" for p, item in doc["paths"].items() for m, op in item.items() if "x-undocumented" in op]
    assert not undocumented
    assert not any(p.startswith("/channels/telegram") for p in doc["paths"])  # not enabled: not documented
    assert doc["paths"]["/api/live"]["get"]["x-role"] == "supervisor"  # read from @requires, not written twice
    assert doc["paths"]["/api/agent/login"]["post"]["security"] == []  # @public
    assert doc["paths"]["/api/chats/{id}/messages"]["post"]["security"] == [{"agentSession": [], "csrfToken": []}]
    action = doc["paths"]["/api/callbacks/{id}/{action}"]["post"]["parameters"][1]
    assert action["schema"]["enum"] == ["reply", "done"]  # from the route's {action:reply|done}
    error = doc["components"]["responses"]["400"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Error"}


def _decoded(handler: Any) -> set[type]:
    """The Structs ``handler``'s own source decodes a body into (``json_body(request, X)``, ``decode(raw, X)``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(handler)))
    except (OSError, TypeError):
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and len(node.args) >= 2 and isinstance(node.args[1], ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            kind = handler.__globals__.get(node.args[1].id)
            if name in DECODERS and isinstance(kind, type) and issubclass(kind, msgspec.Struct):
                found.add(kind)
    return {k for k in found if not k.__name__.startswith("_")}  # a private sniffing Struct is not the body


def test_documented_bodies_are_the_structs_the_handlers_decode(every_channel: Settings) -> None:
    ops, wrong = operations(), []
    for route in routes_of(create_app(every_channel)):
        op = ops[(route.method, route.path)]
        if op.ok == 101:  # a WebSocket: what it decodes are its frames, not a request body
            continue
        decoded, documented = _decoded(route.handler), set(op.bodies())
        if decoded and decoded != documented:
            wrong.append(f"{route.method} {route.path}: the handler decodes {sorted(t.__name__ for t in decoded)}, "
                         f"the document says {sorted(t.__name__ for t in documented)}")  # fmt: skip
    assert not wrong, "\n".join(wrong)


async def test_openapi_json_and_the_docs_page_are_served(client: Any) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    doc = json.loads(await resp.read())
    assert doc["openapi"] == "3.1.0" and "/webhooks/rest/webhook" in doc["paths"]
    page = await client.get("/docs?lang=en")
    assert page.status == 200 and page.content_type == "text/html"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    html = await page.text()
    assert "<script" not in html  # rendered here: nothing to load from anywhere
    for path in doc["paths"]:
        assert f'<code class="path">{path}</code>' in html
    assert "Send a customer message" in html and "Error" in html
    zh = await (await client.get("/docs?lang=zh")).text()
    assert "发送客户消息" in zh and "接口文档" in zh
    css = await client.get("/static/api_docs.css")
    assert css.status == 200


async def _schemathesis(base: str, cookie: str, csrf: str) -> tuple[int, str]:
    args = [sys.executable, "-m", "schemathesis.cli", "--no-color", "run", f"{base}/openapi.json",
            "-H", f"Cookie: gw_agent={cookie}", "-H", f"X-CSRF-Token: {csrf}",
            "--max-examples", "3", "--seed", "20", "--phases", "examples,fuzzing", "--workers", "1",
            "--request-timeout", "15", "--checks", CHECKS, "--suppress-health-check", "all"]  # fmt: skip
    for path in SCHEMATHESIS_EXCLUDED:
        args += ["--exclude-path", path]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 150)
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.timeout(200)
async def test_schemathesis_finds_no_5xx_and_no_undocumented_answer(
    aiohttp_server: Any, make_settings: Any, nlu_engine: Any, tmp_path: Path
) -> None:
    settings = make_settings(sms={"webhook_secret": "s"})  # the generic SMS webhook, too
    server = await aiohttp_server(create_app(settings, nlu=nlu_engine))
    base = f"http://127.0.0.1:{server.port}"
    await server.app[SERVICE].agents.add("oapi-admin", "oapi-admin-pass", role="admin", skills=("zh", "en"))
    async with aiohttp.ClientSession() as http:  # an admin's session: every /api operation is reached
        login = await http.post(f"{base}/api/agent/login", json={"name": "oapi-admin", "password": "oapi-admin-pass"})
        assert login.status == 200, await login.text()
        csrf = (await login.json())["csrf"]
        cookie = login.cookies["gw_agent"].value
    started = time.monotonic()
    code, out = await _schemathesis(base, cookie, csrf)
    took = time.monotonic() - started
    (tmp_path / "schemathesis.txt").write_text(out)
    lines = out.splitlines()
    first = next((i for i, ln in enumerate(lines) if "FAILURES" in ln), max(0, len(lines) - 60))
    tail = "\n".join(lines[first : first + 150])
    assert code == 0, f"schemathesis found problems:\n{tail}"
    assert "Tested:" in out and " passed" in out, tail
    # the session held, so every /api operation was really reached; only the signed webhooks refuse everything
    refused = re.search(r"^Authentication failed.*?(?=💡)", out, re.S | re.M)
    refused_paths = re.findall(r"- [A-Z]+ (\S+)", refused.group(0)) if refused else []
    assert all(p.startswith("/channels/") for p in refused_paths), refused_paths
    assert took < 90, f"the run took {took:.0f} s"
    print(f"schemathesis: {took:.1f} s; " + next((ln.strip() for ln in lines if re.search(r"\d+ generated", ln)), ""),
          file=sys.stderr)  # fmt: skip
