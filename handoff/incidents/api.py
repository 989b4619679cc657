"""The incidents' HTTP API (under ``/api``, supervisors only) and the incident room page ``/incidents``.

* ``GET /api/incidents`` — recent incidents (with their counters) and the detector's open proposals;
* ``POST /api/incidents`` — open one: ``{"title", "category", "severity", "districts", "services"?, "eta"?,
  "owner"?, "notice_zh"?, "notice_en"?, "note"?}`` (201). A monitoring system may call it with
  ``Authorization: Bearer <token>`` (the env var named by ``monitoring_token_env`` in config/incidents.yml) instead
  of a supervisor's session, also with a Prometheus Alertmanager webhook body (``{"version", "groupKey", "status",
  "alerts": [{"labels": {"district", "service"?, "category"?, "severity"?}, "annotations": {"summary"}}]}``): a
  firing group opens one incident, its later notifications (and ``resolved``) go on that incident's timeline;
* ``GET /api/incidents/{id}`` — the record, its timeline, counters, linked complaints (customers masked), tasks,
  broadcasts, and the metrics now (the last hour's network messages per affected district, the human queue);
* ``POST /api/incidents/{id}/transition {"to", "note"?}`` — 409 with ``allowed`` when it cannot go there now;
* ``POST /api/incidents/{id}/update {"eta"?, "severity"?, "districts"?, "services"?, "owner"?, "title"?,
  "notice_zh"?, "notice_en"?, "note"?}`` — ``null`` clears ``eta``; an empty notice text means the templated one;
* ``POST /api/incidents/{id}/notes {"text", "publish"?: "zh"|"en"}`` — with ``publish``, the text also becomes the
  customers' notice in that language (a status update pushed in one step);
* ``POST /api/incidents/proposals/{id}/accept`` (an incident is opened, 201) / ``…/dismiss``; 409 when decided;
* ``POST /api/incidents/detect`` — run the detector now (it also runs every ``detector.interval`` seconds);
* ``POST /api/incidents/{id}/broadcasts {"numbers", "lang"?, "text"?}`` — the notice by SMS to those numbers
  (``handoff.incidents.broadcast``); ``POST /api/incidents/broadcasts/{id}/approve`` (a second supervisor) or
  ``…/cancel``; progress in ``GET /api/incidents/{id}`` (``broadcasts``);
* ``POST /api/incidents/{id}/tasks {"department", "title", "deadline"}``, ``…/tasks/{task}/done`` — tasks for the
  departments of config/incidents.yml (``handoff.incidents.tasks``; overdue ones are reminded to supervisors);
* ``GET /api/incidents/{id}/review?format=json|md&lang=zh|en`` — the review (``handoff.incidents.review``);
  ``POST /api/incidents/{id}/lessons {"text"}`` — the lessons learnt, for it.

Mounting: ``routes()`` go into ``handoff.api.api_app(extra)``, ``page_routes()`` on the main application, the
desk (``handoff.incidents.desk.Desk``) under ``DESK``."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web
from msgspec import UNSET, Meta, UnsetType

from gateway.edge import decode, read_body, require_json
from gateway.errors import BadRequest, Conflict, NotFound, Unauthorized, json_error
from gateway.pages import page
from handoff.auth import BODY_LIMIT, SERVICE, agent_of, public, require_agent, requires
from handoff.incidents import api_work, room
from handoff.incidents.broadcast import describe
from handoff.incidents.model import CATEGORIES, SERVICES, STAGES, TransitionRefused
from handoff.incidents.web import DESK, desk_of, json_response, path_id, view

__all__ = ["DESK", "page_routes", "routes"]
Category = Literal["natural_disaster", "accident", "public_health", "social_security", "network_fault"]
Service = Literal["mobile", "broadband", "voice", "sms", "data", "iptv"]
Stage = Literal["reported", "assessed", "plan", "acting", "monitoring", "closed", "reviewed"]
District = Annotated[str, Meta(min_length=1, max_length=40)]
Title = Annotated[str, Meta(max_length=200)]
NoticeText = Annotated[str, Meta(max_length=600)]
Note = Annotated[str, Meta(max_length=2000)]
Severity = Annotated[int, Meta(ge=1, le=4)]
Eta = Annotated[float, Meta(ge=0, le=4102444800)]  # epoch seconds, before 2100
SEVERITY_WORDS = {"critical": 1, "page": 1, "major": 2, "high": 2, "warning": 3, "minor": 4, "info": 4, "low": 4}
assert set(CATEGORIES) == set(Category.__args__) and set(SERVICES) == set(Service.__args__)  # type: ignore[attr-defined]
assert tuple(Stage.__args__) == STAGES  # type: ignore[attr-defined]


class IncidentIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, Meta(min_length=1, max_length=200)]
    category: Category
    severity: Severity
    districts: Annotated[list[District], Meta(min_length=1, max_length=100)]
    services: Annotated[list[Service], Meta(max_length=6)] = []
    eta: Eta | None = None
    owner: Annotated[str, Meta(max_length=64)] = ""
    notice_zh: NoticeText = ""
    notice_en: NoticeText = ""
    note: Note = ""


class UpdateIn(msgspec.Struct, forbid_unknown_fields=True):
    eta: Eta | UnsetType | None = UNSET
    severity: Severity | UnsetType = UNSET
    districts: Annotated[list[District], Meta(min_length=1, max_length=100)] | UnsetType = UNSET
    services: Annotated[list[Service], Meta(max_length=6)] | UnsetType = UNSET
    owner: Annotated[str, Meta(max_length=64)] | UnsetType = UNSET
    title: Annotated[str, Meta(min_length=1, max_length=200)] | UnsetType = UNSET
    notice_zh: NoticeText | UnsetType = UNSET
    notice_en: NoticeText | UnsetType = UNSET
    note: Note = ""


class TransitionIn(msgspec.Struct, forbid_unknown_fields=True):
    to: Stage
    note: Note = ""


class NoteIn(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, Meta(min_length=1, max_length=2000)]
    publish: Literal["zh", "en"] | None = None  # also the customers' notice in that language (at most 600 characters)


class Alert(msgspec.Struct):
    labels: dict[Annotated[str, Meta(max_length=100)], Annotated[str, Meta(max_length=1000)]]
    annotations: dict[Annotated[str, Meta(max_length=100)], Annotated[str, Meta(max_length=4000)]] = {}
    status: str = "firing"


class AlertmanagerIn(msgspec.Struct):
    """A Prometheus Alertmanager webhook body (``webhook_configs``), version 4."""

    alerts: Annotated[list[Alert], Meta(min_length=1, max_length=1000)]
    status: Literal["firing", "resolved"] = "firing"
    groupKey: Annotated[str, Meta(max_length=2000)] = ""  # Alertmanager's own field name
    version: str = "4"


class _Sniff(msgspec.Struct):
    alerts: Any = None


def _districts(values: list[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(v.strip() for v in values if v.strip()))
    if not cleaned:
        raise BadRequest("'districts' must name at least one district", zh="请至少填写一个受影响区域",
                         field="districts")  # fmt: skip
    return cleaned


async def _caller(request: web.Request) -> str:
    """``monitoring`` for a caller with the monitoring token, else the signed-in supervisor's name."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        token = desk_of(request).config.monitoring_token()
        sent = header[7:].strip().encode("utf-8", "surrogatepass")
        if not token or not hmac.compare_digest(sent, token.encode()):
            raise Unauthorized("wrong or unconfigured monitoring token", zh="监控系统令牌错误或未配置")
        return "monitoring"
    agent = await require_agent(request, "supervisor", refusal="manage incidents", zh="仅主管和管理员可管理重大事件")
    return agent.name


