"""Domain errors and the one middleware that turns them into JSON error responses.

Every error a client sees is JSON: ``{"error": <English, names the problem>, "error_zh": <中文>,
"field"?: <the bad field>}``. A Redis outage is a 503 with ``Retry-After`` (the client may retry; nothing
was accepted) — so is a Redis that is up but refuses (full, unable to save, a replica, busy, loading, failing over:
``refusal``) — and anything unexpected a JSON 500 that is logged and counted — never a plain-text page.
"""

from __future__ import annotations

import json
import logging
import re
import time
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
    408: "请求超时",
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


class RequestTimeout(GatewayError):
    status = 408


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

# Redis's error replies that mean "not now": it is up, but refuses the command until an operator or a failover acts.
# For the caller the same as an outage (503, retry later: nothing was accepted); for the operator, what to do.
REFUSALS: dict[str, str] = {
    "OOM": "Redis is full (maxmemory reached): raise maxmemory, or shorten what is kept (retention)",
    "MISCONF": "Redis cannot save to disk (disk full or not writable?) and refuses writes until it can: see its log",
    "READONLY": "the Redis server is a read-only replica: point the gateway at the master",
    "BUSY": "Redis is busy running a slow script (SCRIPT KILL, or wait)",
    "LOADING": "Redis is loading its data after a restart",
    "MASTERDOWN": "the replica lost its master",
    "NOREPLICAS": "Redis has too few replicas to accept writes (min-replicas-to-write)",
    "TRYAGAIN": "a Redis Cluster slot is moving",
    "CLUSTERDOWN": "the Redis Cluster is down or failing over",
}
_REFUSAL_CLASSES: tuple[tuple[type[BaseException], str], ...] = (
    (redis.exceptions.OutOfMemoryError, "OOM"),
    (redis.exceptions.ReadOnlyError, "READONLY"),
    (redis.exceptions.BusyLoadingError, "LOADING"),
    (redis.exceptions.MasterDownError, "MASTERDOWN"),
    (redis.exceptions.TryAgainError, "TRYAGAIN"),
    (redis.exceptions.ClusterDownError, "CLUSTERDOWN"),
)  # fmt: skip (redis-py strips these codes from the message; it keeps the others: "MISCONF …")
# a script's refused call as Redis 6.2 words it: "ERR Error running script (…): @user_script:8: … -OOM command …"
# (redis-py drops the "ERR ")
_IN_SCRIPT = re.compile(r"-([A-Z]+) ")


def refusal(exc: BaseException) -> str | None:
    """The code of a Redis "not now" reply (``REFUSALS``) that ``exc`` carries, from redis-py or the lean
    connection, as a command's reply or a script's refused call; None for anything else."""
    from gateway.fastredis import FastRedisError  # a leaf module; imported here to keep errors.py first in line

    for cls, code in _REFUSAL_CLASSES:
        if isinstance(exc, cls):
            return code
    if not isinstance(exc, redis.exceptions.ResponseError | FastRedisError) or getattr(exc, "lost", False):
        return None
    text = str(exc)
    code = text.partition(" ")[0]
    if code in REFUSALS:
        return code
    found = _IN_SCRIPT.search(text) if text.startswith(("ERR Error running script", "Error running script")) else None
    return found.group(1) if found and found.group(1) in REFUSALS else None


def is_outage(exc: BaseException) -> bool:
    """Redis away or refusing (``refusal``): the request may be retried later, nothing was accepted."""
    from gateway.fastredis import FastRedisError

    if isinstance(exc, OUTAGE):
        return True
    return (isinstance(exc, FastRedisError) and exc.lost) or refusal(exc) is not None


QUIET = 10.0  # seconds between two warnings of the same outage at the same place
_warned: dict[tuple[str, str], tuple[float, int]] = {}  # (where, what) → (when last said, how many since)


def warn_outage(where: str, exc: BaseException) -> None:
    """Log that Redis is away or refusing, once per ``QUIET`` seconds for each place and cause (every request fails
    the same way while it lasts), with the count of the others, and for a refusal what the operator can do."""
    code = refusal(exc)
    what = f"Redis refuses ({code}: {REFUSALS[code]})" if code else f"Redis unavailable ({type(exc).__name__})"
    now = time.monotonic()
    said, since = _warned.get((where, what), (-QUIET, 0))
    if now - said < QUIET:
        _warned[(where, what)] = (said, since + 1)
        return
    _warned[(where, what)] = (now, 0)
    log.warning("%s: %s%s", where, what, f"; {since} more like it in the last {now - said:.0f} s" if since else "")


def log_failure(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """A background worker's failure: Redis away or refusing as a quiet warning (``warn_outage``: it fails the same
    way every second while it lasts), anything else as an error with its traceback on ``logger``."""
    if is_outage(exc):
        warn_outage(what, exc)
    else:
        logger.error("%s", what, exc_info=exc)


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
            resource = request.match_info.route.resource  # its pattern, not the path: no ids in the log
            warn_outage(f"{request.method} {resource.canonical if resource else request.path}", exc)
            return json_error(503, "the gateway's store is unavailable; retry shortly",
                              headers={"Retry-After": "2"})  # fmt: skip
        log.exception("unexpected error on %s %s", request.method, request.path)
        return json_error(500, "internal error")
