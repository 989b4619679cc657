"""Domain errors and the one middleware that turns them into JSON error responses.

Every error a client sees is JSON: ``{"error": <English, names the problem>, "error_zh": <中文>,
"field"?: <the bad field>}``. A Redis outage is a 503 with ``Retry-After`` (the client may retry; nothing
was accepted), and anything unexpected a JSON 500 that is logged and counted — never a plain-text page.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

import redis.exceptions
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from gateway.metrics import METRICS

log = logging.getLogger(__name__)

# the Chinese text of each status, when an error does not carry its own
ZH = {
    400: "请求无效",
    401: "未通过身份验证",
    403: "无权访问",
    404: "未找到",
    405: "不支持该请求方法",
    409: "状态冲突，请刷新后重试",
    413: "请求内容过大",
    415: "不支持的内容类型",
    422: "请求内容无法处理",
    429: "请求过于频繁，请稍后再试",
    500: "服务器内部错误",
    503: "服务暂时不可用，请稍后重试",
}


class GatewayError(Exception):
    status = 400

    def __init__(self, message: str, *, zh: str = "", field: str | None = None, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.message = message
        self.zh = zh
        self.field = field
        self.headers = headers or {}
        if status is not None:
            self.status = status


class BadRequest(GatewayError):
    status = 400


class Unauthorized(GatewayError):
    status = 401


class Forbidden(GatewayError):
    status = 403


class NotFound(GatewayError):
    status = 404


class Conflict(GatewayError):
    status = 409


class PayloadTooLarge(GatewayError):
    status = 413


class UnsupportedMediaType(GatewayError):
    status = 415


class TooManyRequests(GatewayError):
    status = 429


class Unavailable(GatewayError):
    status = 503


def json_error(status: int, message: str, zh: str = "", field: str | None = None,
               headers: dict[str, str] | None = None) -> web.Response:  # fmt: skip
    fallback = ZH[500] if status >= 500 else ZH[400]
    body: dict[str, object] = {"error": message, "error_zh": zh or ZH.get(status, fallback)}
    if field:
        body["field"] = field
    return web.json_response(body, status=status, headers=headers,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))  # fmt: skip


def error_response(exc: GatewayError) -> web.Response:
    return json_error(exc.status, exc.message, exc.zh, exc.field, exc.headers)


# what a lost or overloaded Redis raises (redis-py, our lean connection, the socket itself)
OUTAGE: tuple[type[BaseException], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                                           redis.exceptions.BusyLoadingError, ConnectionError)  # fmt: skip


def is_outage(exc: BaseException) -> bool:
    from gateway.fastredis import FastRedisError  # a leaf module; imported here to keep errors.py first in line

    if isinstance(exc, OUTAGE):
        return True
    return isinstance(exc, FastRedisError) and exc.lost


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return json_error(exc.status, exc.reason, headers={k: v for k, v in exc.headers.items()
                                                            if k in ("Allow", "Retry-After")})  # fmt: skip
    except RequestPayloadError as exc:  # the body could not be read as sent (a Content-Encoding it is not in)
        return json_error(400, f"request body could not be read: {exc}"[:200], "请求内容无法读取（编码错误）")
    except Exception as exc:
        request.config_dict[METRICS].errors.inc()
        if is_outage(exc):
            log.warning("Redis unavailable on %s %s: %s", request.method, request.path, type(exc).__name__)
            return json_error(503, "the gateway's store is unavailable; retry shortly",
                              headers={"Retry-After": "2"})  # fmt: skip
        log.exception("unexpected error on %s %s", request.method, request.path)
        return json_error(500, "internal error")
