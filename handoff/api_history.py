"""The agents' API for history, search and supervisors' tools (mounted with the rest of ``/api``, same sign-in,
CSRF and roles; see ``handoff.api``):

* ``GET /api/chats/{id}/history`` — the customer of a chat the caller may read: earlier chats with people (on any
  channel, the same number), complaint tickets and survey scores;
* ``GET /api/history/{episode}`` — an ended chat, read-only (summary and transcript with notes);
* ``GET /api/history/{episode}/export?format=txt|json&lang=zh|en`` — its transcript as a download, numbers masked;
* ``GET /api/search?phone=&ticket=&text=&agent=&from=&to=`` — ended chats (dates ``YYYY-MM-DD`` or epoch seconds);
* supervisors: ``GET /api/live`` (every chat held now, the queue by skill, outages), ``POST /api/chats/{id}/takeover``.

Agents read what they took part in and the history of the customers of the chats they hold; supervisors all
(403 otherwise, 404 when there is none).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.privacy import mask_text
from handoff.auth import SERVICE, agent_of, requires
from handoff.history import view
from handoff.hub import dumps
from handoff.search import Query
from handoff.store import ID

EPISODE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
LABELS = {
    "zh": {"customer": "客户", "agent": "坐席", "bot": "机器人", "note": "内部备注", "event": "事件", "system": "系统",
           "title": "会话记录", "chat": "会话", "channel": "渠道", "customer_label": "客户", "agent_label": "坐席",
           "closed": "结束时间", "disposition": "结束原因", "ticket": "工单", "score": "满意度", "visitor": "访客"},
    "en": {"customer": "Customer", "agent": "Agent", "bot": "Bot", "note": "Internal note", "event": "Event",
           "system": "System", "title": "Chat transcript", "chat": "Chat", "channel": "Channel",
           "customer_label": "Customer", "agent_label": "Agent", "closed": "Closed", "disposition": "Disposition",
           "ticket": "Ticket", "score": "Satisfaction", "visitor": "Visitor"},
}  # fmt: skip
DISPOSITIONS = {"zh": {"resolved": "已解决", "follow_up": "需跟进", "complaint_registered": "已登记投诉"},
                "en": {"resolved": "Resolved", "follow_up": "Follow-up needed",
                       "complaint_registered": "Complaint registered"}}  # fmt: skip


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=dumps(data), status=status, content_type="application/json")


def _episode_id(request: web.Request) -> str:
    value = request.match_info["episode"]
    if not EPISODE.fullmatch(value):
        raise BadRequest("'episode' is not a valid id", zh="会话记录编号格式无效", field="episode")
    return value


async def _names(request: web.Request) -> dict[str, str]:
    return {a.name: a.display_name for a in await request.config_dict[SERVICE].agents.all()}


async def _readable_episode(request: web.Request) -> dict[str, Any]:
    service, agent = request.config_dict[SERVICE], agent_of(request)
    episode = await service.history.episode(_episode_id(request))
    if episode is None:
        raise NotFound("no such ended chat", zh="没有该会话记录")
    if not await service.history.may_read(agent, episode):
        raise Forbidden("this chat's history is not yours to read", zh="您无权查看该会话记录")
    return (await service.history.with_scores([episode]))[0]


async def customer_history(request: web.Request) -> web.Response:
    """``GET /api/chats/{id}/history``"""
    service, agent = request.config_dict[SERVICE], agent_of(request)
    chat_id = request.match_info["id"]
    if not ID.fullmatch(chat_id):
        raise BadRequest("'id' is not a valid id", zh="编号格式无效", field="id")
    chat = await service.views.readable(agent, chat_id)
    names = await _names(request)
    episodes = await service.history.of_customer(service.history.key_of(chat))
    views = [view(e, names) for e in episodes]
    surveys = [{"episode": v["id"], "score": v["score"], "comment": v["comment"], "channel": v["channel"],
                "closed_at": v["closed_at"]} for v in views if v["score"] is not None]  # fmt: skip
    return _json({"chat": chat.id, "conversations": views, "tickets": await service.history.tickets_of(chat),
                  "surveys": surveys})  # fmt: skip


async def episode_detail(request: web.Request) -> web.Response:
    """``GET /api/history/{episode}``: read-only."""
    service = request.config_dict[SERVICE]
    episode = await _readable_episode(request)
    transcript = await service.views.entries(await service.history.transcript_log(episode))
    return _json({**view(episode, await _names(request)), "transcript": transcript, "read_only": True})


def _local(request: web.Request, epoch: float) -> dt.datetime:
    """A time in the operator's time zone (routing.yml ``timezone``), as the exports and date filters read it."""
    return dt.datetime.fromtimestamp(epoch, ZoneInfo(request.config_dict[SERVICE].config.timezone))


def _line(entry: dict[str, Any], labels: dict[str, str], lang: str, when: dt.datetime) -> str:
    kind = str(entry.get("kind"))
    at = when.strftime("%Y-%m-%d %H:%M:%S")
    who = labels.get(kind, kind) + (f" {entry['agent']}" if kind in ("agent", "note") and entry.get("agent") else "")
    text = str(entry.get("display") or entry.get("text") or "")
    if kind == "event" and entry.get("disposition"):
        text = f"{text} ({DISPOSITIONS[lang].get(str(entry['disposition']), entry['disposition'])})"
    return f"[{at}] {who}: {mask_text(text)}"