# ---- handlers -------------------------------------------------------------------------------------------
@requires("supervisor", "see incidents", "仅主管和管理员可查看重大事件")
async def list_incidents(request: web.Request) -> web.Response:
    desk = desk_of(request)
    await desk.flush_stats()
    found = await desk.store.recent(100)
    stats = await desk.store.stats_of([i.id for i in found])  # one round trip for all
    incidents = [{**i.to_json(), "stats": stats[i.id]} for i in found]
    reminders = await desk.recent_reminders(time.time() - 3600)  # the last hour's (overdue tasks, silent ones)
    return json_response({"incidents": incidents, "proposals": await desk.detector.proposals(),
                  "departments": desk.config.tasks.departments, "reminders": reminders})  # fmt: skip


@public  # a supervisor's session, or the monitoring system's bearer token (``_caller``)
async def create(request: web.Request) -> web.Response:
    by = await _caller(request)
    require_json(request)
    raw = await read_body(request, BODY_LIMIT * 4)
    if decode(raw, _Sniff).alerts is not None:
        return await _alertmanager(request, decode(raw, AlertmanagerIn), by)
    body = decode(raw, IncidentIn)
    desk = desk_of(request)
    incident = await desk.store.create(
        title=body.title.strip() or body.category, category=body.category, severity=body.severity,
        districts=_districts(body.districts), services=tuple(dict.fromkeys(body.services)), owner=body.owner.strip(),
        by=by, eta=body.eta, notice={k: v for k, v in (("zh", body.notice_zh), ("en", body.notice_en)) if v.strip()},
        source="monitoring" if by == "monitoring" else "console", note=body.note.strip(),
    )  # fmt: skip
    await desk.changed(incident, "created")
    return json_response(await view(desk, incident), status=201)


