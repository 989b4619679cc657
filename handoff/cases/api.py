"""The complaint cases' HTTP API (under ``/api``, behind the agents' sign-in) and the console page ``/cases``.

* ``GET /api/cases?status=&type=&assignee=&severity=`` — the cases, newest first, with their clocks; an agent sees
  the cases they are responsible for, supervisors every case;
* ``GET /api/cases/{ticket}`` — one case: history, notes, the customer (masked), account facts, linked chats,
  the transitions allowed now;
* ``POST /api/cases/{ticket}/transition {"to", "note"?, "reply"?, "assignee"?}`` — 409 with ``allowed`` when the
  case cannot go there (now); ``reply`` is what the customer is told at ``replied``/``resolved``;
* ``POST /api/cases/{ticket}/notes {"text"}``;
* ``POST /api/cases {"callback"? | "phone"?, "type"?, "text", "lang"?}`` — an agent registers a complaint for a
  callback task's customer or a phone/on-site one (201; 200 with ``linked`` when the customer's open case took it).

Mounting: ``routes()`` go into ``handoff.api.api_app(extra)``, ``page_routes()`` on the main application."""

from __future__ import annotations

import json
import re
import time
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from gateway.edge import json_body
from gateway.errors import BadRequest, Forbidden
from gateway.pages import page
from gateway.privacy import mask_phone
from handoff.agents import Agent
from handoff.auth import BODY_LIMIT, SERVICE, agent_of
from handoff.cases import model
from handoff.cases.config import CLOCKS, SEVERITIES, TYPES
from handoff.cases.customer import next_promise
from handoff.cases.front import Cases

TICKET = re.compile(r"[A-Za-z0-9_-]{1,40}")
Note = Annotated[str, msgspec.Meta(max_length=1000)]
Stage = Literal["registered", "analysed", "dispatched", "in_progress", "replied", "resolved", "followed_up", "closed",
                "reopened"]  # fmt: skip


class TransitionIn(msgspec.Struct):
    to: Stage
    note: Note = ""
    reply: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    assignee: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class NoteIn(msgspec.Struct):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class RegisterIn(msgspec.Struct):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    callback: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    phone: Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9]{5,20}$")] | None = None
    type: Literal["service", "business", "network", "other"] | None = None
    lang: Literal["zh", "en"] = "zh"


def _cases(request: web.Request) -> Cases:
    return request.config_dict[SERVICE].cases


def _dumps(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False)


def _ticket(request: web.Request) -> str:
    ticket = request.match_info["ticket"]
    if not TICKET.fullmatch(ticket):
        raise BadRequest("'ticket' is not a valid ticket number", zh="投诉单号格式无效", field="ticket")
    return ticket


def _customer(case: dict[str, Any]) -> str:
    if case.get("phone"):
        return mask_phone(case["phone"])
    sender = str(case.get("sender") or "")
    return f"{sender[:3]}…" if len(sender) > 6 else "…"  # a channel's user id: never whole


def _name(name: Any) -> str | None:
    return f"{str(name)[0]}{'*' * (len(str(name)) - 1)}" if name else None


def clocks(case: dict[str, Any], config: Any) -> list[dict[str, Any]]:
    out = []
    for name in CLOCKS:
        c = config.clock(name, case["type"], case.get("severity") or "medium")
        due, met = case.get(f"{name}_due"), case.get(f"{name}_at")
        out.append({"clock": name, "due_at": due, "warn_at": due - c.warn_before if due else None, "met_at": met,
                    "breached": bool(due and (met or time.time()) > due)})  # fmt: skip
    return out


def view(case: dict[str, Any], config: Any) -> dict[str, Any]:
    """A case as the console lists it: the customer masked, never the raw number or sender id."""
    dept = config.departments.get(case.get("department") or "")
    promise, due = next_promise(case)
    facts = dict(case.get("facts") or {})
    if "name" in facts:
        facts["name"] = _name(facts["name"])
    return {
        "ticket": case["ticket"], "status": case["status"], "type": case["type"], "severity": case.get("severity"),
        "source": case.get("source"), "channel": case["channel"], "customer": _customer(case),
        "lang": case.get("lang"), "summary": case.get("summary"), "created_at": case["created_at"],
        "updated_at": case.get("updated_at"), "department": case.get("department"),
        "department_name": dept.name if dept else None, "assignee": case.get("assignee"),
        "supervisor": case.get("supervisor"), "head": case.get("head"), "escalation": int(case.get("escalation") or 0),
        "escalated_to": case.get("escalated_to") or None, "region": case.get("region") or None, "facts": facts,
        "clocks": clocks(case, config), "reopens": int(case.get("reopens") or 0), "linked": case.get("linked") or [],
        "followup": case.get("followup") or {}, "next_promise": promise, "next_due": due,
    }  # fmt: skip


def _may_read(agent: Agent, case: dict[str, Any]) -> None:
    if not (agent.supervises or case.get("assignee") == agent.name):
        raise Forbidden("this case is not yours", zh="这不是您负责的投诉单")


