"""The operator's own tools that belong to no single channel (supervisors only):

* ``GET /api/outboxes`` — per provider channel, what waits to be sent and what was given up on (the dead list,
  newest first; numbers and texts masked);
* ``POST /api/sms/broadcast`` — a marketing text to a list of numbers, through the SMS channel (opted-out
  numbers skipped, the opt-out footer added).

The channels only send; who may ask them to, and with what, is decided here.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Literal

import msgspec
from aiohttp import web
from msgspec import Meta

from gateway.channels.sms import BROADCAST_MAX_PARTS, MAX_BODY, SMS_CHANNEL, normalise_number
from gateway.edge import decode, read_body, require_json
from gateway.errors import BadRequest, Unavailable
from gateway.keys import CHANNELS, OUTBOXES
from gateway.privacy import mask_phone, mask_text
from gateway.sms_units import segments
from handoff.auth import agent_of, requires

log = logging.getLogger(__name__)


class BroadcastIn(msgspec.Struct):
    """``POST /api/sms/broadcast``."""

    text: Annotated[str, Meta(min_length=1, max_length=2000)]
    numbers: Annotated[list[Annotated[str, Meta(max_length=32)]], Meta(min_length=1, max_length=10_000)]
    lang: Literal["zh", "en"] = "zh"


@requires("supervisor", "see the outboxes", "仅主管和管理员可查看发送队列")
async def outboxes(request: web.Request) -> web.Response:
    out = {}
    for name, outbox in request.config_dict[OUTBOXES].items():
        dead = await outbox.dead()
        recent = [{"to": mask_phone(d["to"]) if d["to"].lstrip("+").isdigit() else d["to"], "kind": d["kind"],
                   "text": mask_text(d["text"])[:200], "error": mask_text(str(d["last_error"])),
                   "tries": d["attempts"], "failed_at": d.get("failed_at")} for d in reversed(dead[-20:])]  # fmt: skip
        out[name] = {"state": request.config_dict[CHANNELS][name](), "waiting": await outbox.depth(),
                     "dead": len(dead), "dead_recent": recent}  # fmt: skip
    return web.json_response({"outboxes": out}, dumps=lambda o: json.dumps(o, ensure_ascii=False))


@requires("supervisor", "send broadcasts", "仅主管和管理员可群发短信")
async def broadcast(request: web.Request) -> web.Response:
    """``{"text", "numbers": [...], "lang"?}`` → how many were queued, skipped (opted out) and invalid."""
    name = agent_of(request).name
    channel = request.config_dict.get(SMS_CHANNEL)
    if channel is None:
        raise Unavailable("the SMS channel is not enabled (sms.enabled)", zh="短信渠道未启用")
    require_json(request)
    data = decode(await read_body(request, MAX_BODY), BroadcastIn)
    text, lang = data.text.strip(), data.lang
    if not text:
        raise BadRequest("'text' is required and must be a non-empty string", field="text")
    if segments(text) > BROADCAST_MAX_PARTS - 1:  # one part kept for the opt-out footer
        raise BadRequest(f"'text' needs {segments(text)} SMS parts; a broadcast may use at most "
                         f"{BROADCAST_MAX_PARTS - 1} (the opt-out footer takes the rest)", field="text",
                         zh=f"群发内容最多{BROADCAST_MAX_PARTS - 1}条短信长度（退订说明占用其余部分）")  # fmt: skip
    valid, invalid = [], 0
    for raw in data.numbers:
        try:
            valid.append(normalise_number(raw, channel.s.country_code))
        except BadRequest:
            invalid += 1
    counts = await channel.broadcast(list(dict.fromkeys(valid)), text, lang)
    log.info("SMS broadcast by %s: %s", name, counts)
    return web.json_response({**counts, "invalid": invalid})


def routes() -> list[web.RouteDef]:
    """Routes of the ``/api`` sub-application (behind the agents' sign-in, ``handoff.api.api_app``)."""
    return [web.get("/outboxes", outboxes), web.post("/sms/broadcast", broadcast)]
