"""The agents' HTTP API, their WebSocket ``/ws/agent`` and the console page ``/agent``.

Sessions: ``POST /api/agent/login`` (JSON only, from the gateway's own pages: ``Origin`` checked; throttled
per account and per client address) sets an HttpOnly, SameSite=Strict cookie (Secure when the request came
over HTTPS, directly or through a trusted proxy) naming a session kept in Redis; every other POST needs the
session's CSRF token in ``X-CSRF-Token``. Unauthenticated → 401, wrong role or not your chat → 403, a bad
body → 400 naming the field, a JSON error in English and Chinese each time. Every body is decoded against
its own schema (``msgspec.Struct``) below. A chat's transcript, notes and canned replies are for the agent
it is assigned to (and supervisors); the queue's summaries are for every agent with the skills.
Events reach agents through Redis pub/sub, so an agent and a customer may be on different processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import redis.asyncio as aioredis
from aiohttp import WSMsgType, web

from gateway import websec
from gateway.edge import decode, is_utf8, json_body, require_json
from gateway.errors import BadRequest, Forbidden, GatewayError, TooManyRequests, Unauthorized, Unavailable
from gateway.keys import METRICS, SETTINGS
from gateway.privacy import mask_phone
from handoff.agents import HASHER, Agent, AgentError, HasherBusy, password_bytes
from handoff.service import Chat, HandoffError, HandoffService
from handoff.throttle import Policy

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
COOKIE = "gw_agent"
SESSION_TTL = 12 * 3600
SNAPSHOT_DELAY = 0.5  # full snapshots: at most two a second; single events go out at once
SERVICE: web.AppKey[HandoffService] = web.AppKey("handoff_service")
HUB: web.AppKey[AgentHub] = web.AppKey("agent_hub")
BODY_LIMIT = 64 * 1024  # the largest body an agent endpoint reads (413 past it)
ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")  # chat ids (conversation ids) and callback task ids
SID = re.compile(r"[A-Za-z0-9_-]{16,128}")  # a session cookie's shape


# ---- request bodies: one schema each ----------------------------------------------------------------------
Text = Annotated[str, msgspec.Meta(max_length=4000)]
Note = Annotated[str, msgspec.Meta(max_length=500)]
Short = Annotated[str, msgspec.Meta(max_length=64)]


class LoginIn(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class StatusIn(msgspec.Struct):
    status: Literal["online", "away"]


class TextIn(msgspec.Struct):
    text: Text


class TransferIn(msgspec.Struct):
    to_agent: Short | None = None
    to_skill: Short | None = None
    note: Note = ""


class CloseIn(msgspec.Struct):
    disposition: Literal["resolved", "follow_up", "complaint_registered"]


class CallbackIn(msgspec.Struct):
    text: Text | None = None
    note: Note = ""


class FrameIn(msgspec.Struct):
    """A frame the console sends on ``/ws/agent``: ``heartbeat`` or ``typing`` (with ``chat``)."""

    type: Literal["heartbeat", "typing"]
    chat: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class AgentHub:
    """This process's agent WebSockets, fed from one Redis pub/sub channel."""

    def __init__(self, service: HandoffService) -> None:
        self.service = service
        self.sockets: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self.agents: dict[str, Agent] = {}
        self._pubsub = service.redis.pubsub(ignore_subscribe_messages=True)
        self._reader: asyncio.Task[None] | None = None
        self._snapshot_due: asyncio.Handle | None = None

    async def start(self) -> None:
        await self._pubsub.subscribe(self.service.keys.live_agents())
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        for sockets in list(self.sockets.values()):
            for ws in list(sockets):
                await ws.close(code=1001, message=b"server shutting down")
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pubsub.aclose()

    async def _read(self) -> None:
        while True:
            try:
                async for message in self._pubsub.listen():
                    if message["type"] == "message":
                        try:
                            data = json.loads(message["data"])
                            await self.route(data["to"], data["event"])
                        except (aioredis.ConnectionError, OSError):
                            raise
                        except Exception:  # one bad event must not stop every console's updates
                            log.exception("agent event could not be delivered")
            except asyncio.CancelledError:
                raise
            except (aioredis.ConnectionError, OSError):
                log.warning("agent pub/sub connection lost; reconnecting")
                await asyncio.sleep(0.5)

    def _targets(self, to: str | list[str]) -> set[str]:
        names = [to] if isinstance(to, str) else [t for t in to if t]
        out: set[str] = set()
        for name in names:
            if name == "all":
                out |= set(self.sockets)
            elif name == "supervisors":
                out |= {n for n in self.sockets if self.agents[n].supervises}
            elif name in self.sockets:
                out.add(name)
        return out

    async def route(self, to: str | list[str], event: dict[str, Any]) -> None:
        if event.get("type") == "queue_changed":
            self.schedule_snapshot()
            return
        if event.get("type") == "queue_add":  # straight to the agents who may take it; a snapshot follows
            data = json.dumps(event, ensure_ascii=False)
            skills = event["chat"]["skills"]
            for name in list(self.sockets):
                if self.agents[name].supervises or self.agents[name].serves(skills):
                    await self.send_raw(name, data)
            self.schedule_snapshot()
            return
        for name in self._targets(to):
            await self.send(name, event)

    async def send(self, name: str, event: dict[str, Any]) -> None:
        await self.send_raw(name, json.dumps(event, ensure_ascii=False))

    async def send_raw(self, name: str, data: str) -> None:
        for ws in list(self.sockets.get(name, ())):
            if not ws.closed:
                with contextlib.suppress(ConnectionResetError):
                    await ws.send_str(data)

    def schedule_snapshot(self) -> None:
        """Queue snapshots are coalesced: the changes of half a second make one snapshot (single
        events — a chat queued, taken, closed — go out at once on their own)."""
        if self._snapshot_due is None and self.sockets:
            self._snapshot_due = asyncio.get_running_loop().call_later(
                SNAPSHOT_DELAY, lambda: self.service.spawn(self._snapshots())
            )

    async def _snapshots(self) -> None:
        """The queue, one JSON text per kind of agent. An agent's own chats travel as single events
        (assigned, chat_removed, chat_closed) and in the snapshot a console gets when it connects."""
        queue = await queue_view(self.service)
        self._snapshot_due = None  # changes from here on make the next snapshot
        views: dict[tuple[bool, tuple[str, ...]], str] = {}
        for name in list(self.sockets):
            agent = self.agents[name]
            kind = (agent.supervises, agent.skills)
            if kind not in views:
                chats = [c for c in queue if agent.supervises or agent.serves(c["skills"])]
                views[kind] = f'{{"type": "queue", "chats": {json.dumps(chats, ensure_ascii=False)}}}'
            await self.send_raw(name, views[kind])

    async def full_snapshot(self, agent: Agent) -> None:
        queue = await queue_view(self.service)
        chats = [c for c in queue if agent.supervises or agent.serves(c["skills"])]
        mine = await chats_view(self.service, await self.service.mine(agent.name))
        await self.send(agent.name, {"type": "queue", "chats": chats, "mine": mine})


