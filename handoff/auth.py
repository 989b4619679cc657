"""Agent sessions and the roles that guard every ``/api`` endpoint.

``POST /api/agent/login`` (JSON only, from the gateway's own pages: ``Origin`` checked; throttled per account and
per client address) sets an HttpOnly, SameSite=Strict cookie (Secure when the request came over HTTPS, directly
or through a trusted proxy) naming a session kept in Redis; every other POST needs the session's CSRF token in
``X-CSRF-Token``. Unauthenticated → 401, a role the agent lacks → 403.

Guarding an endpoint: the ``/api`` sub-application's ``middleware`` signs in every request before its handler
runs — an agent of any role, unless the handler says otherwise with ``@requires("supervisor")`` (supervisors
and admins) or ``@requires("admin")``, or ``@public`` (login). The handler finds the agent with
``agent_of(request)``. Outside ``/api`` (the console's WebSocket, or a core module's own endpoint) call
``await require_agent(request, role)``.

Signing in, a failed sign-in (wrong password, or a demo account refused in production) and signing out go to the
audit trail (gateway/audit.py) with the client's address; throttled attempts (429) do not reach it.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, TypeVar

import msgspec
from aiohttp import web

from gateway import audit, websec
from gateway.edge import json_body, require_json
from gateway.errors import BadRequest, Forbidden, TooManyRequests, Unauthorized, Unavailable
from gateway.keys import SETTINGS
from gateway.rkeys import HANDOFF_SESSION_TTL
from handoff.agents import HASHER, ROLES, Agent, AgentError, HasherBusy, password_bytes
from handoff.throttle import Policy

if TYPE_CHECKING:
    from handoff.service import HandoffService

COOKIE = "gw_agent"
SID = re.compile(r"[A-Za-z0-9_-]{16,128}")  # a session cookie's shape
SERVICE: web.AppKey[HandoffService] = web.AppKey("handoff_service")
AGENT: web.RequestKey[Agent] = web.RequestKey("handoff_agent")
SESSION: web.RequestKey[dict[str, str]] = web.RequestKey("handoff_session")
BODY_LIMIT = 64 * 1024  # the largest body an agent endpoint reads (413 past it)
ROLE_MARK = "__handoff_role__"
PUBLIC = "public"
WHO = {"supervisor": ("supervisors and admins", "主管和管理员"), "admin": ("admins", "管理员")}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True, slots=True)
class Guard:
    role: str  # agent | supervisor | admin | public
    refusal: str = ""  # what the 403 says, English ("only supervisors and admins may <refusal>")
    refusal_zh: str = ""


def requires(role: str, refusal: str = "", zh: str = "") -> Callable[[H], H]:
    """Mark an ``/api`` handler: only agents with ``role`` (``agent``, ``supervisor`` or ``admin``) or a higher
    one may call it; ``refusal``/``zh`` word the 403 (e.g. "see the outboxes", "仅主管和管理员可查看发送队列")."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")

    def mark(handler: H) -> H:
        setattr(handler, ROLE_MARK, Guard(role, refusal, zh))
        return handler

    return mark


DEFAULT = Guard("agent")


def public(handler: H) -> H:
    """Mark an ``/api`` handler that needs no session (sign-in)."""
    setattr(handler, ROLE_MARK, Guard(PUBLIC))
    return handler


def has_role(agent: Agent, role: str) -> bool:
    return ROLES.index(agent.role) >= ROLES.index(role) if agent.role in ROLES else False


async def require_agent(request: web.Request, role: str = "agent", *, csrf: bool = True, refusal: str = "",
                        zh: str = "") -> Agent:  # fmt: skip
    """The signed-in agent (401 without a session; with ``csrf``, 403 for a state-changing request without the
    session's ``X-CSRF-Token``; 403 without ``role``, worded with ``refusal``/``zh`` if given). Kept on the
    request: ``agent_of``, ``session_of``."""
    if AGENT in request:
        agent = request[AGENT]
    else:
        service = request.config_dict[SERVICE]
        sid = request.cookies.get(COOKIE, "")
        session = await service.agents.session(sid) if SID.fullmatch(sid) else {}
        if not session:
            raise Unauthorized("not logged in", zh="未登录或登录已过期")
        if csrf and request.method not in ("GET", "HEAD", "OPTIONS"):
            sent = request.headers.get("X-CSRF-Token", "").encode("utf-8", "surrogatepass")
            if not hmac.compare_digest(sent, session["csrf"].encode()):
                raise Forbidden("missing or wrong X-CSRF-Token header", zh="缺少或错误的 X-CSRF-Token 请求头",
                                field="X-CSRF-Token")  # fmt: skip
        found = await service.agents.get(session["agent"])
        if found is None:
            raise Unauthorized("this agent account no longer exists", zh="该坐席账号已不存在")
        agent = found
        service.background.spawn(service.agents.heartbeat(agent.name))  # any request shows the agent is there
        request[AGENT], request[SESSION] = agent, session
    if not has_role(agent, role):
        who, who_zh = WHO.get(role, (f"{role}s", role))
        raise Forbidden(f"only {who} may {refusal or 'do this'}", zh=zh or f"仅{who_zh}可以执行此操作")
    return agent


