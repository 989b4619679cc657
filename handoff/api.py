"""The agents' HTTP API, their WebSocket ``/ws/agent`` and the console page ``/agent``.

Sessions: ``POST /api/agent/login`` sets an HttpOnly, SameSite=Strict cookie (Secure over HTTPS)
naming a session kept in Redis; every other POST needs the session's CSRF token in
``X-CSRF-Token``. Unauthenticated → 401, wrong role or not your chat → 403, a JSON error each time.
Events reach agents through Redis pub/sub, so an agent and a customer may be on different processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import WSMsgType, web

from gateway.errors import BadRequest, Forbidden, GatewayError, Unauthorized
from gateway.keys import METRICS, SETTINGS
from handoff.agents import Agent
from handoff.service import Chat, HandoffError, HandoffService
from nlu import mask_phone

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
COOKIE = "gw_agent"
SESSION_TTL = 12 * 3600
SNAPSHOT_DELAY = 0.5  # full snapshots: at most two a second; single events go out at once
SERVICE: web.AppKey[HandoffService] = web.AppKey("handoff_service")
HUB: web.AppKey[AgentHub] = web.AppKey("agent_hub")


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
                        data = json.loads(message["data"])
                        await self.route(data["to"], data["event"])
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
    raw = await service.redis.hgetall(service.keys.hk("session", sid)) if sid else {}
    if not raw:
        raise Unauthorized("not logged in")
    session = {k.decode(): v.decode() for k, v in raw.items()}
    if csrf and request.method == "POST":
        sent = request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(sent, session["csrf"]):
            raise Forbidden("missing or wrong X-CSRF-Token header")
    agent = await service.agents.get(session["agent"])
    if agent is None:
        raise Unauthorized("this agent account no longer exists")
    service.spawn(service.agents.heartbeat(agent.name))  # any request shows the agent is there
    return agent, session


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _text(body: dict[str, Any], key: str = "text", limit: int = 4000) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{key}' is required and must be a non-empty string")
    if len(value) > limit:
        raise BadRequest(f"'{key}' is longer than {limit} characters")
    return value.strip()


def _handoff_errors(handler: Any) -> Any:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except HandoffError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)

    return wrapped


# ---- handlers ---------------------------------------------------------------------------------------------
async def login(request: web.Request) -> web.Response:
    service, settings = request.config_dict[SERVICE], request.config_dict[SETTINGS]
    body = await _json(request)
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise BadRequest("'name' and 'password' are required strings")
    agent = await service.agents.verify(name, password)
    if agent is None:
        raise Unauthorized("wrong name or password")
    if agent.demo and settings.server.production:
        raise Forbidden("demo agent accounts are refused when server.production is set")
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    key = service.keys.hk("session", sid)
    await service.redis.hset(key, mapping={"agent": agent.name, "csrf": csrf, "created": time.time()})
    await service.redis.expire(key, SESSION_TTL)
    await service.agents.set_status(agent.name, "online")
    if service.timers:
        await service.timers.watch_agent(agent.name, time.time() + service.config.heartbeat_timeout)
    response = web.json_response({"agent": agent.to_json(), "csrf": csrf})
    response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", secure=request.secure, max_age=SESSION_TTL,
                        path="/")  # fmt: skip
    service.spawn(service.dispatch())
    service.spawn(service.publish_agents())
    return response


async def logout(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    await service.redis.delete(service.keys.hk("session", request.cookies[COOKIE]))
    await service.agent_gone(agent.name)
    response = web.json_response({})
    response.del_cookie(COOKIE, path="/")
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
    status = (await _json(request)).get("status")
    if status not in ("online", "away"):
        raise BadRequest("'status' must be online or away")
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
    return json.dumps(obj, ensure_ascii=False)


async def _detail(service: HandoffService, chat: Chat, agent: Agent) -> dict[str, Any]:
    view = (await chats_view(service, [chat]))[0]
    profile: dict[str, Any] = {"phone": view["customer"] if chat.phone else None, "tier": chat.tier, "plan": None,
                               "district": None, "name": None}  # fmt: skip
    if chat.phone and service.profile_of:
        with contextlib.suppress(Exception):
            profile.update(await service.profile_of(chat.phone, chat.lang))
    return {**view, "transcript": await service.transcript(chat), "profile": profile}


@_handoff_errors
async def chat_detail(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    chat = await service.chat(request.match_info["id"])
    if not agent.supervises and chat.agent != agent.name and not (chat.state == "queued" and agent.serves(chat.skills)):
        raise HandoffError(403, "this chat is not yours")
    return web.json_response(await _detail(service, chat, agent), dumps=_dumps)


@_handoff_errors
async def accept(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    chat = await service.accept(agent, request.match_info["id"])
    return web.json_response({"chat": await _detail(service, chat, agent)}, dumps=_dumps)


@_handoff_errors
async def send_message(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    entry = await service.agent_message(agent, request.match_info["id"], _text(await _json(request)))
    return web.json_response({"entry": entry}, dumps=_dumps)


@_handoff_errors
async def add_note(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    entry = await service.note(agent, request.match_info["id"], _text(await _json(request)))
    return web.json_response({"entry": entry}, dumps=_dumps)


@_handoff_errors
async def transfer(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    body = await _json(request)
    to_agent, to_skill = body.get("to_agent"), body.get("to_skill")
    if not (isinstance(to_agent, str) and to_agent) and not (isinstance(to_skill, str) and to_skill):
        raise BadRequest("give 'to_agent' (an agent's name) or 'to_skill' (a skill)")
    note = body.get("note") if isinstance(body.get("note"), str) else ""
    chat = await service.transfer(agent, request.match_info["id"], to_agent or None, to_skill or None, note)
    return web.json_response({"chat": chat.summary()}, dumps=_dumps)


@_handoff_errors
async def close(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    disposition = (await _json(request)).get("disposition")
    if not isinstance(disposition, str):
        raise BadRequest("'disposition' is required: resolved, follow_up or complaint_registered")
    chat = await service.close(agent, request.match_info["id"], disposition, request.config_dict[SURVEY])
    return web.json_response({"chat": chat.summary()}, dumps=_dumps)


@_handoff_errors
async def canned(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    chat = await service.chat(request.match_info["id"])
    return web.json_response(service.canned(chat, agent), dumps=_dumps)


async def agent_socket(request: web.Request) -> web.WebSocketResponse:
    service, hub, metrics = request.config_dict[SERVICE], request.config_dict[HUB], request.config_dict[METRICS]
    agent, _ = await current_agent(request, csrf=False)
    origin = request.headers.get("Origin")
    if origin and origin.split("://", 1)[-1] != request.host:
        raise Forbidden(f"origin {origin!r} may not open the agent console")
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
            with contextlib.suppress(json.JSONDecodeError, HandoffError, GatewayError):
                frame = json.loads(msg.data)
                if frame.get("type") == "heartbeat":
                    await service.agents.heartbeat(agent.name)
                    if service.timers:
                        await service.timers.watch_agent(agent.name, time.time() + service.config.heartbeat_timeout)
                elif frame.get("type") == "typing" and isinstance(frame.get("chat"), str):
                    await service.agent_typing(agent, frame["chat"])
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


@_handoff_errors
async def handle_callback(request: web.Request) -> web.Response:
    """``POST /api/callbacks/{id}/reply {"text", "note"?}`` answers on the customer's channel and closes the task;
    ``POST /api/callbacks/{id}/done {"note"?}`` closes it (e.g. after a phone call)."""
    service = request.config_dict[SERVICE]
    agent, _ = await current_agent(request)
    body = await _json(request)
    reply = _text(body) if request.match_info["action"] == "reply" else None
    note = body.get("note") if isinstance(body.get("note"), str) else ""
    task = await service.handle_callback(agent, request.match_info["id"], reply, note)
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
