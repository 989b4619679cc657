"""Agent sign-in as middleware on the ``/api`` sub-application: roles from ``@requires``, ``@public`` endpoints,
routes of other modules mounted with ``api_app(extra)``, ``require_agent`` outside ``/api`` — and on the real
gateway, paths that do not exist stay 404/405 and the console's page and WebSocket keep their paths."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from bots.templates import Renderer
from gateway import redisconn
from gateway.errors import error_middleware
from gateway.keys import METRICS, SETTINGS
from gateway.metrics import Metrics
from gateway.models import OutboundMessage
from gateway.rkeys import deployment_keys
from handoff.api import SERVICE, agent_of, api_app, public, require_agent, requires
from handoff.service import HandoffService
from tests.handoff.conftest import AgentClient

PASSWORD = "a-long-enough-password"


class Customers:
    """The core's side of the handoff (nothing reaches customers in these tests)."""

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def deliver(self, message: OutboundMessage) -> None:
        self.sent.append(message)

    async def await_survey(self, channel: str, sender: str, conversation_id: str) -> None:
        pass


@requires("supervisor", "see the probe", zh="仅主管和管理员可查看探针")
async def supervised(request: web.Request) -> web.Response:
    return web.json_response({"agent": agent_of(request).name})


@requires("admin")
async def administered(request: web.Request) -> web.Response:
    return web.json_response({"agent": agent_of(request).name})


async def anyone_signed_in(request: web.Request) -> web.Response:
    return web.json_response({"agent": agent_of(request).name, "role": agent_of(request).role})


@public
async def open_door(request: web.Request) -> web.Response:
    return web.json_response({"open": True})


async def outside(request: web.Request) -> web.Response:
    """A core module's own endpoint outside /api."""
    agent = await require_agent(request, "supervisor")
    return web.json_response({"agent": agent.name})


async def probe_app(settings: Any, handoff_config: Any) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS], app[METRICS] = settings, Metrics()
    extra = [web.get("/probe/supervised", supervised), web.post("/probe/supervised", supervised),
             web.get("/probe/admin", administered), web.get("/probe/any", anyone_signed_in),
             web.get("/probe/open", open_door)]  # fmt: skip
    app.add_subapp("/api", api_app(extra))
    app.router.add_get("/outside", outside)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        redis = redisconn.client(settings.redis.url)
        service = HandoffService(redis, deployment_keys(settings.redis.key_prefix), handoff_config, Renderer(),
                                 app[METRICS],
                                 Customers())  # fmt: skip
        for name, role in (("plain1", "agent"), ("boss1", "supervisor"), ("root1", "admin")):
            await service.agents.add(name, PASSWORD, role=role, skills=("zh",))
        app[SERVICE] = service
        yield
        await redis.aclose()

    app.cleanup_ctx.append(ctx)
    return app


async def test_roles_public_routes_and_require_agent_outside_api(aiohttp_server, make_settings, handoff_config,
                                                                 people):  # fmt: skip
    server = await aiohttp_server(await probe_app(make_settings(), handoff_config))
    base = str(server.make_url("")).rstrip("/")
    plain, boss, root = (people("agent", base, n, PASSWORD) for n in ("plain1", "boss1", "root1"))
    stranger = people("agent", base, "nobody", "x")
    for who in (plain, boss, root):
        await who.login()

    assert await stranger.call("GET", "/api/probe/open") == {"open": True}  # @public: no session needed
    for path in ("/api/probe/supervised", "/api/probe/admin", "/api/probe/any", "/outside", "/api/queue"):
        status, body = await stranger.raw("GET", path)
        assert status == 401 and body["error"] == "not logged in" and body["error_zh"], (path, body)

    assert await plain.call("GET", "/api/probe/any") == {"agent": "plain1", "role": "agent"}  # unmarked: any agent
    status, body = await plain.raw("GET", "/api/probe/supervised")
    assert status == 403 and body == {"error": "only supervisors and admins may see the probe",
                                      "error_zh": "仅主管和管理员可查看探针"}  # fmt: skip
    assert await boss.call("GET", "/api/probe/supervised") == {"agent": "boss1"}
    assert await root.call("GET", "/api/probe/supervised") == {"agent": "root1"}  # a higher role passes
    status, body = await boss.raw("GET", "/api/probe/admin")
    assert status == 403 and body["error"] == "only admins may do this" and body["error_zh"]
    assert await root.call("GET", "/api/probe/admin") == {"agent": "root1"}

    status, body = await boss.raw("POST", "/api/probe/supervised", {}, csrf=False)  # a POST wants the CSRF token
    assert status == 403 and body["field"] == "X-CSRF-Token"
    assert await boss.call("POST", "/api/probe/supervised", {}) == {"agent": "boss1"}

    assert (await plain.raw("GET", "/outside"))[0] == 403
    assert await boss.call("GET", "/outside") == {"agent": "boss1"}
    assert (await boss.call("GET", "/api/queue"))["chats"] == []  # the agents' own endpoints on the same sub-app


async def test_paths_that_do_not_exist_stay_404_and_405_and_the_console_keeps_its_paths(make_gateway):
    gw = await make_gateway()
    async with aiohttp.ClientSession() as session:
        for method, path, status in (("GET", "/api/no-such-thing", 404), ("POST", "/api/chats", 404),
                                     ("GET", "/api/agent/login", 405), ("DELETE", "/api/queue", 405)):  # fmt: skip
            async with session.request(method, f"{gw.base}{path}") as resp:
                body = await resp.json()
                assert resp.status == status and body["error"] and body["error_zh"], (path, resp.status, body)
        async with session.get(f"{gw.base}/agent") as resp:
            assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
        async with session.get(f"{gw.base}/ws/agent") as resp:  # no session: refused before the upgrade
            assert resp.status == 401
    agent = AgentClient(gw.base, "agent1", "demo-agent1")
    try:
        await agent.login()
        await agent.connect()  # the console's WebSocket, signed in with the /api session's cookie
        assert (await agent.expect(lambda f: f["type"] == "queue"))["chats"] == []
        assert (await agent.raw("GET", "/api/no-such-thing"))[0] == 404
    finally:
        await agent.close()
