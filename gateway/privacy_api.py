"""Data-subject requests and marketing consent over the API (``/api`` sub-application, the agents' sign-in):

* ``POST /api/privacy/export`` ``{"phone", "reason"?}`` (admin) — the JSON document of everything held about the
  customer, decrypted (``gateway/subject.py``), as a download;
* ``POST /api/privacy/delete`` ``{"phone", "confirm": true, "reason"?}`` (admin) — erase it; the counts;
* ``GET /api/privacy/consent`` (supervisor) — the customer's consent per channel; the number in the
  ``X-Customer-Phone`` header;
* ``PUT /api/privacy/consent`` ``{"phone", "channel", "granted", "source"?}`` (supervisor) — record a decision.

The number travels in the body or a header, never in a URL (URLs end up in access logs and browser histories).
Every request is written to the audit trail (who, what, the customer's keyed hash, from where).
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta

from gateway import audit, consent, subject, websec
from gateway.edge import decode, read_body, require_json
from gateway.errors import BadRequest
from gateway.keys import REDIS, RKEYS, SETTINGS
from gateway.workers import SHARED_REDIS_ENV
from handoff.auth import agent_of, requires

MAX_BODY = 4096
Phone = Annotated[str, Meta(min_length=3, max_length=40)]
Reason = Annotated[str, Meta(max_length=500)]


class SubjectIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/privacy/export`` and ``/delete``."""

    phone: Phone
    reason: Reason = ""
    confirm: bool = False


class ConsentIn(msgspec.Struct, forbid_unknown_fields=True):
    """``PUT /api/privacy/consent``."""

    phone: Phone
    channel: Annotated[str, Meta(max_length=16)]
    granted: bool
    source: Annotated[str, Meta(max_length=41)] = "console"


def _dumps(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False)


def _number(request: web.Request, raw: str) -> str:
    try:
        return subject.national(raw, request.config_dict[SETTINGS].sms.country_code)
    except ValueError:
        raise BadRequest("'phone' is not a phone number", zh="'phone' 不是有效的手机号码", field="phone") from None


async def _body(request: web.Request, kind: type[Any]) -> Any:
    require_json(request)
    return decode(await read_body(request, MAX_BODY), kind)


async def _gather(request: web.Request, phone: str) -> tuple[subject.Finder, list[subject.Hit]]:
    redis, keys, settings = request.config_dict[REDIS], request.config_dict[RKEYS], request.config_dict[SETTINGS]
    secret = await subject.server_secret(redis, keys, settings.server.secret_key)
    return await subject.gather(redis, keys, phone, settings.sms.country_code, secret)


async def _audit(request: web.Request, what: str, phone: str, reason: str = "", **details: Any) -> None:
    await audit.record(request.config_dict[REDIS], request.config_dict[RKEYS], agent_of(request).name, what, phone,
                       websec.client_key(request), reason, **details)  # fmt: skip


@requires("admin", "export a customer's data", "仅管理员可导出客户数据")
async def export(request: web.Request) -> web.Response:
    data = await _body(request, SubjectIn)
    phone = _number(request, data.phone)
    finder, hits = await _gather(request, phone)
    await _audit(request, "export", phone, data.reason, keys_found=len(hits))
    document = subject.export_document(finder.phone, hits)
    return web.json_response(document, dumps=_dumps, headers={
        "Content-Disposition": 'attachment; filename="subject-export.json"', "Cache-Control": "no-store"})  # fmt: skip


@requires("admin", "erase a customer's data", "仅管理员可删除客户数据")
async def delete(request: web.Request) -> web.Response:
    data = await _body(request, SubjectIn)
    phone = _number(request, data.phone)
    if not data.confirm:
        raise BadRequest("set 'confirm': true to erase the customer's data (it cannot be undone)",
                         zh="删除无法撤销：请在请求中设置 'confirm': true", field="confirm")  # fmt: skip
    finder, hits = await _gather(request, phone)
    settings = request.config_dict[SETTINGS]
    embedded = not settings.redis.url or bool(os.environ.get(SHARED_REDIS_ENV))  # ours, or the supervisor's
    counts = await subject.delete(request.config_dict[REDIS], request.config_dict[RKEYS], finder, hits, embedded)
    await _audit(request, "deletion", phone, data.reason, keys_deleted=counts["keys_deleted"],
                 entries_removed=counts["entries_removed"], cases_anonymised=counts["cases_anonymised"])  # fmt: skip
    return web.json_response(counts, dumps=_dumps)


async def _consent_view(request: web.Request, phone: str) -> dict[str, Any]:
    redis, keys = request.config_dict[REDIS], request.config_dict[RKEYS]
    policy = request.config_dict[SETTINGS].privacy.marketing_default
    records = await consent.read(redis, keys, phone)
    channels = {ch: await consent.may_market(redis, keys, phone, ch, policy) for ch in consent.CHANNELS}
    return {"default": policy, "allowed": channels, "records": records}


@requires("supervisor", "see marketing consent", "仅主管和管理员可查看营销授权")
async def consent_get(request: web.Request) -> web.Response:
    raw = request.headers.get("X-Customer-Phone", "")
    if not raw:
        raise BadRequest("the number goes in the X-Customer-Phone header (never in the URL)",
                         zh="请在 X-Customer-Phone 请求头中提供号码（不要放在网址中）",
                         field="X-Customer-Phone")  # fmt: skip
    return web.json_response(await _consent_view(request, _number(request, raw)), dumps=_dumps)


@requires("supervisor", "change marketing consent", "仅主管和管理员可修改营销授权")
async def consent_put(request: web.Request) -> web.Response:
    data = await _body(request, ConsentIn)
    phone = _number(request, data.phone)
    if data.channel not in consent.CHANNELS:
        raise BadRequest(f"'channel' must be one of {', '.join(consent.CHANNELS)}", zh="'channel' 不是已知渠道",
                         field="channel")  # fmt: skip
    if not consent.valid_source(data.source):
        raise BadRequest("'source' must look like 'console', 'api' or 'sms:TD'", zh="'source' 格式不正确",
                         field="source")  # fmt: skip
    who = agent_of(request).name
    await consent.record(request.config_dict[REDIS], request.config_dict[RKEYS], phone, data.channel, data.granted,
                         data.source, who)  # fmt: skip
    await _audit(request, "consent_change", phone, channel=data.channel, granted=data.granted, source=data.source)
    return web.json_response(await _consent_view(request, phone), dumps=_dumps)


def routes() -> list[web.RouteDef]:
    """Routes of the ``/api`` sub-application."""
    return [
        web.post("/privacy/export", export),
        web.post("/privacy/delete", delete),
        web.get("/privacy/consent", consent_get),
        web.put("/privacy/consent", consent_put),
    ]