async def chats_view(service: HandoffService, chats: list[Chat]) -> list[dict[str, Any]]:
    clocks = await service.timers.clocks([c.id for c in chats]) if service.timers and chats else {}
    return [c.summary(clocks.get(c.id)) for c in chats]


async def queue_view(service: HandoffService) -> list[dict[str, Any]]:
    return await chats_view(service, await service.queued())


# ---- sessions -----------------------------------------------------------------------------------------
async def current_agent(request: web.Request, csrf: bool = True) -> tuple[Agent, dict[str, str]]:
    service = request.config_dict[SERVICE]
    sid = request.cookies.get(COOKIE, "")
    raw = await service.redis.hgetall(service.keys.hk("session", sid)) if SID.fullmatch(sid) else {}
    if not raw:
        raise Unauthorized("not logged in", zh="未登录或登录已过期")
    session = {k.decode(): v.decode() for k, v in raw.items()}
    if csrf and request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get("X-CSRF-Token", "").encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(sent, session["csrf"].encode()):
            raise Forbidden("missing or wrong X-CSRF-Token header", zh="缺少或错误的 X-CSRF-Token 请求头",
                            field="X-CSRF-Token")  # fmt: skip
    agent = await service.agents.get(session["agent"])
    if agent is None:
        raise Unauthorized("this agent account no longer exists", zh="该坐席账号已不存在")
    service.spawn(service.agents.heartbeat(agent.name))  # any request shows the agent is there
    return agent, session


