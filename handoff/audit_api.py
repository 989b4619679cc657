"""The audit trail over HTTP, and revealing a customer's number with a reason.

* ``GET /api/audit?who=&what=&customer=&since=&until=&cursor=&limit=`` (supervisors and admins): entries newest
  first; ``customer`` is a phone number, hashed here (``audit.customer_ref``) — the trail holds no number.
  ``since``/``until`` are dates (``YYYY-MM-DD``, UTC, ``until`` inclusive) or epoch seconds.
* ``GET /api/audit/export?format=csv|json&…`` (admins): the same filters, a file; itself audited (``audit_export``).
* ``POST /api/chats/{id}/reveal {"reason"}``: the agent holding the chat (or a supervisor, on any chat) gets the
  customer's full number; audited with the reason (4–200 characters). Everyone else: 403.
* ``GET /audit``: the supervisors' page (templates/pages/audit.html, static/audit.js).

There is no route that changes or deletes an entry: the trail only grows (and is trimmed by age, gateway/audit.py).
"""

from __future__ import annotations

import calendar
import json
import re
import time
from typing import Annotated, Any

import msgspec
from aiohttp import web

from gateway import audit, websec
from gateway.edge import json_body
from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.pages import page
from gateway.privacy import PHONE, mask_phone
from handoff.auth import BODY_LIMIT, SERVICE, agent_of, requires
from handoff.store import ID

REVEAL_MIN, REVEAL_MAX = 4, 200
SHOWN_FOR = 60  # seconds the console shows a revealed number
LATEST = 4_102_444_800.0  # 2100-01-01: a later date is a mistake (and past what a stream id holds in milliseconds)
CURSOR = re.compile(r"[0-9]{1,15}-[0-9]{1,18}")  # a stream id, as ``next`` gives it


class RevealIn(msgspec.Struct):
    reason: Annotated[str, msgspec.Meta(max_length=2000)]


def _dumps(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False)


def where(request: web.Request) -> str:
    """The client's address for the trail (behind a trusted proxy, the one it names)."""
    return websec.client_key(request)


async def note(request: web.Request, who: str, what: str, customer_phone: str | None = None, reason: str = "",
               **details: Any) -> str:  # fmt: skip
    """``audit.record`` for a request: its Redis, its keys, its client's address."""
    service = request.config_dict[SERVICE]
    return await audit.record(service.redis, service.keys, who, what, customer_phone, where(request), reason,
                              **details)  # fmt: skip


# ---- reading ----------------------------------------------------------------------------------------------
def _when(request: web.Request, name: str, end: bool) -> float | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        if raw.replace(".", "", 1).isdigit():
            value = float(raw)
        else:
            day = calendar.timegm(time.strptime(raw, "%Y-%m-%d"))
            value = day + 86399.999 if end else float(day)
        if value <= LATEST:
            return value
    except (ValueError, OverflowError):
        pass
    raise BadRequest(f"'{name}' must be a date (YYYY-MM-DD) or epoch seconds, before 2100",
                     zh="日期格式应为 YYYY-MM-DD（2100 年以前）", field=name)  # fmt: skip


def _query(request: web.Request) -> audit.Query:
    q = request.query
    who, what, phone = q.get("who", "").strip(), q.get("what", "").strip(), q.get("customer", "").strip()
    if len(who) > audit.WHO_MAX:
        raise BadRequest(f"'who' may have at most {audit.WHO_MAX} characters", zh="操作人过长", field="who")
    if what and not audit.WHAT.fullmatch(what):
        raise BadRequest("'what' is not an audit event kind", zh="事件类型无效", field="what")
    if phone and len(audit.phone_digits(phone)) < 5:
        raise BadRequest("'customer' must be the customer's full phone number", zh="请填写客户的完整手机号",
                         field="customer")  # fmt: skip
    service = request.config_dict[SERVICE]
    customer = audit.customer_ref(service.keys, phone) if phone else ""
    since, until = _when(request, "since", False), _when(request, "until", True)
    if since is not None and until is not None and since > until:
        raise BadRequest("'since' is after 'until'", zh="开始日期晚于结束日期", field="since")
    return audit.Query(who, what, customer, since, until)


