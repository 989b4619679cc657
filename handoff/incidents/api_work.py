"""The incidents' working endpoints (under ``/api``, supervisors): the SMS broadcast of the notice, the
departments' tasks, the review and its lessons. Their routes are part of ``handoff.incidents.api.routes()``."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from aiohttp import web
from msgspec import Meta

from bots.bss.base import BSSError
from gateway.edge import decode, read_body
from gateway.errors import BadRequest, Conflict, Unavailable
from handoff.auth import BODY_LIMIT, agent_of, requires
from handoff.incidents.broadcast import describe
from handoff.incidents.review import html, markdown, review
from handoff.incidents.satisfaction import satisfaction
from handoff.incidents.web import ID, desk_of, json_response, path_id, view

Eta = Annotated[float, Meta(ge=0, le=4102444800)]  # epoch seconds, before 2100
CHANNEL_NAMES = {"sms": "短信", "wechat": "微信", "telegram": "Telegram"}


Channel = Literal["sms", "wechat", "telegram"]


class BroadcastIn(msgspec.Struct, forbid_unknown_fields=True):
    """``numbers``: these (SMS only); else the customers the back end lists in the affected districts, on
    ``channels`` (their numbers by SMS, the accounts bound to them on WeChat and Telegram)."""

    numbers: Annotated[list[Annotated[str, Meta(max_length=32)]], Meta(min_length=1, max_length=50_000)] | None = None
    channels: Annotated[list[Channel], Meta(min_length=1, max_length=3)] = msgspec.field(
        default_factory=lambda: ["sms"]
    )
    lang: Literal["zh", "en"] = "zh"
    text: Annotated[str, Meta(max_length=600)] = ""  # empty: the incident's notice, as each channel shows it


class CompensationIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["data", "credit"]  # MB of data, or yuan of credit
    amount: Annotated[float, Meta(gt=0, le=102_400)]
    scope: Literal["linked", "district"] = "linked"


class TaskIn(msgspec.Struct, forbid_unknown_fields=True):
    department: Annotated[str, Meta(min_length=1, max_length=64)]
    title: Annotated[str, Meta(min_length=1, max_length=300)]
    deadline: Eta
    assignee: Annotated[str, Meta(max_length=64)] = ""  # a member of the department (config/incidents.yml)


class LessonsIn(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, Meta(max_length=20_000)]


@requires("supervisor", "send incident broadcasts", "仅主管和管理员可群发事件通知")
async def broadcast(request: web.Request) -> web.Response:
    """``POST /api/incidents/{id}/broadcasts {"numbers"?, "channels"?, "lang"?, "text"?}`` → 201 the broadcast
    (``sending``, or ``awaiting_approval`` above the second-approval count); 503 for a channel not enabled."""
    desk, incident_id = desk_of(request), path_id(request)
    body = decode(await read_body(request, 1024**2), BroadcastIn)
    channels = ["sms"] if body.numbers is not None else list(dict.fromkeys(body.channels))
    senders = desk.broadcasts.senders
    for channel in channels:
        if channel not in senders:
            raise Unavailable(f"the {channel} channel cannot broadcast (not enabled"
                              f"{'; or broadcast.wechat_template_id not set' if channel == 'wechat' else ''})",
                              zh=f"{CHANNEL_NAMES.get(channel, channel)}渠道未启用，不能群发")  # fmt: skip
    incident = await desk.store.get(incident_id)
    if not incident.is_open:
        raise Conflict(f"incident {incident_id} is {incident.stage}", zh="事件已关闭，不能再群发通知", field="id")
    if body.numbers is not None:
        recipients, source = {"sms": body.numbers}, "numbers"
    elif desk.broadcasts.audience is None:
        raise Unavailable("the back end's customer lists are not available here", zh="无法读取后端的客户名单")
    else:
        try:
            recipients, source = await desk.broadcasts.recipients(incident.districts, channels), "districts"
        except BSSError as exc:
            raise Unavailable(f"the back end did not give the districts' customers ({type(exc).__name__})",
                              zh="后端系统未返回受影响区域的客户名单，请稍后再试") from None  # fmt: skip
    if sum(len(v) for v in recipients.values()) > desk.config.broadcast.max_recipients:
        raise BadRequest(f"more than {desk.config.broadcast.max_recipients} recipients", zh="收件人数超过上限",
                         field="numbers")  # fmt: skip
    custom = body.text.strip()
    texts = {c: custom or desk.notice_text(incident, body.lang, c) for c in channels if c != "wechat"}
    if "wechat" in channels:
        texts["wechat"] = desk.wechat_body(incident, body.lang, custom)
    name = agent_of(request).name
    made = await desk.broadcasts.create(incident_id, recipients, texts, body.lang, name, source)
    per = ", ".join(f"{c} {p['total']}" for c, p in made["channels"].items())
    await desk.store.note(incident_id, name, f"broadcast {made['id']}: {made['total']} recipients ({per}), "
                                             f"{made['state']}")  # fmt: skip
    return json_response({"broadcast": describe(made)}, status=201)


@requires("supervisor", "offer goodwill", "仅主管和管理员可设置事件补偿")
async def compensation(request: web.Request) -> web.Response:
    """``POST /api/incidents/{id}/compensation {"kind", "amount", "scope"?}`` → 201: the goodwill offer, granted
    when the incident closes (at once when it is closed); 409 when one was set, or the incident is reviewed."""
    desk, incident_id, name = desk_of(request), path_id(request), agent_of(request).name
    body = decode(await read_body(request, BODY_LIMIT), CompensationIn)
    _ = desk.broadcasts.senders  # (the gateway wires the back end on the first look at the channels)
    if desk.compensation.backend is None:
        raise Unavailable("the back end cannot grant goodwill here", zh="后端未接入，无法发放补偿")
    incident = await desk.store.get(incident_id)
    if incident.stage == "reviewed":
        raise Conflict(f"incident {incident_id} is reviewed", zh="事件已总结，不能再设置补偿", field="id")
    offer = await desk.compensation.offer(incident_id, body.kind, body.amount, body.scope, name)
    unit = "MB" if body.kind == "data" else "CNY"
    await desk.store.entry(incident_id, name, "compensation", note=f"{body.kind} {body.amount:g} {unit} ({body.scope})")
    if incident.stage == "closed":
        desk.spawn_offer(incident_id)
    return json_response({"compensation": offer}, status=201)


@requires("supervisor", "approve incident broadcasts", "仅主管和管理员可审批事件群发")
async def decide_broadcast(request: web.Request) -> web.Response:
    desk, broadcast_id, action = desk_of(request), path_id(request), request.match_info["action"]
    name = agent_of(request).name
    done = await (desk.broadcasts.approve(broadcast_id, name) if action == "approve"
                  else desk.broadcasts.cancel(broadcast_id, name))  # fmt: skip
    await desk.store.note(done["incident"], name, f"broadcast {broadcast_id}: {done['state']}")
    return json_response({"broadcast": describe(done)})


@requires("supervisor", "manage incidents", "仅主管和管理员可管理重大事件")
async def add_task(request: web.Request) -> web.Response:
    """``POST /api/incidents/{id}/tasks {"department", "title", "deadline"}`` → 201 the task."""
    desk, incident_id, name = desk_of(request), path_id(request), agent_of(request).name
    body = decode(await read_body(request, BODY_LIMIT), TaskIn)
    if not (await desk.store.get(incident_id)).is_open:
        raise Conflict(f"incident {incident_id} is closed", zh="事件已关闭", field="id")
    task = await desk.tasks.add(incident_id, body.department, body.title.strip(), body.deadline, name,
                                body.assignee.strip())  # fmt: skip
    who = f" → {task['assignee']}" if task["assignee"] else ""
    await desk.store.entry(incident_id, name, "task", note=f"{body.department}{who}: {task['title']}",
                           task=task["id"])  # fmt: skip
    return json_response({"task": task}, status=201)


@requires("supervisor", "manage incidents", "仅主管和管理员可管理重大事件")
async def task_done(request: web.Request) -> web.Response:
    desk, incident_id, name = desk_of(request), path_id(request), agent_of(request).name
    task_id = request.match_info["task"]
    if not ID.fullmatch(task_id):
        raise BadRequest("'task' is not a valid task id", zh="任务编号格式无效", field="task")
    task = await desk.tasks.done(incident_id, task_id, name)
    await desk.store.entry(incident_id, name, "task_done", note=f"{task['department']}: {task['title']}", task=task_id)
    return json_response({"task": task})


@requires("supervisor", "see incidents", "仅主管和管理员可查看重大事件")
async def review_report(request: web.Request) -> web.Response:
    """``GET /api/incidents/{id}/review?format=json|md|html&lang=zh|en``: the review (JSON, or a Markdown or HTML
    download)."""
    desk, incident_id = desk_of(request), path_id(request)
    fmt, lang = request.query.get("format", "json"), request.query.get("lang", "zh")
    if fmt not in ("json", "md", "html") or lang not in ("zh", "en"):
        bad = "format" if fmt not in ("json", "md", "html") else "lang"
        raise BadRequest(f"'{bad}' must be json, md or html / zh or en", zh="参数取值无效", field=bad)
    await desk.flush_stats()
    incident = await desk.store.get(incident_id)
    affected = {m.decode() for m in await desk.redis.smembers(desk.affected_key(incident_id))}
    affected |= {link.get("conversation", "") for link in (await desk.store.links(incident_id)).values()}
    ended = incident.stage_times.get("closed")
    extra = {
        "compensation": await desk.compensation.of(incident_id),
        "satisfaction": await satisfaction(desk.redis, desk.keys, incident.created_at, ended, affected),
    }
    data = await review(desk.store, desk.broadcasts, incident_id, desk.tasks, extra)
    if fmt == "json":
        return json_response(data)
    text = markdown(data, lang, desk.config.broadcast.timezone)
    if fmt == "html":
        text, kind = html(text, lang), "text/html"
    else:
        kind = "text/markdown"
    attachment = {"Content-Disposition": f'attachment; filename="{incident_id}-review-{lang}.{fmt}"'}
    return web.Response(text=text, content_type=kind, charset="utf-8", headers=attachment)


@requires("supervisor", "manage incidents", "仅主管和管理员可管理重大事件")
async def lessons(request: web.Request) -> web.Response:
    desk, incident_id = desk_of(request), path_id(request)
    text = decode(await read_body(request, BODY_LIMIT), LessonsIn).text.strip()
    incident = await desk.store.set_lessons(incident_id, agent_of(request).name, text)
    return json_response(await view(desk, incident))


def routes() -> list[web.RouteDef]:
    """Relative to ``/api``."""
    return [
        web.post("/incidents/broadcasts/{id}/{action:approve|cancel}", decide_broadcast),
        web.post("/incidents/{id}/broadcasts", broadcast),
        web.post("/incidents/{id}/compensation", compensation),
        web.get("/incidents/{id}/review", review_report),
        web.post("/incidents/{id}/lessons", lessons),
        web.post("/incidents/{id}/tasks", add_task),
        web.post("/incidents/{id}/tasks/{task}/done", task_done),
    ]
