"""Reports over HTTP, for supervisors:

* ``GET /api/reports/{satisfaction|service_levels|quality|staffing}?from=&to=&group_by=`` — JSON, or one table as
  CSV with ``format=csv`` (``table=`` names it; the report's first table by default);
* ``GET /api/reports/quality/{chat}`` — one inspection with the lines that cost points;
* ``POST /api/reports/quality/{chat}/override`` ``{"score", "reason"}`` — a supervisor's score;
* the page ``/reports`` (signs in with the console's session).

``routes()`` go into the ``/api`` sub-application (``handoff.api.api_app``: sign-in and roles); ``page_routes()``
onto the main application.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
from aiohttp import web

from gateway.edge import json_body
from gateway.errors import BadRequest
from gateway.keys import REDIS, RKEYS
from gateway.pages import page
from handoff.api import path_id
from handoff.auth import BODY_LIMIT, SERVICE, agent_of, requires
from handoff.reports import quality, report
from handoff.reports.config import current


class OverrideIn(msgspec.Struct):
    """``POST /api/reports/quality/{chat}/override``"""

    score: Annotated[int, msgspec.Meta(ge=0, le=100)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


def _json(body: Any) -> web.Response:
    return web.json_response(body, dumps=lambda o: json.dumps(o, ensure_ascii=False))


@requires("supervisor", "see the reports", "仅主管和管理员可查看报表")
async def get_report(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = await report.build(name, request.config_dict[REDIS], request.config_dict[RKEYS], current(), request.query)
    if request.query.get("format", "json") == "json":
        agents = await request.config_dict[SERVICE].agents.all()  # the page names agents as the console does
        body["agent_names"] = {a.name: {"zh": a.display("zh"), "en": a.display("en")} for a in agents}
        return _json(body)
    if request.query["format"] != "csv":
        raise BadRequest("'format' must be json or csv", zh="format 须为 json 或 csv", field="format")
    tables = report.tables(body)
    table = request.query.get("table") or next(iter(tables))
    if table not in tables:
        raise BadRequest(f"'table' must be one of {', '.join(tables)}", zh="没有该表格", field="table")
    filename = f"{name}-{table}-{body['from']}-{body['to']}.csv"
    return web.Response(text=report.to_csv(tables[table]), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})  # fmt: skip


@requires("supervisor", "see quality inspections", "仅主管和管理员可查看质检记录")
async def get_inspection(request: web.Request) -> web.Response:
    found = await quality.inspection(request.config_dict[REDIS], request.config_dict[RKEYS], path_id(request))
    return _json(found)


@requires("supervisor", "override quality scores", "仅主管和管理员可调整质检分数")
async def override(request: web.Request) -> web.Response:
    body = await json_body(request, OverrideIn, BODY_LIMIT)
    found = await quality.override(request.config_dict[REDIS], request.config_dict[RKEYS], path_id(request),
                                   body.score, body.reason, agent_of(request).name)  # fmt: skip
    return _json(found)


def routes() -> list[web.RouteDef]:
    """Relative to ``/api`` (behind the agents' sign-in)."""
    return [
        web.get("/reports/quality/{id}", get_inspection),
        web.post("/reports/quality/{id}/override", override),
        web.get("/reports/{name:satisfaction|service_levels|quality|staffing}", get_report),
    ]


def page_routes() -> list[web.RouteDef]:
    return [web.get("/reports", page("pages/reports.html"))]
