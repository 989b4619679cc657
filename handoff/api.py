"""The agents' HTTP API — a sub-application mounted at ``/api`` — and the console page ``/agent``.

Every ``/api`` endpoint signs its agent in through ``handoff.auth.middleware`` (see there: sessions, CSRF, roles;
``@requires("supervisor")`` and ``@public`` mark the exceptions to "any agent"). Every body is decoded against its
own schema (``msgspec.Struct``) below; a bad body → 400 naming the field, a JSON error in English and Chinese each
time. A chat's transcript, notes and canned replies are for the agent it is assigned to (and supervisors); the
queue's summaries are for every agent with the skills. The console's WebSocket is ``handoff/hub.py``.

Mounting: ``app.add_subapp("/api", api_app(extra))`` — ``extra`` are routes of other modules (paths relative to
``/api``) that get the same sign-in and roles; ``page_routes()`` go on the main application.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from gateway.edge import json_body
from gateway.errors import BadRequest
from gateway.pages import page
from handoff import api_history, audit_api, auth
from handoff.auth import AGENT, BODY_LIMIT, SERVICE, agent_of, public, require_agent, requires
from handoff.hub import HUB, agent_socket, dumps, hub_ctx
from handoff.store import ID
from handoff.views import callback_view, visible

__all__ = ["AGENT", "HUB", "SERVICE", "agent_of", "api_app", "hub_ctx", "page_routes",
           "public", "require_agent", "requires"]  # fmt: skip


# ---- request bodies: one schema each ----------------------------------------------------------------------
Text = Annotated[str, msgspec.Meta(max_length=4000)]
Note = Annotated[str, msgspec.Meta(max_length=500)]
Short = Annotated[str, msgspec.Meta(max_length=64)]


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


def _json(body: Any) -> web.Response:
    return web.json_response(body, dumps=dumps)


# ---- handlers ---------------------------------------------------------------------------------------------
async def set_status(request: web.Request) -> web.Response:
    service, agent = request.config_dict[SERVICE], agent_of(request)
    status = (await json_body(request, StatusIn, BODY_LIMIT)).status
    await service.agents.set_status(agent.name, status)
    if status == "online":
        service.background.spawn(service.queue.dispatch())
    service.background.spawn(service.views.publish_agents())
    return web.json_response({"status": status})


async def queue(request: web.Request) -> web.Response:
    service, agent = request.config_dict[SERVICE], agent_of(request)
    views = service.views
    body: dict[str, Any] = {"chats": visible(agent, await views.queue()), "mine": await views.mine(agent),
                            "now": time.time()}  # fmt: skip  # the console counts its clocks in the server's time
    if agent.supervises:
        body["agents"] = await views.agent_loads()
        body["breaches"] = await views.breaches()
        body.update(await views.overview())  # the queue by skill and system outages
    return _json(body)


async def chat_detail(request: web.Request) -> web.Response:
    views = request.config_dict[SERVICE].views
    chat = await views.readable(agent_of(request), path_id(request))
    return _json(await views.detail(chat))


async def accept(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    chat = await service.queue.accept(agent_of(request), path_id(request))
    return _json({"chat": await service.views.detail(chat)})


async def send_message(request: web.Request) -> web.Response:
    service, agent, chat_id = request.config_dict[SERVICE], agent_of(request), path_id(request)
    text = _text((await json_body(request, TextIn, BODY_LIMIT)).text)
    entry = await service.chats.agent_message(agent, chat_id, text)
    return _json({"entry": entry, "sla": await service.views.sla(chat_id)})  # a first reply stops clocks


async def add_note(request: web.Request) -> web.Response:
    service, agent, chat_id = request.config_dict[SERVICE], agent_of(request), path_id(request)
    text = _text((await json_body(request, TextIn, BODY_LIMIT)).text)
    return _json({"entry": await service.chats.note(agent, chat_id, text)})


async def transfer(request: web.Request) -> web.Response:
    service, agent, chat_id = request.config_dict[SERVICE], agent_of(request), path_id(request)
    body = await json_body(request, TransferIn, BODY_LIMIT)
    to_agent, to_skill = (body.to_agent or "").strip(), (body.to_skill or "").strip()
    if not to_agent and not to_skill:
        raise BadRequest("give 'to_agent' (an agent's name) or 'to_skill' (a skill)",
                         zh="请指定转接坐席（to_agent）或技能组（to_skill）", field="to_agent")  # fmt: skip
    chat = await service.chats.transfer(agent, chat_id, to_agent or None, to_skill or None, body.note.strip())
    return _json({"chat": chat.summary()})


async def close(request: web.Request) -> web.Response:
    service, agent, chat_id = request.config_dict[SERVICE], agent_of(request), path_id(request)
    disposition = (await json_body(request, CloseIn, BODY_LIMIT)).disposition
    chat = await service.chats.close(agent, chat_id, disposition)
    return _json({"chat": chat.summary()})


async def transfer_targets(request: web.Request) -> web.Response:
    """``GET /api/transfer-targets``: the agents online now (not the caller) and the skill groups."""
    return _json(await request.config_dict[SERVICE].views.transfer_targets(agent_of(request)))


async def canned(request: web.Request) -> web.Response:
    views, agent = request.config_dict[SERVICE].views, agent_of(request)
    chat = await views.readable(agent, path_id(request))
    return _json(views.canned(chat, agent))


async def callbacks(request: web.Request) -> web.Response:
    service = request.config_dict[SERVICE]
    tasks = await service.callbacks.tasks(include_done=request.query.get("all") in ("1", "true"))
    return _json({"callbacks": [callback_view(t) for t in tasks]})


async def handle_callback(request: web.Request) -> web.Response:
    """``POST /api/callbacks/{id}/reply {"text", "note"?}`` answers on the customer's channel and closes the task;
    ``POST /api/callbacks/{id}/done {"note"?}`` closes it (e.g. after a phone call)."""
    service, agent, task_id = request.config_dict[SERVICE], agent_of(request), path_id(request)
    body = await json_body(request, CallbackIn, BODY_LIMIT)
    reply = _text(body.text or "") if request.match_info["action"] == "reply" else None
    task = await service.callbacks.handle(agent, task_id, reply, body.note.strip())
    return _json(callback_view(task))


# ---- mounting -------------------------------------------------------------------------------------------
def api_routes() -> list[web.RouteDef]:
    """The agents' endpoints, relative to ``/api``."""
    return [
        web.post("/agent/login", auth.login),
        web.post("/agent/logout", auth.logout),
        web.get("/agent/me", auth.me),
        web.post("/agent/status", set_status),
        web.get("/queue", queue),
        web.get("/chats/{id}", chat_detail),
        web.post("/chats/{id}/accept", accept),
        web.post("/chats/{id}/messages", send_message),
        web.post("/chats/{id}/notes", add_note),
        web.post("/chats/{id}/transfer", transfer),
        web.post("/chats/{id}/close", close),
        web.get("/chats/{id}/canned", canned),
        web.get("/transfer-targets", transfer_targets),
        web.get("/callbacks", callbacks),
        web.post("/callbacks/{id}/{action:reply|done}", handle_callback),
        *api_history.routes(),
        *audit_api.routes(),  # the audit trail, and revealing a number with a reason
    ]


def api_app(extra: Iterable[web.AbstractRouteDef] = ()) -> web.Application:
    """The ``/api`` sub-application: the agents' endpoints and ``extra`` (paths relative to ``/api``), each
    behind the agent sign-in middleware. Add every route before mounting it (mounting prefixes them)."""
    api = web.Application(middlewares=[auth.middleware])
    api.add_routes(api_routes())
    api.add_routes(list(extra))
    return api


def page_routes() -> list[web.RouteDef]:
    """On the main application: the console page, the console's WebSocket and the audit page (/audit)."""
    return [web.get("/agent", page("pages/agent.html")), web.get("/ws/agent", agent_socket), *audit_api.page_routes()]