def path_id(request: web.Request, name: str = "id") -> str:
    """A chat or callback id from the path: letters, digits and ``_.:-`` (at most 128), else 400."""
    value = request.match_info[name]
    if not ID.fullmatch(value):
        raise BadRequest(f"'{name}' is not a valid id", zh="编号格式无效", field=name)
    return value


def _text(value: str, name: str = "text") -> str:
    if not value.strip():
        raise BadRequest(f"'{name}' must not be empty", zh="内容不能为空", field=name)
    return value.strip()


def _can_read(agent: Agent, chat: Chat) -> bool:
    """A chat's transcript, notes and canned replies: its agent's (now or when it closed) and supervisors'."""
    return agent.supervises or (chat.agent == agent.name and chat.state in ("assigned", "closed"))


async def _readable_chat(service: HandoffService, agent: Agent, chat_id: str) -> Chat:
    chat = await service.chat(chat_id)
    if not _can_read(agent, chat):
        raise HandoffError(403, "this chat is not yours", zh="这不是您的会话")
    return chat


# ---- handlers ---------------------------------------------------------------------------------------------
def _busy() -> Unavailable:
    return Unavailable("too many sign-ins are being checked; retry in a moment", zh="登录请求过多，请稍后重试",
                       headers={"Retry-After": "1"})  # fmt: skip


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
        raise Unauthorized("wrong name or password", zh="账号或密码错误")
    await service.login_guard.succeeded(body.name, address, policy)
    if agent.demo and settings.server.production:
        raise Forbidden("demo agent accounts are refused when server.production is set",
                        zh="生产环境不允许使用演示坐席账号")  # fmt: skip
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    key = service.keys.hk("session", sid)
    await service.redis.hset(key, mapping={"agent": agent.name, "csrf": csrf, "created": time.time()})
    await service.redis.expire(key, SESSION_TTL)
    await service.agents.set_status(agent.name, "online")
    if service.timers:
        await service.timers.watch_agent(agent.name, time.time() + service.config.heartbeat_timeout)
    response = web.json_response({"agent": agent.to_json(), "csrf": csrf})
    response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", secure=websec.is_secure(request),
                        max_age=SESSION_TTL, path="/")  # fmt: skip
    service.spawn(service.dispatch())
    service.spawn(service.publish_agents())
    return response


