"""The gateway's OpenAPI 3.1 document, built from the routes a created application has registered.

``GET /openapi.json`` is the document, ``GET /docs`` a readable page of it (rendered here, no script: it works
offline and under the pages' strict Content-Security-Policy). What is derived from the code, so it cannot drift:

* the paths and methods — every route of ``app.router`` (sub-applications included; ``HEAD`` beside ``GET`` and
  the static files are not API); a path parameter that aiohttp restricts to alternatives (``{action:reply|done}``)
  becomes an ``enum``;
* who may call an ``/api`` endpoint — the role its handler is marked with (``handoff.auth``: ``@requires``,
  ``@public``), documented as the session security scheme plus ``x-role``, with its 401/403;
* request bodies — JSON Schemas of the ``msgspec.Struct`` each handler decodes (``msgspec.json.schema_components``).

What a route means (summary, parameters, responses) is one entry in ``gateway.openapi_ops.operations()``; a route
without an entry still appears (``x-undocumented``), and ``tests/gateway/test_openapi_contract.py`` fails on it.
Channel webhooks appear only when their channel is enabled: the document describes this gateway as configured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from gateway import openapi_page
from gateway.openapi_ops import ERROR_STATUSES, TAGS, Op, operations, path_pattern
from handoff.auth import COOKIE, DEFAULT, PUBLIC, ROLE_MARK, Guard

VERSION = "0.1.0"
API_PREFIX = "/api/"
SKIPPED_METHODS = frozenset({"HEAD", "*"})
_ALTERNATIVES = re.compile(r"\(\?P<(\w+)>([\w|-]+)\)")
JSON = "application/json"
ROLE_WORDS = {"agent": ("any signed-in agent", "任何已登录坐席"),
              "supervisor": ("supervisors and admins", "主管和管理员"),
              "admin": ("admins", "管理员")}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Route:
    """One registered route as the document names it."""

    method: str
    path: str  # OpenAPI style: ``/api/chats/{id}``
    handler: Any
    enums: dict[str, list[str]]  # path parameters restricted to alternatives


def routes_of(app: web.Application) -> Iterator[Route]:
    """Every API route of ``app`` (its sub-applications included), ``HEAD`` and static files left out."""
    for route in app.router.routes():
        resource = route.resource
        if route.method in SKIPPED_METHODS or resource is None or isinstance(resource, web.StaticResource):
            continue
        info = resource.get_info()
        path = info.get("path") or info.get("formatter") or resource.canonical
        pattern = info.get("pattern")
        enums = {m.group(1): m.group(2).split("|") for m in _ALTERNATIVES.finditer(pattern.pattern)} if pattern else {}
        yield Route(route.method, path or "/", route.handler, {k: v for k, v in enums.items() if len(v) > 1})


def guard_of(route: Route) -> Guard | None:
    """The role an ``/api`` handler requires (``None`` outside ``/api``: those guard themselves, if at all)."""
    if not route.path.startswith(API_PREFIX):
        return None
    return getattr(route.handler, ROLE_MARK, DEFAULT)


# ---- the document ---------------------------------------------------------------------------------------
def document(app: web.Application, title: str = "Telecom customer-service gateway") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s registered routes."""
    ops = operations()
    routes = sorted(routes_of(app), key=lambda r: (r.path, r.method))
    bodies = {t for r in routes if (op := ops.get((r.method, r.path))) for t in op.bodies()}
    names, components = _schemas(sorted(bodies, key=lambda t: (t.__module__, t.__qualname__)))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op = ops.get((route.method, route.path))
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, op, names)
    used = {op.tag for r in routes if (op := ops.get((r.method, r.path)))}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": VERSION,
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [{"name": name, "description": f"{en} · {zh}"} for name, (en, zh) in TAGS.items() if name in used],
        "paths": paths,
        "components": {
            "schemas": {**components, "Error": ERROR_SCHEMA},
            "responses": {
                str(s): {"description": text, "content": {JSON: {"schema": {"$ref": ERROR_REF}}}}
                for s, text in ERROR_STATUSES.items()
            },
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _schemas(types: list[type]) -> tuple[dict[type, dict[str, Any]], dict[str, Any]]:
    """Each body type's schema (a ``$ref`` for a Struct) and the components they reference."""
    if not types:
        return {}, {}
    refs, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    return dict(zip(types, refs, strict=True)), components


def _operation(route: Route, op: Op | None, names: dict[type, dict[str, Any]]) -> dict[str, Any]:
    method, path = route.method, route.path
    params = [_path_param(n, route.enums.get(n), path_pattern(path, n)) for n in re.findall(r"{(\w+)}", path)]
    if op is None:  # a route without an entry: still in the document (the contract test fails on it)
        return {
            "summary": f"{method} {path}",
            "x-undocumented": True,
            **({"parameters": params} if params else {}),
            "responses": {"default": {"description": "Not described yet: gateway/openapi_ops.py has no entry"}},
        }
    out: dict[str, Any] = {"operationId": op.operation_id or _operation_id(method, path), "tags": [op.tag],
                           "summary": op.summary, "x-summary-zh": op.summary_zh}  # fmt: skip
    if op.description:
        out["description"] = op.description
    params += [p.to_openapi() for p in op.query]
    if params:
        out["parameters"] = params
    body = op.request_body(names)
    if body:
        out["requestBody"] = body
    responses = op.responses()
    if "parameters" in out and any(p["in"] == "path" for p in out["parameters"]):
        responses.setdefault("400", {"$ref": "#/components/responses/400"})  # an id of the wrong shape
    if route.enums:
        responses.setdefault("404", {"$ref": "#/components/responses/404"})  # a value outside the alternatives
    guard = guard_of(route)
    if guard is not None and guard.role != PUBLIC:
        out["x-role"] = guard.role
        en, zh = ROLE_WORDS.get(guard.role, (guard.role, guard.role))
        out["description"] = (out.get("description", "") + f"\n\nWho may call it: {en} (需要：{zh}).").strip()
        out["security"] = [{"agentSession": [], "csrfToken": []}] if method != "GET" else [{"agentSession": []}]
        responses.setdefault("401", {"$ref": "#/components/responses/401"})
        responses.setdefault("403", {"$ref": "#/components/responses/403"})
    elif op.security:
        out["security"] = [{name: [] for name in alt} for alt in op.security]
    else:
        out["security"] = []
    out["responses"] = dict(sorted(responses.items()))
    return out


def _path_param(name: str, enum: list[str] | None, pattern: str | None) -> dict[str, Any]:
    schema: dict[str, Any] = (
        {"type": "string", "enum": enum} if enum else {"type": "string", "pattern": pattern or "^[^/]+$"}
    )
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _operation_id(method: str, path: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", path.replace("{", "by_").replace("}", "")) if w]
    return method.lower() + "".join(w[:1].upper() + w[1:] for w in words) if words else method.lower() + "Root"


ERROR_REF = "#/components/schemas/Error"
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "description": "Every error the gateway answers (gateway/errors.py): English and Chinese, and the bad field.",
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "what is wrong, in English"},
        "error_zh": {"type": "string", "description": "the same in Chinese"},
        "field": {"type": "string", "description": "the request field (or header) at fault, when there is one"},
    },
    "required": ["error", "error_zh"],
}
SECURITY_SCHEMES: dict[str, Any] = {
    "agentSession": {
        "type": "apiKey", "in": "cookie", "name": COOKIE,
        "description": "An agent's session: the HttpOnly cookie `POST /api/agent/login` sets (SameSite=Strict). "
                       "Each operation's `x-role` says which role it needs (agent < supervisor < admin).",
    },
    "csrfToken": {
        "type": "apiKey", "in": "header", "name": "X-CSRF-Token",
        "description": "Every state-changing `/api` request repeats the session's CSRF token, which the login "
                       "answer and `GET /api/agent/me` return as `csrf`.",
    },
    "monitoringToken": {
        "type": "http", "scheme": "bearer",
        "description": "The monitoring system's token (incidents config) for `POST /api/incidents`.",
    },
    "metricsToken": {
        "type": "http", "scheme": "bearer",
        "description": "`METRICS_TOKEN`, for `/metrics` in production from outside `server.metrics_networks`.",
    },
    "telegramSecret": {"type": "apiKey", "in": "header", "name": "X-Telegram-Bot-Api-Secret-Token",
                       "description": "`TELEGRAM_WEBHOOK_SECRET`, when set."},
    "smsSignature": {"type": "apiKey", "in": "header", "name": "X-Signature",
                     "description": "Hex HMAC-SHA256 of the raw body with `SMS_WEBHOOK_SECRET`."},
    "twilioSignature": {"type": "apiKey", "in": "header", "name": "X-Twilio-Signature",
                        "description": "Twilio's request signature with `TWILIO_AUTH_TOKEN`."},
    "discourseSignature": {"type": "apiKey", "in": "header", "name": "X-Discourse-Event-Signature",
                           "description": "`sha256=` HMAC of the raw body with `DISCOURSE_WEBHOOK_SECRET`."},
    "platformSignature": {"type": "apiKey", "in": "query", "name": "signature",
                          "description": "WeChat / Weibo: SHA-1 over the token, `timestamp` and `nonce`."},
}  # fmt: skip
DESCRIPTION = """\
Every HTTP API of the gateway: the customer REST channel (Rasa's `/webhooks/rest/webhook`), Rasa-compatible
`/model/parse`, health and metrics, the agents' and supervisors' `/api` (chats, cases, reports, incidents, NLU
review), and the channel webhooks this gateway has enabled.

Errors are JSON everywhere (`Error`: `error` in English, `error_zh` in Chinese, `field` when one is at fault).
`/api` needs an agent session (`agentSession`, from `POST /api/agent/login`) and, for POST, its `X-CSRF-Token`;
`x-role` on an operation names the least role that may call it. A Redis outage answers 503 with `Retry-After`.

网关的全部 HTTP 接口：客户 REST 通道、兼容 Rasa 的 `/model/parse`、健康检查、坐席与主管 `/api`（会话、投诉单、
报表、重大事件、NLU 审核）以及已启用的渠道回调。错误均为 JSON（`error` 英文，`error_zh` 中文）。"""


def dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, indent=1).encode()


# ---- the routes -----------------------------------------------------------------------------------------
def routes() -> list[web.RouteDef]:
    """``GET /openapi.json`` and ``GET /docs``; each ``create_app`` calls this once, so the document is built
    once per application, at first use (the routes are fixed by then)."""
    built: list[tuple[dict[str, Any], bytes]] = []

    def cached(app: web.Application) -> tuple[dict[str, Any], bytes]:
        if not built:
            doc = document(app)
            built.append((doc, dumps(doc)))
        return built[0]

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(body=cached(request.app)[1], content_type=JSON, charset="utf-8")

    async def docs_page(request: web.Request) -> web.Response:
        return web.Response(text=openapi_page.render(request, cached(request.app)[0]), content_type="text/html",
                            headers={"Cache-Control": "no-store"})  # fmt: skip

    return [web.get("/openapi.json", openapi_json), web.get("/docs", docs_page)]
