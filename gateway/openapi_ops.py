"""What each HTTP route of the gateway means, for the OpenAPI document (``gateway/openapi.py``).

One entry per ``(METHOD, path)`` in ``operations()``; a new route needs only an entry here (``tests/gateway/
test_openapi_contract.py`` fails until it has one, and fails on an entry no application registers). Request
bodies are the ``msgspec.Struct`` the handler decodes — the schema is generated from it; who may call an ``/api``
route is read from its handler's ``@requires``/``@public`` mark, not written here.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from typing import Any

import msgspec

JSON = "application/json"
OBJ: dict[str, Any] = {"type": "object"}
TEXT: dict[str, Any] = {"type": "string"}

TAGS = {
    "customer": ("Customer channels: REST, WebSocket, widget, Socket.IO", "客户渠道"),
    "nlu": ("Natural-language understanding (Rasa-compatible)", "自然语言理解"),
    "ops": ("Health, metrics and this document", "运维与文档"),
    "agent": ("Agent sign-in and presence", "坐席登录与状态"),
    "chats": ("Chats, queue, callbacks and history", "会话、队列、回呼与历史"),
    "cases": ("Complaint cases", "投诉工单"),
    "reports": ("Service quality reports", "服务质量报表"),
    "incidents": ("Major incidents", "重大事件"),
    "nlu-review": ("NLU learning loop", "NLU 审核与重训"),
    "outbound": ("Outboxes and SMS broadcasts", "发送队列与短信群发"),
    "privacy": ("Privacy: data-subject requests, consent, audit trail", "隐私：数据主体请求、授权与审计"),
    "pages": ("HTML pages", "页面"),
    "webhooks": ("Channel webhooks (enabled channels only)", "渠道回调（仅已启用渠道）"),
}
ERROR_STATUSES = {
    400: "Bad request: the field at fault is named · 请求无效",
    401: "Not signed in · 未登录",
    403: "Forbidden: a role, a CSRF token, an Origin or a signature is missing or wrong · 无权访问",
    404: "Not found · 未找到",
    408: "The body did not arrive within server.body_timeout · 请求超时",
    409: "Conflict with the current state · 状态冲突",
    413: "Body over the size limit · 请求内容过大",
    415: "Body is not JSON · 不支持的内容类型",
    429: "Too many requests; see Retry-After · 请求过于频繁",
    503: "The gateway's store (Redis) or a needed service is unavailable; retry after Retry-After · 服务暂时不可用",
}


@dataclass(frozen=True, slots=True)
class Param:
    """A query (or header) parameter: a string unless ``schema`` says otherwise."""

    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: dict(TEXT))
    where: str = "query"
    required: bool = False

    def to_openapi(self) -> dict[str, Any]:
        return {"name": self.name, "in": self.where, "required": self.required, "description": self.description,
                "schema": self.schema}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Op:
    """One operation. ``body``/``body_alt``: the Struct(s) the handler decodes (JSON); ``raw_body``: a body that is
    not a Struct (form, XML) as ``{media type: schema}``; ``ok``: the success status, its media type and schema;
    ``errors``: error statuses beyond those every call may get; ``more``: other documented answers;
    ``security``: alternatives of security scheme names, outside ``/api`` (``/api`` reads the handler's role)."""

    tag: str
    summary: str
    summary_zh: str
    description: str = ""
    body: str | None = None  # "module:Struct"
    body_alt: tuple[str, ...] = ()
    raw_body: dict[str, dict[str, Any]] | None = None
    query: tuple[Param, ...] = ()
    ok: int = 200
    ok_media: str = JSON
    ok_schema: dict[str, Any] = field(default_factory=lambda: dict(OBJ))
    ok_description: str = "OK"
    errors: tuple[int, ...] = ()
    more: dict[str, dict[str, Any]] = field(default_factory=dict)
    security: tuple[tuple[str, ...], ...] = ()
    operation_id: str = ""

    def bodies(self) -> tuple[type, ...]:
        return tuple(_struct(name) for name in ((self.body,) if self.body else ()) + self.body_alt)

    def request_body(self, names: dict[type, dict[str, Any]]) -> dict[str, Any] | None:
        if self.raw_body is not None:
            return {"required": True, "content": {m: {"schema": s} for m, s in self.raw_body.items()}}
        schemas = [names[t] for t in self.bodies()]
        if not schemas:
            return None
        schema = schemas[0] if len(schemas) == 1 else {"oneOf": schemas}
        return {"required": True, "content": {JSON: {"schema": schema}}}

    def responses(self) -> dict[str, Any]:
        out: dict[str, Any] = {str(self.ok): _answer(self.ok_description, self.ok_media, self.ok_schema)}
        statuses = set(self.errors) | {503}
        if self.bodies() or self.raw_body is not None:
            statuses |= {400, 408, 413}
        for status in sorted(statuses):
            out.setdefault(str(status), {"$ref": f"#/components/responses/{status}"})
        out.update(self.more)
        return out


def _struct(name: str) -> type:
    """``"module:Struct"`` → the Struct (``ValueError`` naming the entry when it is not one)."""
    module, _, attr = name.partition(":")
    found = getattr(importlib.import_module(module), attr, None)
    if not (isinstance(found, type) and issubclass(found, msgspec.Struct)):
        raise ValueError(f"{name!r} is not a msgspec.Struct")
    return found


def _answer(description: str, media: str | None, schema: dict[str, Any]) -> dict[str, Any]:
    if media is None:
        return {"description": description}
    return {"description": description, "content": {media: {"schema": schema}}}


def obj(required: tuple[str, ...] = (), **props: dict[str, Any]) -> dict[str, Any]:
    """A JSON object with these properties (others allowed)."""
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    return out


def arr(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def keys(*required: str) -> dict[str, Any]:
    """A JSON object that always has these keys (their values are not described further)."""
    return {"type": "object", "required": list(required)}


def one_of(values: Any) -> dict[str, Any]:
    """A string that is one of ``values`` (the constants the handler checks against)."""
    return {"type": "string", "enum": list(values)}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


STR, NUM, INT, BOOL = dict(TEXT), {"type": "number"}, {"type": "integer"}, {"type": "boolean"}
LANG = Param("lang", "Language of the page or labels · 页面语言", {"type": "string", "enum": ["zh", "en"]})
DATE = {"type": "string", "description": "YYYY-MM-DD"}
HTML = {"type": "string", "contentMediaType": "text/html"}
BUTTON = obj(("title", "payload"), title=STR, payload=STR)
REST_REPLY = obj(("recipient_id",), recipient_id=STR, text=STR, buttons=arr(BUTTON),
                 custom={"type": "object", "description": "`{\"session\"}` after a one-time-code binding"})  # fmt: skip
PARSE = obj(("text", "intent", "entities"), text=STR, intent=obj(("name", "confidence"), name=nullable(STR),
            confidence=NUM), entities=arr(OBJ), intent_ranking=arr(OBJ), complaint_type=nullable(STR),
            lang=nullable(STR))  # fmt: skip
AGENT_SIGNED_IN = obj(("agent", "csrf"), agent=OBJ, csrf=STR)
# Engine.IO answers a request it cannot use itself, in plain text (not the gateway's JSON error)
EIO_ERROR = {
    "400": _answer("Engine.IO refused the request (protocol, transport or session) · 协议错误", "text/plain", STR)
}
AUDIT_FILTERS = (
    Param("who", "An agent"),
    Param("what", "An event kind"),
    Param("customer", "A customer's full number (hashed here; the trail holds none)"),
    Param("since", "From (YYYY-MM-DD, UTC, or epoch seconds)"),
    Param("until", "To, inclusive (YYYY-MM-DD or epoch seconds)"),
)
WS_UPGRADE = {"101": {"description": "Switching Protocols: the WebSocket is open · 已建立 WebSocket"}}


def page(summary: str, zh: str, *more: Param) -> Op:
    return Op("pages", summary, zh, query=(LANG, *more), ok_media="text/html", ok_schema=HTML)


def supervisor_report_query() -> tuple[Param, ...]:
    return (
        Param("from", "First day (default: 29 days before `to`)", DATE),
        Param("to", "Last day (default today)", DATE),
        Param("group_by", "Grouping (period, agent, skill, channel…; the report's default)"),
        Param("format", "json (default) or csv", {"type": "string", "enum": ["json", "csv"]}),
        Param("table", "csv: which table of the report"),
        Param("agent", "quality: one agent's inspections"),
        Param("limit", "quality: inspections at most (1–1000)", {"type": "integer", "minimum": 1, "maximum": 1000}),
        Param("agents", "staffing: agents on duty", {"type": "integer", "minimum": 0, "maximum": 10000}),
    )


@functools.cache
def path_patterns() -> tuple[tuple[str, dict[str, str]], ...]:
    """What each path parameter must look like, from the regular expressions the handlers check ids with
    (a path prefix and its parameters; the first prefix that matches wins)."""
    from handoff.api_history import EPISODE
    from handoff.cases.api import TICKET
    from handoff.incidents.web import ID as INCIDENT
    from handoff.store import ID as CHAT

    def anchored(pattern: str) -> str:
        return f"^(?:{pattern})$"

    return (
        ("/api/cases/", {"ticket": anchored(TICKET.pattern)}),
        ("/api/incidents/", {"id": anchored(INCIDENT.pattern), "task": anchored(INCIDENT.pattern)}),
        ("/api/nlu/review/", {"id": anchored("[0-9a-f]{16}")}),  # gateway/nlu_review_api.py ``decide``
        ("/api/history/", {"episode": anchored(EPISODE.pattern)}),
        ("/api/", {"id": anchored(CHAT.pattern)}),
    )


def path_pattern(path: str, name: str) -> str | None:
    for prefix, patterns in path_patterns():
        if path.startswith(prefix):
            return patterns.get(name)
    return None


@functools.cache
def operations() -> dict[tuple[str, str], Op]:
    """Every documented operation by ``(METHOD, path)``. Bodies are named ``"module:Struct"`` and imported when the
    document is built (``Op.bodies``): a module is only imported when one of its routes is registered."""
    from handoff.cases import config as cases_config
    from handoff.cases import model as cases_model

    return {
        # ---- customers ----------------------------------------------------------------------------------------
        ("POST", "/webhooks/rest/webhook"): Op(
            "customer",
            "Send a customer message (Rasa REST channel)",
            "发送客户消息（Rasa REST 通道）",
            "One customer turn: the bot's (or an agent's queued) replies come back in the answer, Rasa's shape. "
            "`metadata.token` (a customer JWT) or a binding session (`metadata.session`, `X-Chat-Session`, cookie) "
            "carries the customer's identity; after a one-time-code binding the answer ends with `custom.session`.",
            body="gateway.channels.webchat:RestBody",
            ok_schema=arr(REST_REPLY),
            errors=(401, 403, 429),  # 401: a customer token that does not verify; 429: the sender over its rate
        ),
        ("GET", "/ws/chat"): Op(
            "customer",
            "The web chat's WebSocket",
            "网页聊天 WebSocket",
            'Frames: `{"type": "message", "text", "client_id"?}`, `typing`, `lang`; the server sends replies, '
            "agent messages and queue positions; `last_seq` replays what was missed.",
            query=(
                Param("token", "A customer JWT (optional)"),
                Param("visitor_id", "A visitor id this server signed"),
                Param("last_seq", "Replay frames after this sequence number", {"type": "integer", "minimum": 0}),
            ),
            ok=101,
            ok_media=None,
            ok_description="Switching Protocols · 已建立 WebSocket",
            errors=(400, 401, 403),
        ),
        ("GET", "/"): page(
            "The customer chat page (shown by widget.js in an iframe)",
            "客户聊天页面",
            Param("token", "A customer JWT (optional)"),
        ),
        ("GET", "/widget.js"): Op(
            "customer",
            "The embeddable chat widget's script",
            "可嵌入的聊天插件脚本",
            ok_media="application/javascript",
            ok_schema=STR,
        ),
        ("GET", "/socket.io/"): Op(
            "customer",
            "Socket.IO (rasa-webchat): Engine.IO polling or WebSocket",
            "Socket.IO 通道（rasa-webchat）",
            "Rasa's Socket.IO channel protocol for the `rasa-webchat` widget (events `session_request`, "
            "`user_uttered`, "
            "`bot_uttered`); a client library speaks it, not plain HTTP calls.",
            query=(
                Param("EIO", "Engine.IO protocol version", {"type": "string", "enum": ["3", "4"]}, required=True),
                Param(
                    "transport",
                    "polling or websocket",
                    {"type": "string", "enum": ["polling", "websocket"]},
                    required=True,
                ),
                Param("sid", "The Engine.IO session"),
            ),
            ok_media="text/plain",
            ok_schema=STR,
            errors=(403,),
            more={**WS_UPGRADE, **EIO_ERROR},
        ),
        ("POST", "/socket.io/"): Op(
            "customer",
            "Socket.IO (rasa-webchat): Engine.IO polling upload",
            "Socket.IO 轮询上行",
            query=(
                Param("EIO", "Engine.IO protocol version", {"type": "string", "enum": ["3", "4"]}, required=True),
                Param("transport", "polling", {"type": "string", "enum": ["polling"]}, required=True),
                Param("sid", "The Engine.IO session", required=True),
            ),
            raw_body={"text/plain": STR},
            ok_media="text/plain",
            ok_schema=STR,
            errors=(403,),
            more=EIO_ERROR,
        ),
        ("OPTIONS", "/socket.io/"): Op(
            "customer", "Socket.IO CORS pre-flight", "Socket.IO 跨域预检", ok_media=None, errors=(403,), more=EIO_ERROR
        ),
        # ---- NLU, operations, this document --------------------------------------------------------------------
        ("POST", "/model/parse"): Op(
            "nlu",
            "Understand a text (Rasa's /model/parse)",
            "解析文本（兼容 Rasa /model/parse）",
            "Rasa's answer shape plus `complaint_type`, `lang` and `urgency`.",
            body="gateway.app:ParseBody",
            ok_schema=PARSE,
        ),
        ("GET", "/healthz"): Op(
            "ops",
            "Health: Redis and each channel",
            "健康检查",
            ok_schema=obj(("status",), status=STR, redis=STR, channels={"type": "object", "additionalProperties": STR}),
            more={"503": _answer("Redis is unreachable · Redis 不可用", JSON, obj(("status",), status=STR, redis=STR))},
        ),
        ("GET", "/metrics"): Op(
            "ops",
            "Prometheus metrics",
            "Prometheus 监控指标",
            "Anyone outside production; in production a client in `server.metrics_networks` or with `METRICS_TOKEN`.",
            ok_media="text/plain",
            ok_schema=STR,
            errors=(403,),
            security=((), ("metricsToken",)),
        ),
        ("GET", "/openapi.json"): Op("ops", "This OpenAPI document", "本 OpenAPI 文档", ok_schema=OBJ),
        ("GET", "/docs"): page("This document as a page", "接口文档页面"),
        # ---- pages ---------------------------------------------------------------------------------------------
        ("GET", "/agent"): page("The agent console", "坐席工作台"),
        ("GET", "/cases"): page("The complaint cases page", "投诉工单页面"),
        ("GET", "/reports"): page("The reports page", "报表页面"),
        ("GET", "/incidents"): page("The incidents desk", "重大事件页面"),
        ("GET", "/nlu/review"): page("The NLU review page", "NLU 审核页面"),
        ("GET", "/ws/agent"): Op(
            "agent",
            "The console's WebSocket (queue, chats, supervision as they change)",
            "坐席工作台 WebSocket",
            "Needs the agent session cookie.",
            ok=101,
            ok_media=None,
            ok_description="Switching Protocols",
            errors=(400, 401, 403),
            security=(("agentSession",),),
        ),
        # ---- agents --------------------------------------------------------------------------------------------
        ("POST", "/api/agent/login"): Op(
            "agent",
            "Sign in",
            "坐席登录",
            "Sets the session cookie; the answer's `csrf` goes in `X-CSRF-Token` on every later POST. JSON only (415), "
            "from this gateway's pages (Origin), throttled per account and address (429).",
            body="handoff.auth:LoginIn",
            ok_schema=AGENT_SIGNED_IN,
            errors=(401, 403, 415, 429),
        ),
        ("POST", "/api/agent/logout"): Op("agent", "Sign out", "退出登录"),
        ("GET", "/api/agent/me"): Op(
            "agent",
            "The signed-in agent, CSRF token and status",
            "当前坐席信息",
            ok_schema=obj(("agent", "csrf", "status"), agent=OBJ, csrf=STR, status=STR),
        ),
        ("POST", "/api/agent/status"): Op(
            "agent", "Set presence (online/away)", "设置在线状态", body="handoff.api:StatusIn", ok_schema=keys("status")
        ),
        # ---- chats ---------------------------------------------------------------------------------------------
        ("GET", "/api/queue"): Op("chats", "Waiting and own chats", "排队与我的会话"),
        ("GET", "/api/chats/{id}"): Op("chats", "A chat: transcript, notes, customer", "会话详情", errors=(400, 404)),
        ("POST", "/api/chats/{id}/accept"): Op(
            "chats", "Accept a waiting chat", "接入会话", errors=(404, 409), ok_schema=keys("chat")
        ),
        ("POST", "/api/chats/{id}/messages"): Op(
            "chats",
            "Write to the customer",
            "发送消息",
            body="handoff.api:TextIn",
            errors=(404, 409),
            ok_schema=keys("entry", "sla"),
        ),
        ("POST", "/api/chats/{id}/notes"): Op(
            "chats",
            "Add an internal note",
            "添加内部备注",
            body="handoff.api:TextIn",
            errors=(404, 409),
            ok_schema=keys("entry"),
        ),
        ("POST", "/api/chats/{id}/transfer"): Op(
            "chats",
            "Transfer to an agent or a skill",
            "转接会话",
            body="handoff.api:TransferIn",
            errors=(404, 409),
            ok_schema=keys("chat"),
        ),
        ("POST", "/api/chats/{id}/close"): Op(
            "chats",
            "Close with a disposition",
            "结束会话",
            body="handoff.api:CloseIn",
            errors=(404, 409),
            ok_schema=keys("chat"),
        ),
        ("GET", "/api/chats/{id}/canned"): Op("chats", "Canned replies for this chat", "快捷回复", errors=(400, 404)),
        ("GET", "/api/chats/{id}/history"): Op(
            "chats",
            "The customer's earlier chats",
            "客户历史会话",
            errors=(400, 404),
            ok_schema=keys("chat", "conversations"),
        ),
        ("POST", "/api/chats/{id}/takeover"): Op(
            "chats", "Take over a chat (supervisor)", "主管接管会话", errors=(404, 409), ok_schema=keys("chat")
        ),
        ("GET", "/api/chats/{id}/nlu"): Op(
            "nlu-review",
            "What the NLU understood in a chat",
            "会话的 NLU 识别结果",
            errors=(400, 404),
            ok_schema=keys("messages", "labels"),
        ),
        ("POST", "/api/chats/{id}/relabel"): Op(
            "nlu-review",
            "Correct the intent of a chat message",
            "纠正消息意图",
            body="gateway.nlu_review_api:RelabelIn",
            errors=(404, 409),
            ok_schema=keys("sample"),
        ),
        ("GET", "/api/transfer-targets"): Op("chats", "Agents and skills to transfer to", "可转接的坐席与技能组"),
        ("GET", "/api/callbacks"): Op(
            "chats",
            "Callback requests",
            "回呼任务",
            query=(Param("all", "1/true: include done ones"),),
            ok_schema=keys("callbacks"),
        ),
        ("POST", "/api/callbacks/{id}/{action}"): Op(
            "chats",
            "Answer (reply) or close (done) a callback request",
            "处理回呼任务",
            body="handoff.api:CallbackIn",
            errors=(404, 409),
        ),
        ("GET", "/api/history/{episode}"): Op("chats", "A closed chat", "历史会话详情", errors=(400, 404)),
        ("GET", "/api/history/{episode}/export"): Op(
            "chats",
            "Download a closed chat (numbers masked)",
            "导出历史会话",
            query=(Param("format", "txt (default) or json", {"type": "string", "enum": ["txt", "json"]}), LANG),
            ok_media="text/plain",
            ok_schema=STR,
            errors=(400, 404),
            more={
                "200": {
                    "description": "The transcript · 会话记录",
                    "content": {"text/plain": {"schema": STR}, JSON: {"schema": OBJ}},
                }
            },
        ),
        ("GET", "/api/search"): Op(
            "chats",
            "Search closed chats",
            "搜索历史会话",
            query=(
                Param("phone", "Customer number"),
                Param("ticket", "Ticket"),
                Param("text", "Words in the chat"),
                Param("agent", "Agent"),
                Param("from", "From (YYYY-MM-DD or epoch seconds)"),
                Param("to", "To (YYYY-MM-DD or epoch seconds)"),
            ),
            ok_schema=obj(("results", "more"), results=arr(OBJ), more=BOOL),
            errors=(400,),
        ),
        ("GET", "/api/live"): Op(
            "chats", "Every chat held now, the queue by skill (supervisor)", "实时监控", ok_schema=keys("chats")
        ),
        # ---- cases ---------------------------------------------------------------------------------------------
        ("GET", "/api/cases"): Op(
            "cases",
            "Complaint cases, newest first",
            "投诉工单列表",
            query=(
                Param("status", "A stage", one_of(cases_model.STAGES)),
                Param("type", "A complaint type", one_of(cases_config.TYPES)),
                Param("assignee", "An agent (agents see their own cases only)"),
                Param("severity", "A severity", one_of(cases_config.SEVERITIES)),
            ),
            ok_schema=obj(("cases", "now", "stages"), cases=arr(OBJ), now=NUM, stages=arr(STR)),
            errors=(400,),
        ),
        ("POST", "/api/cases"): Op(
            "cases",
            "Register a complaint",
            "登记投诉",
            body="handoff.cases.api:RegisterIn",
            ok=201,
            more={"200": _answer("Linked to an open case of the customer · 已关联到已有工单", JSON, OBJ)},
            errors=(404, 409),
        ),
        ("GET", "/api/cases/{ticket}"): Op(
            "cases", "A case with its timeline and clocks", "工单详情", errors=(400, 404)
        ),
        ("POST", "/api/cases/{ticket}/transition"): Op(
            "cases",
            "Move a case to another stage",
            "工单流转",
            body="handoff.cases.api:TransitionIn",
            errors=(404, 409),
        ),
        ("POST", "/api/cases/{ticket}/notes"): Op(
            "cases", "Add a note to a case", "工单备注", body="handoff.cases.api:NoteIn", errors=(404,)
        ),
        # ---- reports -------------------------------------------------------------------------------------------
        ("GET", "/api/reports/{name}"): Op(
            "reports",
            "A report: satisfaction, service levels, quality or staffing",
            "服务质量报表",
            query=supervisor_report_query(),
            errors=(400,),
            more={
                "200": {
                    "description": "The report (JSON) or one of its tables (CSV)",
                    "content": {JSON: {"schema": OBJ}, "text/csv": {"schema": STR}},
                }
            },
        ),
        ("GET", "/api/reports/quality/{id}"): Op(
            "reports", "A chat's quality inspection", "质检详情", errors=(400, 404)
        ),
        ("POST", "/api/reports/quality/{id}/override"): Op(
            "reports", "Override a quality score", "调整质检分数", body="handoff.reports.api:OverrideIn", errors=(404,)
        ),
        # ---- incidents -----------------------------------------------------------------------------------------
        ("GET", "/api/incidents"): Op(
            "incidents",
            "Incidents, proposals and departments",
            "重大事件列表",
            ok_schema=keys("incidents", "proposals"),
        ),
        ("POST", "/api/incidents"): Op(
            "incidents",
            "Declare an incident (or an Alertmanager webhook)",
            "登记重大事件（或 Alertmanager 告警）",
            "A supervisor's session (with `X-CSRF-Token`), or the monitoring system's bearer token; an Alertmanager "
            "v4 body opens (or updates) the incident of its alert group.",
            body="handoff.incidents.api:IncidentIn",
            body_alt=("handoff.incidents.api:AlertmanagerIn",),
            ok=201,
            more={"200": _answer("Alertmanager: deduplicated, or nothing to open · 已合并或无需新建", JSON, OBJ)},
            errors=(401, 403, 409, 415),
            security=(("agentSession", "csrfToken"), ("monitoringToken",)),
        ),
        ("POST", "/api/incidents/detect"): Op(
            "incidents", "Run the detector now", "立即运行事件预警", ok_schema=keys("proposals")
        ),
        ("POST", "/api/incidents/proposals/{id}/{action}"): Op(
            "incidents",
            "Accept or dismiss a detector's proposal",
            "处理事件预警",
            ok=200,
            errors=(404, 409),
            more={"201": _answer("Accepted: the incident opened · 已创建事件", JSON, OBJ)},
        ),
        ("GET", "/api/incidents/{id}"): Op(
            "incidents",
            "An incident with its timeline",
            "事件详情",
            errors=(400, 404),
            ok_schema=keys("incident", "timeline"),
        ),
        ("POST", "/api/incidents/{id}/transition"): Op(
            "incidents",
            "Move an incident to another stage",
            "事件流转",
            body="handoff.incidents.api:TransitionIn",
            errors=(404, 409),
        ),
        ("POST", "/api/incidents/{id}/update"): Op(
            "incidents",
            "Change an incident's details",
            "更新事件信息",
            body="handoff.incidents.api:UpdateIn",
            errors=(404, 409),
        ),
        ("POST", "/api/incidents/{id}/notes"): Op(
            "incidents",
            "Add a note (optionally published)",
            "事件备注",
            body="handoff.incidents.api:NoteIn",
            errors=(404, 409),
        ),
        ("POST", "/api/incidents/{id}/broadcasts"): Op(
            "incidents",
            "SMS broadcast of the incident notice",
            "事件短信群发",
            body="handoff.incidents.api_work:BroadcastIn",
            ok=201,
            errors=(404, 409),
            ok_schema=keys("broadcast"),
        ),
        ("POST", "/api/incidents/broadcasts/{id}/{action}"): Op(
            "incidents",
            "Approve or cancel a broadcast awaiting approval",
            "审批事件群发",
            errors=(404, 409),
            ok_schema=keys("broadcast"),
        ),
        ("GET", "/api/incidents/{id}/review"): Op(
            "incidents",
            "The post-incident review report",
            "事件复盘报告",
            query=(Param("format", "json (default), md or html"), LANG),
            errors=(400, 404),
            more={
                "200": {
                    "description": "The review · 复盘报告",
                    "content": {JSON: {"schema": OBJ}, "text/markdown": {"schema": STR}, "text/html": {"schema": HTML}},
                }
            },
        ),
        ("POST", "/api/incidents/{id}/lessons"): Op(
            "incidents",
            "Record lessons learned",
            "记录经验教训",
            body="handoff.incidents.api_work:LessonsIn",
            errors=(404, 409),
        ),
        ("POST", "/api/incidents/{id}/tasks"): Op(
            "incidents",
            "Give a department a task",
            "分派部门任务",
            body="handoff.incidents.api_work:TaskIn",
            ok=201,
            errors=(404, 409),
            ok_schema=keys("task"),
        ),
        ("POST", "/api/incidents/{id}/tasks/{task}/done"): Op(
            "incidents", "Mark a task done", "完成任务", errors=(404, 409), ok_schema=keys("task")
        ),
        # ---- NLU learning loop -------------------------------------------------------------------------------
        ("GET", "/api/nlu/review"): Op(
            "nlu-review",
            "Samples waiting for review",
            "待审核样本",
            query=(Param("lang", "zh or en", {"type": "string", "enum": ["zh", "en"]}),),
            errors=(400,),
            ok_schema=keys("samples", "total", "labels"),
        ),
        ("POST", "/api/nlu/review/{id}"): Op(
            "nlu-review",
            "Decide on a sample",
            "审核样本",
            body="gateway.nlu_review_api:DecisionIn",
            errors=(404, 409),
            ok_schema=keys("id", "action"),
        ),
        ("POST", "/api/nlu/retrain"): Op(
            "nlu-review", "Start retraining", "开始重新训练", ok=202, errors=(409,), ok_schema=keys("job")
        ),
        ("GET", "/api/nlu/retrain"): Op(
            "nlu-review", "The retraining job", "重新训练进度", ok_schema=keys("job", "model")
        ),
        ("POST", "/api/nlu/switch"): Op(
            "nlu-review",
            "Switch to a retrained model",
            "切换模型",
            body="gateway.nlu_review_api:SwitchIn",
            errors=(404, 409),
        ),
        ("GET", "/api/nlu/model"): Op("nlu-review", "The model in use and its candidates", "当前模型"),
        # ---- privacy and audit -------------------------------------------------------------------------------
        ("POST", "/api/privacy/export"): Op(
            "privacy",
            "Export everything held about a customer (a download)",
            "导出客户数据",
            "The number travels in the body, never in a URL; audited.",
            body="gateway.privacy_api:SubjectIn",
            errors=(415,),
        ),
        ("POST", "/api/privacy/delete"): Op(
            "privacy",
            "Erase a customer's data (`confirm: true`)",
            "删除客户数据",
            "Cannot be undone; audited.",
            body="gateway.privacy_api:SubjectIn",
            errors=(415,),
        ),
        ("GET", "/api/privacy/consent"): Op(
            "privacy",
            "A customer's marketing consent per channel",
            "查询营销授权",
            query=(
                Param(
                    "X-Customer-Phone",
                    "The customer's number (a header: never in the URL)",
                    where="header",
                    required=True,
                ),
            ),
            errors=(400,),
        ),
        ("PUT", "/api/privacy/consent"): Op(
            "privacy",
            "Record a marketing-consent decision",
            "记录营销授权",
            body="gateway.privacy_api:ConsentIn",
            errors=(415,),
        ),
        ("GET", "/api/audit"): Op(
            "privacy",
            "The audit trail, newest first",
            "审计日志",
            query=(
                *AUDIT_FILTERS,
                Param("cursor", "The `next` of the previous page"),
                Param(
                    "limit", "Entries per page (1–200, default 50)", {"type": "integer", "minimum": 1, "maximum": 200}
                ),
            ),
            ok_schema=obj(("entries",), entries=arr(OBJ), next=nullable(STR), kinds=arr(STR)),
            errors=(400,),
        ),
        ("GET", "/api/audit/export"): Op(
            "privacy",
            "Export the audit trail (itself audited)",
            "导出审计日志",
            query=(
                Param("format", "csv (default) or json", {"type": "string", "enum": ["csv", "json"]}),
                *AUDIT_FILTERS,
            ),
            errors=(400,),
            more={
                "200": {
                    "description": "The trail · 审计记录",
                    "content": {"text/csv": {"schema": STR}, JSON: {"schema": OBJ}},
                }
            },
        ),
        ("POST", "/api/chats/{id}/reveal"): Op(
            "privacy",
            "Reveal a customer's full number, with a reason (audited)",
            "查看完整号码（留痕）",
            body="handoff.audit_api:RevealIn",
            ok_schema=obj(("phone", "masked"), phone=STR, masked=STR, shown_for=NUM),
            errors=(404,),
        ),
        ("GET", "/audit"): page("The audit trail page", "审计日志页面"),
        ("POST", "/api/incidents/{id}/compensation"): Op(
            "incidents",
            "Offer goodwill (data or credit), granted when the incident closes",
            "设置事件补偿",
            body="handoff.incidents.api_work:CompensationIn",
            ok=201,
            errors=(404, 409),
            ok_schema=keys("compensation"),
        ),
        # ---- outbound ------------------------------------------------------------------------------------------
        ("GET", "/api/outboxes"): Op(
            "outbound", "Each channel's outbox: waiting, retrying, dead", "各渠道发送队列", ok_schema=keys("outboxes")
        ),
        ("POST", "/api/sms/broadcast"): Op(
            "outbound",
            "Send one text to many numbers",
            "短信群发",
            body="gateway.operators:BroadcastIn",
            errors=(409, 415),
            ok_schema=keys("invalid"),
        ),
        # ---- channel webhooks (present when the channel is enabled) ---------------------------------------------
        ("POST", "/channels/sms/webhook"): Op(
            "webhooks",
            "SMS provider (generic HTTP): an incoming text",
            "短信上行（通用 HTTP）",
            body="gateway.channels.sms:SmsIn",
            ok_schema=obj(("status",), status=STR, duplicate=BOOL, replies=INT),
            errors=(403,),
            security=(("smsSignature",),),
        ),
        ("POST", "/channels/sms/status"): Op(
            "webhooks",
            "SMS provider (generic HTTP): a delivery receipt",
            "短信状态回执（通用 HTTP）",
            body="gateway.channels.sms:SmsReceipt",
            ok_schema=obj(("status",), status=STR),
            errors=(403,),
            security=(("smsSignature",),),
        ),
        ("POST", "/channels/sms/twilio"): Op(
            "webhooks",
            "Twilio: an incoming text",
            "Twilio 短信上行",
            raw_body={
                "application/x-www-form-urlencoded": obj(
                    ("From", "Body", "MessageSid"), From=STR, Body=STR, MessageSid=STR
                )
            },
            ok_media="text/xml",
            ok_schema=STR,
            errors=(403,),
            security=(("twilioSignature",),),
        ),
        ("POST", "/channels/sms/twilio/status"): Op(
            "webhooks",
            "Twilio: a delivery receipt",
            "Twilio 状态回执",
            raw_body={
                "application/x-www-form-urlencoded": obj(
                    ("MessageSid", "MessageStatus"), MessageSid=STR, MessageStatus=STR, ErrorCode=STR
                )
            },
            ok=204,
            ok_media=None,
            errors=(403,),
            security=(("twilioSignature",),),
        ),
        ("POST", "/channels/telegram/webhook"): Op(
            "webhooks",
            "Telegram: an update",
            "Telegram 更新",
            body="gateway.channels.telegram:TgUpdate",
            ok_schema=obj(("ok",), ok=BOOL, handled=BOOL, reason=STR),
            errors=(403,),
            security=(("telegramSecret",), ()),
        ),
        ("GET", "/channels/wechat"): Op(
            "webhooks",
            "WeChat: the URL check (echoes echostr)",
            "微信服务器验证",
            query=(
                Param("signature", "SHA-1 signature", required=True),
                Param("timestamp", "", required=True),
                Param("nonce", "", required=True),
                Param("echostr", "", required=True),
            ),
            ok_media="text/plain",
            ok_schema=STR,
            errors=(400, 403),
        ),
        ("POST", "/channels/wechat"): Op(
            "webhooks",
            "WeChat: a push (XML; encrypted in safe mode)",
            "微信消息推送",
            query=(
                Param("signature", "SHA-1 signature", required=True),
                Param("timestamp", "", required=True),
                Param("nonce", "", required=True),
                Param("encrypt_type", "aes (safe mode) or raw"),
                Param("msg_signature", "safe mode: signature over the ciphertext"),
            ),
            raw_body={"text/xml": STR},
            ok_media="text/plain",
            ok_schema=STR,
            errors=(403,),
            more={
                "200": {
                    "description": "A passive reply (XML) or `success` · 被动回复或 success",
                    "content": {"text/xml": {"schema": STR}, "text/plain": {"schema": STR}},
                }
            },
        ),
        ("GET", "/channels/weibo"): Op(
            "webhooks",
            "Weibo: the URL check (echoes echostr)",
            "微博服务器验证",
            query=(
                Param("signature", "SHA-1 signature", required=True),
                Param("timestamp", "", required=True),
                Param("nonce", "", required=True),
                Param("echostr", "", required=True),
            ),
            ok_media="text/plain",
            ok_schema=STR,
            errors=(400, 403),
        ),
        ("POST", "/channels/weibo"): Op(
            "webhooks",
            "Weibo: a push (JSON)",
            "微博消息推送",
            query=(
                Param("signature", "SHA-1 signature", required=True),
                Param("timestamp", "", required=True),
                Param("nonce", "", required=True),
            ),
            body="gateway.channels.weibo:WeiboPush",
            ok_media="application/json",
            ok_schema=OBJ,
            errors=(403,),
            more={
                "200": {
                    "description": "A passive reply (JSON) or empty · 被动回复或空",
                    "content": {JSON: {"schema": OBJ}, "text/plain": {"schema": STR}},
                }
            },
        ),
        ("POST", "/channels/forum/discourse"): Op(
            "webhooks",
            "Discourse: a post event",
            "Discourse 帖子事件",
            body="gateway.channels.forum:DiscourseEvent",
            query=(),
            ok_schema=obj(("status",), status=STR),
            errors=(403,),
            security=(("discourseSignature",),),
        ),
    }
