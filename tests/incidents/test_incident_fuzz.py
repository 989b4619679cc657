"""A bounded fuzz of every incident endpoint over HTTP on loopback (hypothesis), as a signed-in supervisor:
bodies of every JSON type, raw bytes, lone surrogates, deep nesting, odd content types, ids of any shape, the
monitoring token right, wrong or absent — each answered with JSON below 500, and /healthz healthy afterwards."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from yarl import URL

from gateway.app import create_app
from tests.handoff.conftest import SECRET, AgentClient
from tests.handoff.test_api_fuzz import bodies, content_types, odd_ids, values
from tests.incidents.conftest import TOKEN

ENDPOINTS = [
    ("GET", "/api/incidents"), ("POST", "/api/incidents"), ("GET", "/api/incidents/{id}"),
    ("POST", "/api/incidents/{id}/transition"), ("POST", "/api/incidents/{id}/update"),
    ("POST", "/api/incidents/{id}/notes"), ("POST", "/api/incidents/{id}/tasks"),
    ("POST", "/api/incidents/{id}/tasks/{id}/done"), ("POST", "/api/incidents/{id}/broadcasts"),
    ("POST", "/api/incidents/broadcasts/{id}/approve"), ("POST", "/api/incidents/broadcasts/{id}/cancel"),
    ("POST", "/api/incidents/proposals/{id}/accept"), ("POST", "/api/incidents/proposals/{id}/dismiss"),
    ("GET", "/api/incidents/{id}/review"), ("GET", "/api/incidents/{id}/review?format=md&lang=en"),
    ("GET", "/api/incidents/{id}/review?format=html&lang=zh"), ("POST", "/api/incidents/{id}/compensation"),
    ("POST", "/api/incidents/{id}/lessons"), ("POST", "/api/incidents/detect"),
]  # fmt: skip
FIELDS = ["title", "category", "severity", "districts", "services", "eta", "to", "text", "numbers", "department",
          "deadline", "publish", "alerts", "notice_zh", "groupKey", "status", "labels", "channels", "kind", "amount",
          "scope", "assignee"]  # fmt: skip
GOOD = {"category": "accident", "severity": 2, "districts": ["朝阳区"], "to": "assessed", "title": "x",
        "department": "billing", "publish": "zh", "alerts": [{"labels": {"district": "朝阳区"}}]}  # fmt: skip
objects = st.dictionaries(st.sampled_from(FIELDS), values | st.sampled_from(list(GOOD.values())), max_size=5)
incident_bodies = st.one_of(bodies, objects.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
                            st.just(json.dumps(GOOD).encode()))  # fmt: skip
bearer = st.sampled_from([None, f"Bearer {TOKEN}", "Bearer wrong", "Bearer ", "Basic eA==", "Bearer \u00e9"])


def test_every_incident_endpoint_answers_malformed_input_with_json_4xx(make_settings, nlu_engine, monkeypatch):
    monkeypatch.setenv("INCIDENTS_TOKEN", TOKEN)
    loop = asyncio.new_event_loop()
    server = TestServer(create_app(make_settings(webchat={"token_secret": SECRET}), nlu=nlu_engine))
    state: dict[str, Any] = {}

    async def setup() -> None:
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        boss = AgentClient(base, "super1", "demo-super1")
        await boss.login()
        made = await boss.call("POST", "/api/incidents", {"title": "t", "category": "accident", "severity": 3,
                                                          "districts": ["朝阳区"]}, status=201)  # fmt: skip
        state.update(base=base, boss=boss, incident=made["id"], seen={})

    async def one(method: str, path: str, body: bytes, content_type: str, csrf: bool, auth: str | None) -> None:
        boss: AgentClient = state["boss"]
        headers = {"X-CSRF-Token": boss.csrf if csrf else "wrong"}
        if content_type:
            headers["Content-Type"] = content_type
        if auth is not None:
            headers["Authorization"] = auth
        async with asyncio.timeout(5):  # never a hang
            async with boss.session.request(method, URL(state["base"] + path, encoded=True), data=body,
                                            headers=headers) as resp:  # fmt: skip
                raw = await resp.read()
        state["seen"][resp.status] = state["seen"].get(resp.status, 0) + 1
        assert resp.status < 500, (method, path, body[:80], resp.status, raw[:200])
        if resp.status >= 400:
            data = json.loads(raw)
            assert data["error"] and data["error_zh"], data

    @hyp_settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(ENDPOINTS), incident_bodies, content_types, st.booleans(), st.one_of(st.none(), odd_ids),
           st.booleans(), bearer)  # fmt: skip
    def check(endpoint: tuple[str, str], body: bytes, content_type: str, real_id: bool, odd: str | None, csrf: bool,
              auth: str | None) -> None:  # fmt: skip
        method, template = endpoint
        ident = odd if odd is not None else (state["incident"] if real_id else "INC20260101001")
        loop.run_until_complete(one(method, template.replace("{id}", ident), body, content_type, csrf, auth))

    async def healthy() -> int:
        async with aiohttp.ClientSession() as session, session.get(f"{state['base']}/healthz") as resp:
            return resp.status

    try:
        loop.run_until_complete(setup())
        check()
        assert loop.run_until_complete(healthy()) == 200
        print(f"\nfuzzed incident endpoints: statuses {dict(sorted(state['seen'].items()))}")
        assert {400, 404}.issubset(state["seen"]) and sum(state["seen"].values()) >= 200, state["seen"]
    finally:
        if state:
            loop.run_until_complete(state["boss"].close())
        loop.run_until_complete(server.close())
        loop.close()
