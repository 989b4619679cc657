"""Validation at the edge: every request body is read within a size limit and decoded against one
declared schema (``msgspec.Struct``) in a single pass, so a handler only ever sees well-typed values.

Why msgspec: it decodes and validates JSON in C in one pass (the REST turn is on the hot path), refuses
lone UTF-16 surrogates, non-finite numbers and over-deep nesting by itself, and its errors name the path
of the bad field (``$.metadata.token``), which is what the client needs to see.

What a client gets back is always JSON: 400 (malformed or a field of the wrong type), 413 (too large),
415 (a body that is not JSON where JSON is required), never a 5xx.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from gateway.errors import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from gateway.keys import SETTINGS

T = TypeVar("T")

_DIGITS = re.compile(r"-?[0-9]+")
_MISSING = re.compile(r"Object missing required field `([^`]*)`")
_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
# a field's path in msgspec's words: "$.metadata.token" / "$[0].text"


def field_of(error: msgspec.ValidationError) -> str | None:
    match = _PATH.search(str(error))
    return match.group(1) or None if match else None


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body (signatures are over the raw bytes), refused with 413 past ``limit``. Read to its end: a body
    that arrives in several pieces (a slow link, a proxy that streams) is read whole, not up to its first piece."""
    expected = request.content_length
    if expected is not None and expected > limit:
        raise PayloadTooLarge(f"request body is over the size limit of {limit} bytes")
    if request.content.is_eof():  # all of it has come (a small body comes with its head): nothing to wait for
        body = await _read(request, limit, expected)
    else:  # a client that promises a body and trickles it is cut off (gateway/slow_clients.py)
        settings = request.config_dict.get(SETTINGS)
        seconds = settings.server.body_timeout if settings is not None else 30.0
        try:
            async with asyncio.timeout(seconds):
                body = await _read(request, limit, expected)
        except TimeoutError:
            raise RequestTimeout(f"the request body did not arrive within {seconds:g} s",
                                 zh=f"请求内容未在 {seconds:g} 秒内送达") from None  # fmt: skip
    if len(body) > limit:
        raise PayloadTooLarge(f"request body is over the size limit of {limit} bytes")
    return body


async def _read(request: web.Request, limit: int, expected: int | None) -> bytes:
    body = await request.content.read(limit + 1)
    while len(body) <= limit and (expected is None or len(body) < expected):
        more = await request.content.read(limit + 1 - len(body))
        if not more:  # the end of the body
            break
        body += more
    return body


def require_json(request: web.Request) -> None:
    """415 unless the request says its body is JSON (a cross-site form or ``text/plain`` POST cannot)."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(f"Content-Type must be application/json, not {request.content_type!r}")


def decode(body: bytes | str, type_: type[T], what: str = "request body") -> T:
    """``body`` decoded as ``type_``; 400 naming the field (or the JSON error) otherwise."""
    try:
        return msgspec.json.decode(body, type=type_, strict=True)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc, what) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}", zh="请求内容不是有效的 JSON") from None
    except RecursionError:  # a decoder that has no depth limit of its own
        raise BadRequest(f"{what} is nested too deeply", zh="请求内容嵌套过深") from None


def _validation_error(exc: msgspec.ValidationError, what: str) -> BadRequest:
    text = str(exc)
    at = field_of(exc)
    problem = _PATH.sub("", text)
    missing = _MISSING.match(problem)
    if missing:
        name = f"{at}.{missing.group(1)}" if at else missing.group(1)
        return BadRequest(f"'{name}' is required", zh=f"缺少必填字段 {name}", field=name)
    if at and "matching regex '^[^" in problem:  # a pattern that excludes characters (ids that name Redis keys)
        return BadRequest(f"'{at}' contains characters that are not allowed (control characters, {{ }} or ~)",
                          zh=f"字段 {at} 含有不允许的字符（控制字符、{{ }} 或 ~）", field=at)  # fmt: skip
    if at:
        return BadRequest(f"'{at}': {problem}", zh=f"字段 {at} 无效", field=at)
    if problem.startswith("Expected `object`"):
        return BadRequest(f"{what} must be a JSON object ({problem})", zh="请求内容须为 JSON 对象")
    return BadRequest(f"{what}: {problem}")


async def json_body(request: web.Request, type_: type[T], limit: int) -> T:
    """Read (within ``limit``) and decode the request's body as ``type_``. The body is UTF-8 JSON whatever
    ``charset`` the Content-Type names (RFC 8259), so an unknown charset cannot break decoding."""
    return decode(await read_body(request, limit), type_)


def text(value: Any, name: str, max_len: int | None = None, required: bool = True) -> str:
    """A string from outside JSON (a query parameter, a form field, XML): it must be encodable as UTF-8
    (no lone surrogates), within ``max_len``, and present when ``required``."""
    if value is None or value == "":
        if required:
            raise BadRequest(f"'{name}' is required", field=name)
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string", field=name)
    if not is_utf8(value):
        raise BadRequest(f"'{name}' is not valid Unicode text (a lone surrogate)", field=name)
    if max_len is not None and len(value) > max_len:
        raise BadRequest(f"'{name}' is longer than {max_len} characters", field=name)
    return value


def integer(value: Any, name: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    """An integer field that may come as text (XML, a form): digits only, within [lo, hi]."""
    if isinstance(value, bool):
        raise BadRequest(f"'{name}' must be an integer", field=name)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and 0 < len(value) <= 20 and _DIGITS.fullmatch(value):
        number = int(value)
    else:
        raise BadRequest(f"'{name}' must be an integer", field=name)
    if not lo <= number <= hi:
        raise BadRequest(f"'{name}' must be between {lo} and {hi}", field=name)
    return number


def is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_strings(value: Any, depth: int = 0) -> Any:
    """Raise ``BadRequest`` when a decoded structure (``Any`` parts of a schema) holds a lone surrogate or
    nests deeper than 32; returns it unchanged otherwise."""
    if depth > 32:
        raise BadRequest("request body is nested too deeply")
    if isinstance(value, str):
        if not is_utf8(value):
            raise BadRequest("request body holds text that is not valid Unicode (a lone surrogate)")
    elif isinstance(value, dict):
        for k, v in value.items():
            clean_strings(k, depth + 1)
            clean_strings(v, depth + 1)
    elif isinstance(value, list | tuple):
        for v in value:
            clean_strings(v, depth + 1)
    return value
