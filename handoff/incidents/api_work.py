"""The incidents' working endpoints (under ``/api``, supervisors): the SMS broadcast of the notice, the
departments' tasks, the review and its lessons. Their routes are part of ``handoff.incidents.api.routes()``."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from aiohttp import web
from msgspec import Meta

from gateway.edge import decode, read_body
from gateway.errors import BadRequest, Conflict, Unavailable
from handoff.auth import BODY_LIMIT, agent_of, requires
from handoff.incidents.broadcast import describe
from handoff.incidents.review import markdown, review
from handoff.incidents.web import ID, desk_of, json_response, path_id, view

Eta = Annotated[float, Meta(ge=0, le=4102444800)]  # epoch seconds, before 2100


class BroadcastIn(msgspec.Struct, forbid_unknown_fields=True):
    numbers: Annotated[list[Annotated[str, Meta(max_length=32)]], Meta(min_length=1, max_length=50_000)]
    lang: Literal["zh", "en"] = "zh"
    text: Annotated[str, Meta(max_length=600)] = ""  # empty: the incident's notice, as SMS


class TaskIn(msgspec.Struct, forbid_unknown_fields=True):
    department: Annotated[str, Meta(min_length=1, max_length=64)]
    title: Annotated[str, Meta(min_length=1, max_length=300)]
    deadline: Eta


class LessonsIn(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, Meta(max_length=20_000)]


@requires("supervisor", "send incident broadcasts", "仅主管和管理员可群发事件通知")
async def broadcast(request: web.Request) -> web.Response:
    """``POST /api/incidents/{id}/broadcasts {"numbers", "lang"?, "text"?}`` → 201 the broadcast (``sending``, or
    ``awaiting_approval`` above the second-approval count); 503 without the SMS channel."""
    desk, incident_id = desk_of(request), path_id(request)
    if desk.broadcasts.texter is None:
        raise Unavailable("the SMS channel is not enabled (sms.enabled)", zh="短信渠道未启用")
    body = decode(await read_body(request, 1024**2), BroadcastIn)
    incident = await desk.store.get(incident_id)
    if not incident.is_open:
        raise Conflict(f"incident {incident_id} is {incident.stage}", zh="事件已关闭，不能再群发通知", field="id")
    text = body.text.strip() or desk.notice_text(incident, body.lang, "sms")
    made = await desk.broadcasts.create(incident_id, body.numbers, text, body.lang, agent_of(request).name)
    await desk.store.note(incident_id, agent_of(request).name,
                          f"broadcast {made['id']}: {made['total']} recipients, {made['state']}")  # fmt: skip
    return json_response({"broadcast": describe(made)}, status=201)


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
    task = await desk.tasks.add(incident_id, body.department, body.title.strip(), body.deadline, name)
    await desk.store.entry(incident_id, name, "task", note=f"{body.department}: {task['title']}", task=task["id"])
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
    """``GET /api/incidents/{id}/review?format=json|md&lang=zh|en``: the review (JSON, or a Markdown download)."""
    desk, incident_id = desk_of(request), path_id(request)
    fmt, lang = request.query.get("format", "json"), request.query.get("lang", "zh")
    if fmt not in ("json", "md") or lang not in ("zh", "en"):
        bad = "format" if fmt not in ("json", "md") else "lang"
        raise BadRequest(f"'{bad}' must be json or md / zh or en", zh="参数取值无效", field=bad)
    await desk.flush_stats()
    data = await review(desk.store, desk.broadcasts, incident_id, desk.tasks)
    if fmt == "json":
        return json_response(data)
    text = markdown(data, lang, desk.config.broadcast.timezone)
    attachment = {"Content-Disposition": f'attachment; filename="{incident_id}-review-{lang}.md"'}
    return web.Response(text=text, content_type="text/markdown", charset="utf-8", headers=attachment)


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
        web.get("/incidents/{id}/review", review_report),
        web.post("/incidents/{id}/lessons", lessons),
        web.post("/incidents/{id}/tasks", add_task),
        web.post("/incidents/{id}/tasks/{task}/done", task_done),
    ]