def agent_of(request: web.Request) -> Agent:
    """The agent the middleware (or ``require_agent``) signed in for this request."""
    return request[AGENT]


def session_of(request: web.Request) -> dict[str, str]:
    return request[SESSION]


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every ``/api`` endpoint signs its agent in first, with the role its handler names (an agent of any role
    unless marked). No such endpoint (404/405) stays that."""
    if request.match_info.http_exception is None:
        guard = getattr(request.match_info.handler, ROLE_MARK, DEFAULT)
        if guard.role != PUBLIC:
            await require_agent(request, guard.role, refusal=guard.refusal, zh=guard.refusal_zh)
    return await handler(request)


# ---- sign-in and out --------------------------------------------------------------------------------------
class LoginIn(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


def _busy() -> Unavailable:
    return Unavailable("too many sign-ins are being checked; retry in a moment", zh="登录请求过多，请稍后重试",
                       headers={"Retry-After": "1"})  # fmt: skip


@public
async def login(request: web.Request) -> web.Response:
    """``POST /api/agent/login {"name", "password"}``: JSON only (415), from this gateway's own pages (403),
    throttled (429 + Retry-After), bcrypt off the event loop in a bounded pool (503 + Retry-After when full)."""
    service, settings = request.config_dict[SERVICE], request.config_dict[SETTINGS]
    require_json(request)
    websec.check_origin(request)
    body = await json_body(request, LoginIn, BODY_LIMIT)
    try:
        password_bytes(body.password)
    except AgentError as exc:
        raise BadRequest(str(exc), zh="密码最长 72 字节（UTF-8）", field="password") from None
    if HASHER.pending >= HASHER.limit:
        raise _busy()
    server = settings.server
    policy = Policy(server.login_max_failures, server.login_max_failures_per_address, server.login_lockout)
    address = websec.client_key(request)
    wait = await service.login_guard.begin(body.name, address, policy)
    if wait:
        zh = f"登录失败次数过多，请 {wait} 秒后再试"
        raise TooManyRequests(
            f"too many failed sign-ins; try again in {wait} s", zh=zh, headers={"Retry-After": str(wait)}
        )
    try:
        agent = await service.agents.verify(body.name, body.password)
    except HasherBusy:
        await service.login_guard.give_back(body.name, address, policy)  # never judged: not a failure
        raise _busy() from None
    if agent is None:
        await audit.record(service.redis, service.keys, body.name, "sign_in_failed", where=address)
        raise Unauthorized("wrong name or password", zh="账号或密码错误")
    await service.login_guard.succeeded(body.name, address, policy)
    if agent.demo and settings.server.production:
        await audit.record(service.redis, service.keys, agent.name, "sign_in_failed", where=address, demo=True)
        raise Forbidden("demo agent accounts are refused when server.production is set",
                        zh="生产环境不允许使用演示坐席账号")  # fmt: skip
    await audit.record(service.redis, service.keys, agent.name, "sign_in", where=address, role=agent.role)
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    await service.agents.open_session(sid, agent.name, csrf)
    await service.agents.set_status(agent.name, "online")
    await service.clocks.watch_agent(agent.name, time.time() + service.config.heartbeat_timeout)
    response = web.json_response({"agent": agent.to_json(), "csrf": csrf})
    response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", secure=websec.is_secure(request),
                        max_age=HANDOFF_SESSION_TTL, path="/")  # fmt: skip
    service.background.spawn(service.queue.dispatch())
    service.background.spawn(service.views.publish_agents())
    return response


async def logout(request: web.Request) -> web.Response:
    service, agent = request.config_dict[SERVICE], agent_of(request)
    await service.agents.end_session(request.cookies[COOKIE])
    await audit.record(service.redis, service.keys, agent.name, "sign_out", where=websec.client_key(request))
    await service.queue.agent_gone(agent.name)
    response = web.json_response({})
    response.del_cookie(COOKIE, path="/", secure=websec.is_secure(request), httponly=True, samesite="Strict")
    return response


async def me(request: web.Request) -> web.Response:
    service, agent = request.config_dict[SERVICE], agent_of(request)
    presence = await service.agents.presence(agent.name)
    return web.json_response({"agent": agent.to_json(), "csrf": session_of(request)["csrf"],
                              "status": presence.get("status", "offline")})  # fmt: skip