# ---- handlers ---------------------------------------------------------------------------------------------
async def list_cases(request: web.Request) -> web.Response:
    cases, agent, q = _cases(request), agent_of(request), request.query
    status, kind, severity = q.get("status") or None, q.get("type") or None, q.get("severity") or None
    assignee = q.get("assignee") or None
    for name, value, allowed in (("status", status, model.STAGES), ("type", kind, TYPES),
                                 ("severity", severity, SEVERITIES)):  # fmt: skip
        if value is not None and value not in allowed:
            raise BadRequest(f"'{name}' must be one of {', '.join(allowed)}", zh=f"参数 {name} 的取值无效", field=name)
    if assignee is not None and not TICKET.fullmatch(assignee):
        raise BadRequest("'assignee' is not a valid agent name", zh="坐席账号格式无效", field="assignee")
    if not agent.supervises:
        if assignee not in (None, agent.name):
            raise Forbidden("agents see their own cases only", zh="坐席只能查看自己负责的投诉单")
        assignee = agent.name
    store = cases.engine.store
    found = await store.many(await store.tickets(stage=status, assignee=assignee))
    rows = [view(c, cases.config) for c in found
            if (kind is None or c["type"] == kind) and (severity is None or c.get("severity") == severity)]  # fmt: skip
    rows.sort(key=lambda r: r["created_at"], reverse=True)
    return web.json_response({"cases": rows, "now": time.time(), "stages": list(model.STAGES)}, dumps=_dumps)


async def case_detail(request: web.Request) -> web.Response:
    cases, agent = _cases(request), agent_of(request)
    case = await cases.engine.store.get(_ticket(request))
    _may_read(agent, case)
    return web.json_response(await detail(cases, case), dumps=_dumps)


async def detail(cases: Cases, case: dict[str, Any]) -> dict[str, Any]:
    store, now = cases.engine.store, time.time()
    chats = []
    for chat_id in case.get("chats") or []:
        chat = await cases.engine.chats.find(chat_id)
        if chat is not None:
            chats.append({"id": chat.id, "channel": chat.channel, "state": chat.state, "agent": chat.agent,
                          "enqueued_at": chat.enqueued_at, "reason": chat.reason})  # fmt: skip
    allowed = model.allowed_from(case["status"], resolved_at=case.get("resolved_at"), now=now,
                                 reopen_window=cases.config.reopen_window)  # fmt: skip
    history, notes = await store.history(case["ticket"]), await store.notes(case["ticket"])
    return {**view(case, cases.config), "history": history, "notes": notes, "chats": chats, "allowed": list(allowed),
            "now": now}  # fmt: skip


async def transition(request: web.Request) -> web.Response:
    cases, agent, ticket = _cases(request), agent_of(request), _ticket(request)
    body = await json_body(request, TransitionIn, BODY_LIMIT)
    if body.assignee is not None and not agent.supervises:
        raise Forbidden("only supervisors may choose who handles a case", zh="仅主管可以指定处理人",
                        field="assignee")  # fmt: skip
    if body.assignee is not None and await cases.engine.agents.get(body.assignee) is None:
        raise BadRequest(f"no agent {body.assignee!r}", zh="没有该坐席", field="assignee")
    try:
        case = await cases.engine.transition(ticket, body.to, "agent", agent.name, agent=agent, note=body.note.strip(),
                                             reply=body.reply.strip(), assignee=body.assignee)  # fmt: skip
    except model.TransitionRefused as exc:  # the JSON error of every 409, and the stages allowed now
        body = {"error": exc.message, "error_zh": exc.zh, "field": exc.field, "allowed": list(exc.allowed)}
        return web.json_response(body, status=409, dumps=_dumps)
    return web.json_response(await detail(cases, case), dumps=_dumps)


async def add_note(request: web.Request) -> web.Response:
    cases, agent, ticket = _cases(request), agent_of(request), _ticket(request)
    text = (await json_body(request, NoteIn, BODY_LIMIT)).text.strip()
    if not text:
        raise BadRequest("'text' must not be empty", zh="内容不能为空", field="text")
    return web.json_response({"note": await cases.engine.note(agent, ticket, text)}, dumps=_dumps)


async def register(request: web.Request) -> web.Response:
    """An agent registers a complaint: for a callback task's customer (their channel), or by phone number."""
    service, agent = request.config_dict[SERVICE], agent_of(request)
    body = await json_body(request, RegisterIn, BODY_LIMIT)
    if not body.text.strip():
        raise BadRequest("'text' must not be empty", zh="内容不能为空", field="text")
    if body.callback:
        task = await service.callbacks.get(body.callback)
        channel, sender, phone, lang = task["channel"], task["sender"], None, task.get("lang") or body.lang
        source, conversation = "callback", task.get("conversation") or ""
    elif body.phone:
        channel, sender, phone, lang, source, conversation = "phone", body.phone, body.phone, body.lang, "agent", ""
    else:
        raise BadRequest("give 'callback' (a callback task) or 'phone'", field="callback",
                         zh="请指定回电任务（callback）或手机号（phone）")  # fmt: skip
    case, linked = await service.cases.from_agent(agent, channel=channel, sender=sender, phone=phone, lang=lang,
                                                  text=body.text.strip(), complaint_type=body.type, source=source,
                                                  conversation=conversation)  # fmt: skip
    return web.json_response({**await detail(service.cases, case), "linked": linked}, status=200 if linked else 201,
                             dumps=_dumps)  # fmt: skip


def routes() -> list[web.RouteDef]:
    """Routes of the ``/api`` sub-application (behind the agents' sign-in, ``handoff.api.api_app``)."""
    return [
        web.get("/cases", list_cases),
        web.post("/cases", register),
        web.get("/cases/{ticket}", case_detail),
        web.post("/cases/{ticket}/transition", transition),
        web.post("/cases/{ticket}/notes", add_note),
    ]


def page_routes() -> list[web.RouteDef]:
    return [web.get("/cases", page("pages/cases.html"))]