async def export(request: web.Request) -> web.StreamResponse:
    """``GET /api/history/{episode}/export?format=txt|json&lang=zh|en``: a download, every number masked."""
    service = request.config_dict[SERVICE]
    fmt, lang = request.query.get("format", "txt"), request.query.get("lang", "zh")
    if fmt not in ("txt", "json"):
        raise BadRequest("'format' must be txt or json", zh="格式须为 txt 或 json", field="format")
    if lang not in LABELS:
        raise BadRequest("'lang' must be zh or en", zh="语言须为 zh 或 en", field="lang")
    episode = await _readable_episode(request)
    entries = await service.views.entries(await service.history.transcript_log(episode))
    summary = view(episode, await _names(request))
    labels = LABELS[lang]
    name = f"chat-{summary['ref']}-{_local(request, summary['closed_at']).strftime('%Y%m%d-%H%M')}.{fmt}"
    if fmt == "json":
        lines = [{"kind": e.get("kind"), "kind_label": labels.get(str(e.get("kind")), e.get("kind")),
                  "at": e.get("at"), "agent": e.get("agent"), "event": e.get("event"),
                  "text": mask_text(str(e.get("display") or e.get("text") or ""))} for e in entries]  # fmt: skip
        body = json.dumps({**summary, "labels": labels, "transcript": lines}, ensure_ascii=False, indent=2)
        ctype = "application/json"
    else:
        closed = _local(request, summary["closed_at"]).strftime("%Y-%m-%d %H:%M")
        customer = summary["customer"]
        if customer in ("访客", "Visitor"):
            customer = f"{labels['visitor']} {summary['ref'][:4]}"
        head = [
            f"{labels['title']} · {labels['chat']} {summary['ref']}",
            f"{labels['customer_label']}: {customer} · {labels['channel']}: {summary['channel']}",
            f"{labels['agent_label']}: {summary['agent_name']} · {labels['closed']}: {closed} · "
            f"{labels['disposition']}: {DISPOSITIONS[lang].get(summary['disposition'], summary['disposition'])}",
        ]
        if summary["ticket"]:
            head.append(f"{labels['ticket']}: {summary['ticket']}")
        if summary["score"] is not None:
            head.append(f"{labels['score']}: {summary['score']}")
        body = (
            "\n".join([*head, "", *(_line(e, labels, lang, _local(request, float(e.get("at") or 0))) for e in entries)])
            + "\n"
        )
        ctype = "text/plain"
    return web.Response(text=body, content_type=ctype, charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})  # fmt: skip


def _date(request: web.Request, field: str, end: bool) -> float | None:
    value = request.query.get(field, "").strip()
    if not value:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            tz = ZoneInfo(request.config_dict[SERVICE].config.timezone)
            day = dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=tz)
            return (day + dt.timedelta(days=1)).timestamp() - 0.001 if end else day.timestamp()
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ValueError(value)
        return seconds
    except (ValueError, OverflowError):
        raise BadRequest(f"'{field}' must be a date (YYYY-MM-DD) or epoch seconds", field=field,
                         zh="日期格式应为 YYYY-MM-DD") from None  # fmt: skip


async def search(request: web.Request) -> web.Response:
    """``GET /api/search``"""
    service, agent = request.config_dict[SERVICE], agent_of(request)
    q = request.query
    for field in ("phone", "ticket", "text", "agent"):
        if len(q.get(field, "")) > 200:
            raise BadRequest(f"'{field}' is too long", zh="搜索条件过长", field=field)
    query = Query(phone=q.get("phone", "").strip(), ticket=q.get("ticket", "").strip(), text=q.get("text", "").strip(),
                  agent=q.get("agent", "").strip(), since=_date(request, "from", False),
                  until=_date(request, "to", True))  # fmt: skip
    found = await service.search.run(agent, query)
    names = await _names(request)
    results = [{**view(e, names), "snippet": e.get("snippet", "")} for e in found["results"]]
    return _json({"results": results, "more": found["more"]})


@requires("supervisor", "watch live chats", "仅主管和管理员可查看进行中的会话")
async def live(request: web.Request) -> web.Response:
    """``GET /api/live``: every chat held now, the queue by skill, system outages."""
    service = request.config_dict[SERVICE]
    return _json({"chats": await service.supervision.live(), **await service.views.overview()})


@requires("supervisor", "take over a chat", "仅主管和管理员可以接管会话")
async def take_over(request: web.Request) -> web.Response:
    """``POST /api/chats/{id}/takeover``"""
    service = request.config_dict[SERVICE]
    chat_id = request.match_info["id"]
    if not ID.fullmatch(chat_id):
        raise BadRequest("'id' is not a valid id", zh="编号格式无效", field="id")
    chat = await service.supervision.take_over(agent_of(request), chat_id)
    return _json({"chat": chat.summary()})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/chats/{id}/history", customer_history),
        web.get("/history/{episode}", episode_detail),
        web.get("/history/{episode}/export", export),
        web.get("/search", search),
        web.get("/live", live),
        web.post("/chats/{id}/takeover", take_over),
    ]
