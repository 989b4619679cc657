"""A bounded fuzz of every agent endpoint over HTTP on loopback (hypothesis): bodies of every JSON type, raw
bytes, lone surrogates, deep nesting, odd charsets and content types, path ids of any shape — each answered
with JSON below 500 within a few seconds, and /healthz healthy afterwards."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from yarl import URL

from gateway.app import create_app
from tests.handoff.conftest import SECRET, AgentClient, WebCustomer

ENDPOINTS = [
    ("POST", "/api/agent/login"), ("POST", "/api/agent/status"), ("POST", "/api/chats/{id}/messages"),
    ("POST", "/api/chats/{id}/notes"), ("POST", "/api/chats/{id}/transfer"), ("POST", "/api/chats/{id}/close"),
    ("POST", "/api/chats/{id}/accept"), ("GET", "/api/chats/{id}"), ("GET", "/api/chats/{id}/canned"),
    ("POST", "/api/callbacks/{id}/reply"), ("POST", "/api/callbacks/{id}/done"), ("GET", "/api/queue"),
    ("GET", "/api/callbacks"), ("GET", "/api/agent/me"), ("GET", "/api/chats/{id}/history"),
    ("GET", "/api/history/{id}"), ("GET", "/api/history/{id}/export"), ("GET", "/api/search?text={id}"),
    ("GET", "/api/search?phone={id}&from={id}"), ("GET", "/api/live"), ("POST", "/api/chats/{id}/takeover"),
]  # fmt: skip
FIELDS = ["name", "password", "status", "text", "note", "to_agent", "to_skill", "disposition", "type", "chat"]
GOOD = {"status": "online", "disposition": "resolved", "to_skill": "network", "to_agent": "agent2", "name": "agent1"}

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
                      max_leaves=10)  # fmt: skip
objects = st.dictionaries(st.sampled_from(FIELDS), values | st.sampled_from(list(GOOD.values())), max_size=4)
surrogates = st.sampled_from(["\\ud800", "\\udfff", "\\ud83d", "a\\udc00b"]).flatmap(
    lambda s: st.sampled_from(FIELDS).map(lambda f: f'{{"{f}": "{s}", "text": "{s}"}}'.encode())
)
bodies = st.one_of(
    values.map(lambda v: json.dumps(v).encode()),
    objects.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.binary(max_size=200),
    surrogates,
    st.integers(20, 4000).map(lambda n: b'{"text": ' + b"[" * n + b"]" * n + b"}"),
    st.integers(1, 3).map(lambda n: b'{"text": "' + b"x" * (n * 40_000) + b'"}'),
    st.sampled_from([b"", b"{", b"null", b'{"text": NaN}', b'{"status": Infinity}',
                     '{"text": "好"}'.encode("utf-16")]),
)  # fmt: skip
content_types = st.sampled_from(["application/json", "application/json; charset=klingon", "text/plain", "",
                                 "application/json; charset=utf-16", "application/x-www-form-urlencoded"])  # fmt: skip
odd_ids = st.one_of(
    st.text(max_size=40).map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe="")),
    st.sampled_from(["..", "%2e%2e", "a" * 300, "%00", "%ED%A0%80", "CB1", "x%2Fy", "%25"]),
)


def test_every_agent_endpoint_answers_malformed_input_with_json_4xx(make_settings, nlu_engine, handoff_config):
    loop = asyncio.new_event_loop()
    settings = make_settings(webchat={"token_secret": SECRET})
    server = TestServer(create_app(settings, nlu=nlu_engine, handoff_config=handoff_config.replace(push=False)))
    state: dict[str, Any] = {}

    async def setup() -> None:
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        agent = AgentClient(base, "agent1", "demo-agent1")
        await agent.login()
        customer = WebCustomer(base)
        await customer.connect()
        await customer.send("转人工")
        await customer.expect(lambda f: f.get("from") == "bot")
        chat = (await agent.call("GET", "/api/queue"))["chats"][0]["id"]
        await agent.call("POST", f"/api/chats/{chat}/accept")
        state.update(base=base, agent=agent, customer=customer, chat=chat, seen={})

    async def one(method: str, path: str, body: bytes, content_type: str, csrf: bool) -> None:
        agent: AgentClient = state["agent"]
        headers = {"X-CSRF-Token": agent.csrf if csrf else "wrong"}
        if content_type:
            headers["Content-Type"] = content_type
        url = URL(state["base"] + path, encoded=True)
        async with asyncio.timeout(5):  # never a hang
            async with agent.session.request(method, url, data=body, headers=headers) as resp:
                raw = await resp.read()
        state["seen"][resp.status] = state["seen"].get(resp.status, 0) + 1
        assert resp.status < 500, (method, path, body[:80], resp.status, raw[:200])
        if resp.status >= 400:
            data = json.loads(raw)
            assert data["error"] and data["error_zh"], data

    @hyp_settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(ENDPOINTS), bodies, content_types, st.booleans(), st.one_of(st.none(), odd_ids),
           st.booleans())  # fmt: skip
    def check(endpoint: tuple[str, str], body: bytes, content_type: str, real_id: bool, odd: str | None,
              csrf: bool) -> None:  # fmt: skip
        method, template = endpoint
        chat_id = odd if odd is not None else (state["chat"] if real_id else "CB20260101000001")
        loop.run_until_complete(one(method, template.replace("{id}", chat_id), body, content_type, csrf))

    async def healthy() -> int:
        async with aiohttp.ClientSession() as session, session.get(f"{state['base']}/healthz") as resp:
            return resp.status

    async def teardown() -> None:
        await state["agent"].close()
        await state["customer"].close()
        await server.close()

    try:
        loop.run_until_complete(setup())
        check()
        assert loop.run_until_complete(healthy()) == 200
        print(f"\nfuzzed agent endpoints: statuses {dict(sorted(state['seen'].items()))}")
        assert {400, 403}.issubset(state["seen"]) and sum(state["seen"].values()) >= 250, state["seen"]
    finally:
        if state:
            loop.run_until_complete(teardown())
        loop.close()
