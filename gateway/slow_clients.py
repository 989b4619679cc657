"""Slow clients ("slowloris"): a connection that opens and sends nothing, or sends a request's head a byte at a time,
or promises a body it never sends, holds a socket (a file descriptor) and its handler for as long as it likes —
aiohttp closes an idle connection only after a request on it has completed (its keep-alive timeout). Enough of them
and the gateway can accept no one, nor open a connection to Redis. So, on the server the gateway runs itself:

* a request's head (request line and headers) must arrive whole within ``server.header_timeout`` seconds of its
  first byte — or of the connection's opening, for the first request; else a JSON ``408`` and the connection closed;
* its body within ``server.body_timeout`` of the handler starting to read it (``gateway.edge.read_body``): a JSON
  ``408`` naming the limit.

A load balancer in front (nginx: ``client_header_timeout``, ``client_body_timeout``) does the same before the gateway
sees the connection; these hold where customers reach the gateway directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)


def timeout_response(seconds: float) -> bytes:
    """The raw ``408`` written to a connection whose request head did not arrive in time (no request exists yet to
    answer through aiohttp)."""
    body = json.dumps({"error": f"the request did not arrive within {seconds:g} s",
                       "error_zh": f"请求未在 {seconds:g} 秒内送达"}, ensure_ascii=False).encode()  # fmt: skip
    head = (f"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")  # fmt: skip
    return head.encode() + body


# what the guard reads of aiohttp's connection handler (private: checked here, so that another aiohttp turns the guard
# off with a warning instead of breaking every connection)
_NEEDS = ("_request_count", "_request_in_progress", "_messages", "_payload_parser", "_upgraded")
GUARDED = all(any(name in getattr(k, "__slots__", ()) for k in RequestHandler.__mro__) for name in _NEEDS)


class _Handler(RequestHandler):
    """aiohttp's connection handler, with a clock on each request's head."""

    __slots__ = ("_head_clock", "_head_timeout")

    def __init__(self, *args: Any, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout = head_timeout
        self._head_clock: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_clock = self._loop.call_later(self._head_timeout, self._head_too_slow)  # the first request's

    def data_received(self, data: bytes) -> None:
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads or self._upgraded:  # a whole head arrived (or the socket is a WebSocket now)
            self._stop_clock()
        elif self._head_clock is None and self._idle():  # the first bytes of the next head
            self._head_clock = self._loop.call_later(self._head_timeout, self._head_too_slow)

    def _idle(self) -> bool:
        """No request being handled or waiting to be (bytes now are a new head, not a body)."""
        return not self._request_in_progress and not self._messages and self._payload_parser is None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_clock()
        super().connection_lost(exc)

    def _stop_clock(self) -> None:
        if self._head_clock is not None:
            self._head_clock.cancel()
            self._head_clock = None

    def _head_too_slow(self) -> None:
        self._head_clock = None
        if not self._idle() or self.transport is None or self._upgraded:
            return
        self.transport.write(timeout_response(self._head_timeout))
        self.force_close()


class _Server(web.Server):
    """aiohttp's server (the connection factory) making ``_Handler``s."""

    def __init__(self, *args: Any, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout = head_timeout

    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, head_timeout=self._head_timeout, **self._kwargs)


class Runner(web.AppRunner):
    """``web.AppRunner`` whose connections keep the head timeout."""

    def __init__(self, app: web.Application, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._header_timeout = header_timeout

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        if not GUARDED:
            log.warning("this aiohttp's connection handler is not the one gateway/slow_clients.py knows: request "
                        "heads are not timed (server.header_timeout); bodies still are")  # fmt: skip
            return made
        return _Server(made.request_handler, request_factory=made.request_factory,
                       handler_cancellation=made.handler_cancellation, loop=made._loop,
                       head_timeout=self._header_timeout, **made._kwargs)  # fmt: skip