def _alert_incident(alert: Alert) -> dict[str, Any]:
    labels = alert.labels
    raw = labels.get("districts") or labels.get("district") or ""
    districts = _districts(re.split(r"[,，\s]+", raw))
    category = labels.get("category", "network_fault")
    if category not in CATEGORIES:
        raise BadRequest(f"'alerts.labels.category' must be one of {', '.join(CATEGORIES)}",
                         zh="事件类别无效", field="alerts.labels.category")  # fmt: skip
    severity_word = labels.get("severity", "3").lower()
    severity = int(severity_word) if severity_word in ("1", "2", "3", "4") else SEVERITY_WORDS.get(severity_word, 3)
    services = tuple(s for s in re.split(r"[,\s]+", labels.get("service", "")) if s in SERVICES)
    title = alert.annotations.get("summary") or labels.get("alertname") or "monitoring alert"
    return {"title": title[:200], "category": category, "severity": severity, "districts": districts,
            "services": services}  # fmt: skip


async def _alertmanager(request: web.Request, body: AlertmanagerIn, by: str) -> web.Response:
    desk = desk_of(request)
    firing = [a for a in body.alerts if a.status == "firing"]
    group = hashlib.sha256((body.groupKey or json.dumps(body.alerts[0].labels, sort_keys=True)).encode()).hexdigest()
    key = desk.keys.incident_external(group[:32])
    known = await desk.redis.get(key)
    incident = await desk.store.find(known.decode()) if known else None
    if incident is not None and incident.is_open:
        summary = "; ".join(a.annotations.get("summary", "") or a.labels.get("alertname", "") for a in body.alerts)
        await desk.store.note(incident.id, by, f"[{body.status}] {summary}"[:2000])
        return json_response({**await view(desk, incident), "deduplicated": True})
    if not firing:
        return json_response({"created": False, "reason": "no firing alert and no open incident of this group"})
    facts = _alert_incident(firing[0])
    for alert in firing[1:]:  # every firing alert's districts and services
        more = _alert_incident(alert)
        facts["districts"] = tuple(dict.fromkeys((*facts["districts"], *more["districts"])))
        facts["services"] = tuple(dict.fromkeys((*facts["services"], *more["services"])))
        facts["severity"] = min(facts["severity"], more["severity"])
    incident = await desk.store.create(**facts, owner="", by=by, source="monitoring")
    await desk.redis.set(key, incident.id)
    await desk.changed(incident, "created")
    return json_response(await view(desk, incident), status=201)


@requires("supervisor", "see incidents", "仅主管和管理员可查看重大事件")
async def detail(request: web.Request) -> web.Response:
    desk, incident_id = desk_of(request), path_id(request)
    incident = await desk.store.get(incident_id)
    links = [{k: v for k, v in link.items() if k not in ("sender",)}
             for link in (await desk.store.links(incident_id)).values()]  # fmt: skip
    links.sort(key=lambda link: link["at"])
    broadcasts = [describe(b) for b in await desk.broadcasts.of(incident_id)]
    window = (await desk.detector.window(time.time()))[0]  # the last hour's network messages, per district
    shown = await view(desk, incident)
    metrics = {"inbound_last_hour": {d: round(window.get(d, 0.0)) for d in incident.districts},
               "queue": len(await request.config_dict[SERVICE].views.queue()),
               "districts": room.districts(incident.districts, shown["stats"], links, window),
               "sentiment": room.sentiment(shown["stats"], links)}  # fmt: skip
    return json_response({"incident": shown, "timeline": await desk.store.timeline(incident_id),
                  "links": links[-200:], "linked": len(links), "broadcasts": broadcasts,
                  "tasks": await desk.tasks.of(incident_id), "metrics": metrics,
                  "compensation": await desk.compensation.of(incident_id),
                  "members": desk.config.tasks.members})  # fmt: skip


@requires("supervisor", "manage incidents", "仅主管和管理员可管理重大事件")
async def transition(request: web.Request) -> web.Response:
    desk, incident_id = desk_of(request), path_id(request)
    body = decode(await read_body(request, BODY_LIMIT), TransitionIn)
    try:
        incident = await desk.store.move(incident_id, body.to, agent_of(request).name, body.note.strip())
    except TransitionRefused as exc:
        response = json_error(409, exc.message, exc.zh, exc.field)
        return json_response({**json.loads(response.text or "{}"), "allowed": list(exc.allowed)}, status=409)
    await desk.changed(incident, f"stage:{incident.stage}")
    if incident.stage == "closed":
        desk.closed(incident)
    return json_response(await view(desk, incident))