async def logout(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    await service.redis.delete(service.keys.hk("session", request.cookies[COOKIE]))
    await service.agent_gone(agent.name)
    response = web.json_response({})
    response.del_cookie(COOKIE, path="/", secure=websec.is_secure(request), httponly=True, samesite="Strict")
    return response


async def me(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, session = await current_agent(request)
    presence = await service.agents.presence(agent.name)
    return web.json_response({"agent": agent.to_json(), "csrf": session["csrf"],
                              "status": presence.get("status", "offline")})  # fmt: skip


async def set_status(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    status = (await json_body(request, StatusIn, BODY_LIMIT)).status
    await service.agents.set_status(agent.name, status)
    if status == "online":
        service.spawn(service.dispatch())
    service.spawn(service.publish_agents())
    return web.json_response({"status": status})


async def queue(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    chats = await queue_view(service)
    body: dict[str, Any] = {
        "chats": [c for c in chats if agent.supervises or agent.serves(c["skills"])],
        "mine": await chats_view(service, await service.mine(agent.name)),
    }
    if agent.supervises:
        body["agents"] = await service.agent_loads()
        body["breaches"] = await service.breaches()
    return web.json_response(body, dumps=_dumps)


def _dumps(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False)
    if not is_utf8(text):  # a stored lone surrogate: escaped, so the response can still be sent
        return json.dumps(obj)
    return text


async def _detail(service: HandoffService, chat: Chat, agent: Agent) -> dict[str, Any]:
    view = (await chats_view(service, [chat]))[0]
    profile: dict[str, Any] = {"phone": view["customer"] if chat.phone else None, "tier": chat.tier, "plan": None,
                               "district": None, "name": None}  # fmt: skip
    if chat.phone and service.profile_of:
        with contextlib.suppress(Exception):
            profile.update(await service.profile_of(chat.phone, chat.lang))
    return {**view, "transcript": await service.transcript(chat), "profile": profile}


async def chat_detail(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    chat = await _readable_chat(service, agent, path_id(request))
    return web.json_response(await _detail(service, chat, agent), dumps=_dumps)


async def accept(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    chat = await service.accept(agent, path_id(request))
    return web.json_response({"chat": await _detail(service, chat, agent)}, dumps=_dumps)


async def send_message(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    chat_id = path_id(request)
    text = _text((await json_body(request, TextIn, BODY_LIMIT)).text)
    entry = await service.agent_message(agent, chat_id, text)
    return web.json_response({"entry": entry}, dumps=_dumps)


async def add_note(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    chat_id = path_id(request)
    text = _text((await json_body(request, TextIn, BODY_LIMIT)).text)
    entry = await service.note(agent, chat_id, text)
    return web.json_response({"entry": entry}, dumps=_dumps)


async def transfer(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    chat_id = path_id(request)
    body = await json_body(request, TransferIn, BODY_LIMIT)
    to_agent, to_skill = (body.to_agent or "").strip(), (body.to_skill or "").strip()
    if not to_agent and not to_skill:
        raise BadRequest("give 'to_agent' (an agent's name) or 'to_skill' (a skill)",
                         zh="请指定转接坐席（to_agent）或技能组（to_skill）", field="to_agent")  # fmt: skip
    chat = await service.transfer(agent, chat_id, to_agent or None, to_skill or None, body.note.strip())
    return web.json_response({"chat": chat.summary()}, dumps=_dumps)


async def close(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    chat_id = path_id(request)
    disposition = (await json_body(request, CloseIn, BODY_LIMIT)).disposition
    chat = await service.close(agent, chat_id, disposition, request.config_dict[SURVEY])
    return web.json_response({"chat": chat.summary()}, dumps=_dumps)


async def canned(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    chat = await _readable_chat(service, agent, path_id(request))
    return web.json_response(service.canned(chat, agent), dumps=_dumps)


async def agent_socket(request: web.Request) -> web.WebSocketResponse:
    service, hub, metrics = request.config_dict[SERVICE], request.config_dict[HUB], request.config_dict[METRICS]
    agent, _ = await current_agent(request, csrf=False)
    websec.check_origin(request)
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=8192)
    await ws.prepare(request)
    hub.sockets[agent.name].add(ws)
    hub.agents[agent.name] = agent
    metrics.agent_sockets.inc()
    presence = service.keys.hk("presence", agent.name)
    await service.redis.hincrby(presence, "conns", 1)
    await service.agents.heartbeat(agent.name)
    if (await service.agents.presence(agent.name)).get("status") in (None, "offline"):
        await service.agents.set_status(agent.name, "online")
    try:
        await ws.send_json({"type": "hello", "agent": agent.to_json()})
        await hub.full_snapshot(agent)
        if agent.supervises:
            service.spawn(service.publish_agents())
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                frame = decode(msg.data, FrameIn, "frame")
            except GatewayError as exc:  # answered, never fatal: the console keeps its socket
                await ws.send_str(_dumps({"type": "error", "error": exc.message, "error_zh": "消息格式无效"}))
                continue
            if frame.type == "heartbeat":
                await service.agents.heartbeat(agent.name)
                if service.timers:
                    await service.timers.watch_agent(agent.name, time.time() + service.config.heartbeat_timeout)
            elif frame.chat and ID.fullmatch(frame.chat):
                with contextlib.suppress(HandoffError):  # typing in a chat that just moved on: nothing to do
                    await service.agent_typing(agent, frame.chat)
    finally:
        hub.sockets[agent.name].discard(ws)
        if not hub.sockets[agent.name]:
            del hub.sockets[agent.name]
        metrics.agent_sockets.dec()
        with contextlib.suppress(aioredis.RedisError):
            await service.redis.hincrby(presence, "conns", -1)
            if service.timers:
                await service.timers.watch_agent(agent.name, time.time() + service.config.disconnect_grace)
    return ws


async def console_page(request: web.Request) -> web.Response:
    env = request.config_dict[JINJA]
    lang = request.query.get("lang") or ("en" if request.headers.get("Accept-Language", "").startswith("en") else "zh")
    html = env.get_template("pages/agent.html").render(lang=lang if lang in ("zh", "en") else "zh",
                                                       static_prefix="/static")  # fmt: skip
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


JINJA: web.AppKey[Any] = web.AppKey("handoff_jinja")
SURVEY: web.AppKey[Any] = web.AppKey("handoff_survey")


def _callback_view(task: dict[str, Any]) -> dict[str, Any]:
    """A callback task for the console: the customer shown masked, never the raw sender id."""
    sender = str(task.get("sender") or "")
    customer = task.get("phone") or (mask_phone(sender) if sender.lstrip("+").isdigit() and len(sender) >= 7
                                     else f"{sender[:6]}…" if len(sender) > 8 else sender)  # fmt: skip
    return {"id": task["id"], "channel": task.get("channel"), "customer": customer, "lang": task.get("lang"),
            "reason": task.get("reason"), "status": task.get("status"), "text": task.get("text"),
            "messages": task.get("messages", []), "at": task.get("at"), "handled": task.get("handled")}  # fmt: skip


async def callbacks(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    await current_agent(request)
    tasks = await service.callbacks(include_done=request.query.get("all") in ("1", "true"))
    return web.json_response({"callbacks": [_callback_view(t) for t in tasks]}, dumps=_dumps)


async def handle_callback(request: web.Request) -> web.Response:
    """``POST /api/callbacks/{id}/reply {"text", "note"?}`` answers on the customer's channel and closes the task;
    ``POST /api/callbacks/{id}/done {"note"?}`` closes it (e.g. after a phone call)."""
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    task_id = path_id(request)
    body = await json_body(request, CallbackIn, BODY_LIMIT)
    reply = _text(body.text or "") if request.match_info["action"] == "reply" else None
    task = await service.handle_callback(agent, task_id, reply, body.note.strip())
    return web.json_response(_callback_view(task), dumps=_dumps)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/agent", console_page),
        web.post("/api/agent/login", login),
        web.post("/api/agent/logout", logout),
        web.get("/api/agent/me", me),
        web.post("/api/agent/status", set_status),
        web.get("/api/queue", queue),
        web.get("/api/chats/{id}", chat_detail),
        web.post("/api/chats/{id}/accept", accept),
        web.post("/api/chats/{id}/messages", send_message),
        web.post("/api/chats/{id}/notes", add_note),
        web.post("/api/chats/{id}/transfer", transfer),
        web.post("/api/chats/{id}/close", close),
        web.get("/api/chats/{id}/canned", canned),
        web.get("/ws/agent", agent_socket),
        web.get("/api/callbacks", callbacks),
        web.post("/api/callbacks/{id}/{action:reply|done}", handle_callback),
    ]


async def hub_ctx(app: web.Application) -> AsyncIterator[None]:
    hub = AgentHub(app[SERVICE])
    app[HUB] = hub
    await hub.start()
    yield
    await hub.stop()
