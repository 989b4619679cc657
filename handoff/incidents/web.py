"""What the incidents' HTTP modules share: the desk's key on the application, ids from the path, JSON out."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from gateway.errors import BadRequest
from handoff.incidents.desk import Desk
from handoff.incidents.model import Incident

DESK: web.AppKey[Desk] = web.AppKey("incidents_desk")
ID = re.compile(r"[A-Za-z0-9_-]{1,40}")


def desk_of(request: web.Request) -> Desk:
    return request.config_dict[DESK]


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def path_id(request: web.Request) -> str:
    value = request.match_info["id"]
    if not ID.fullmatch(value):
        raise BadRequest("'id' is not a valid incident or proposal id", zh="编号格式无效", field="id")
    return value


async def view(desk: Desk, incident: Incident) -> dict[str, Any]:
    """An incident as the API gives it: the record and its counters (this process's pending ones added first)."""
    await desk.flush_stats()
    return {**incident.to_json(), "stats": await desk.store.stats(incident.id)}