def _cursor(request: web.Request) -> str:
    cursor = request.query.get("cursor", "")
    if cursor and not CURSOR.fullmatch(cursor):
        raise BadRequest("'cursor' is not a cursor this API gave", zh="分页游标无效", field="cursor")
    return cursor


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 200:
        raise BadRequest("'limit' must be a number from 1 to 200", zh="每页条数应为 1–200", field="limit")
    return int(raw)


@requires("supervisor", "read the audit trail", "仅主管和管理员可查看审计日志")
async def list_entries(request: web.Request) -> web.Response:
    service, query = request.config_dict[SERVICE], _query(request)
    entries, cursor = await audit.page(service.redis, service.keys, query, _cursor(request), _limit(request))
    return web.json_response({"entries": entries, "next": cursor, "kinds": audit.KINDS}, dumps=_dumps)


@requires("admin", "export the audit trail", "仅管理员可导出审计日志")
async def export(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "csv")
    if fmt not in ("csv", "json"):
        raise BadRequest("'format' must be csv or json", zh="导出格式应为 csv 或 json", field="format")
    service, query = request.config_dict[SERVICE], _query(request)
    entries = await audit.collect(service.redis, service.keys, query)
    filters = {k: v for k, v in request.query.items() if k in ("who", "what", "since", "until") and v}
    await note(request, agent_of(request).name, "audit_export", request.query.get("customer") or None,
               format=fmt, entries=len(entries), filters=filters)  # fmt: skip
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    if fmt == "json":
        body, ctype = _dumps({"entries": entries}), "application/json"
    else:
        body, ctype = "\ufeff" + audit.to_csv(entries), "text/csv"  # the BOM: spreadsheets read it as UTF-8
    disposition = f'attachment; filename="audit-{stamp}.{fmt}"'
    return web.Response(text=body, content_type=ctype, charset="utf-8",
                        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})  # fmt: skip


# ---- revealing a number -----------------------------------------------------------------------------------
async def reveal(request: web.Request) -> web.Response:
    """``POST /api/chats/{id}/reveal {"reason"}`` → ``{"phone", "masked", "shown_for"}``, audited."""
    service, agent = request.config_dict[SERVICE], agent_of(request)
    chat_id = request.match_info["id"]
    if not ID.fullmatch(chat_id):
        raise BadRequest("'id' is not a valid id", zh="编号格式无效", field="id")
    reason = " ".join((await json_body(request, RevealIn, BODY_LIMIT)).reason.split())
    if not REVEAL_MIN <= len(reason) <= REVEAL_MAX:
        raise BadRequest(f"'reason' must have {REVEAL_MIN} to {REVEAL_MAX} characters: why the full number is needed",
                         zh=f"请填写查看完整号码的原因（{REVEAL_MIN}–{REVEAL_MAX} 个字）", field="reason")  # fmt: skip
    chat = await service.store.get(chat_id)
    if not (agent.supervises or (chat.state == "assigned" and chat.agent == agent.name)):
        raise Forbidden("only the agent holding this chat, or a supervisor, may reveal the customer's number",
                        zh="仅接待该会话的坐席或主管可以查看客户的完整号码")  # fmt: skip
    keys = service.keys
    number = keys.unseal(chat.phone) if chat.phone else ""
    sender = keys.unseal(chat.sender)
    if not number and PHONE.fullmatch(sender.strip()):  # an SMS customer: the sender is the number
        number = sender.strip()
    if not number:
        raise NotFound("no phone number is known for this chat's customer", zh="该会话的客户没有已知的手机号")
    await note(request, agent.name, "reveal", number, reason, chat=chat_id, role=agent.role)
    return web.json_response({"phone": number, "masked": mask_phone(number), "shown_for": SHOWN_FOR},
                             headers={"Cache-Control": "no-store"})  # fmt: skip


# ---- routes ------------------------------------------------------------------------------------------------
def routes() -> list[web.RouteDef]:
    """Routes of the ``/api`` sub-application (behind the agents' sign-in)."""
    return [
        web.get("/audit", list_entries),
        web.get("/audit/export", export),
        web.post("/chats/{id}/reveal", reveal),
    ]


def page_routes() -> list[web.RouteDef]:
    return [web.get("/audit", page("pages/audit.html"))]