@requires("supervisor", "manage incidents", "仅主管和管理员可管理重大事件")
async def update(request: web.Request) -> web.Response:
    desk, incident_id = desk_of(request), path_id(request)
    body = decode(await read_body(request, BODY_LIMIT), UpdateIn)
    current = await desk.store.get(incident_id)
    changes: dict[str, Any] = {}
    for name in ("eta", "severity", "owner", "title"):
        value = getattr(body, name)
        if value is not UNSET:
            changes[name] = value.strip() if isinstance(value, str) else value
    if body.districts is not UNSET:
        changes["districts"] = _districts(body.districts)
    if body.services is not UNSET:
        changes["services"] = tuple(dict.fromkeys(body.services))
    notice = dict(current.notice)
    for lang, value in (("zh", body.notice_zh), ("en", body.notice_en)):
        if value is not UNSET:
            notice[lang] = value.strip()
    if notice != current.notice:
        changes["notice"] = {k: v for k, v in notice.items() if v}
    if not changes and not body.note.strip():
        raise BadRequest("nothing to change", zh="没有需要修改的内容")
    if not current.is_open:
        raise Conflict(f"incident {incident_id} is {current.stage}; its record no longer changes",
                       zh="事件已关闭，记录不能再修改", field="id")  # fmt: skip
    incident = await desk.store.update(incident_id, agent_of(request).name, changes, body.note.strip())
    await desk.changed(incident, "updated")
    return json_response(await view(desk, incident))


@requires("supervisor", "manage incidents", "仅主管和管理员可管理重大事件")
async def add_note(request: web.Request) -> web.Response:
    desk, incident_id = desk_of(request), path_id(request)
    body = decode(await read_body(request, BODY_LIMIT), NoteIn)
    text, name = body.text.strip(), agent_of(request).name
    if not text:
        raise BadRequest("'text' must not be empty", zh="内容不能为空", field="text")
    if body.publish is None:
        return json_response({"entry": await desk.store.note(incident_id, name, text)})
    incident = await desk.store.get(incident_id)  # a status update pushed to the public notice in one step
    if len(text) > 600:
        raise BadRequest("a notice is at most 600 characters", zh="客户通知最多600字", field="text")
    if not incident.is_open:
        raise Conflict(f"incident {incident_id} is {incident.stage}", zh="事件已关闭", field="id")
    incident = await desk.store.update(incident_id, name, {"notice": {**incident.notice, body.publish: text}},
                                       note=f"published as the {body.publish} notice")  # fmt: skip
    await desk.changed(incident, "updated")
    return json_response({"incident": await view(desk, incident)})


@requires("supervisor", "decide on incident proposals", "仅主管和管理员可处理事件预警")
async def decide(request: web.Request) -> web.Response:
    desk, proposal_id, action = desk_of(request), path_id(request), request.match_info["action"]
    name = agent_of(request).name
    proposal = await desk.detector.decide(proposal_id, "accepted" if action == "accept" else "dismissed", name)
    if proposal is None:
        if await desk.detector.proposal(proposal_id) is None:
            raise NotFound(f"no proposal {proposal_id!r}", zh="没有该预警", field="id")
        raise Conflict("this proposal was decided already", zh="该预警已被处理", field="id")
    if action == "dismiss":
        await desk.publish_event({"type": "incident_proposal_decided", "proposal": proposal})
        return json_response({"proposal": proposal})
    evidence = (f"{proposal['count']:.0f} network messages in {proposal['window_minutes']} min, "
                f"baseline {proposal['baseline']}")  # fmt: skip
    incident = await desk.store.create(
        title=f"{proposal['district']}: network complaints surge", category="network_fault", severity=3,
        districts=(proposal["district"],), services=(), owner=name, by=name, source="detector",
        proposal=proposal_id, note=evidence,
    )  # fmt: skip
    proposal = await desk.detector.set_incident(proposal_id, incident.id)
    await desk.changed(incident, "created")
    await desk.publish_event({"type": "incident_proposal_decided", "proposal": proposal})
    return json_response({"proposal": proposal, "incident": await view(desk, incident)}, status=201)


@requires("supervisor", "run the detector", "仅主管和管理员可运行事件预警")
async def detect(request: web.Request) -> web.Response:
    return json_response({"proposals": await desk_of(request).detect()})


def routes() -> list[web.RouteDef]:
    """Relative to ``/api`` (behind the agents' sign-in, ``handoff.api.api_app``)."""
    return [
        web.get("/incidents", list_incidents),
        web.post("/incidents", create),
        web.post("/incidents/detect", detect),
        web.post("/incidents/proposals/{id}/{action:accept|dismiss}", decide),
        web.get("/incidents/{id}", detail),
        web.post("/incidents/{id}/transition", transition),
        web.post("/incidents/{id}/update", update),
        web.post("/incidents/{id}/notes", add_note),
        *api_work.routes(),
    ]


def page_routes() -> list[web.RouteDef]:
    return [web.get("/incidents", page("pages/incidents.html"))]
