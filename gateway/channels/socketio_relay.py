"""Engine.IO across the gateway processes of one host (``--workers N``).

A Socket.IO connection begins with Engine.IO long-polling (a handshake, then several HTTP requests naming the
session's ``sid``, then the upgrade to a WebSocket), and that session lives in the process that made it. With
``SO_REUSEPORT`` the kernel gives each new TCP connection to any worker, so a poll or the upgrade often reaches
another process, which does not know the ``sid``.

Each process therefore listens on a loopback port of its own and puts that port in every ``sid`` it issues,
signed with the server key (``<port>.<random>.<HMAC>``: a client cannot make a process relay to a port of its
choosing). A request naming a ``sid`` of another process is relayed to that process's loopback port: a poll as one
HTTP request, the upgrade as a WebSocket piped both ways. Across hosts, route ``/socket.io/`` by client address.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from gateway import tasks
from gateway.keys import SETTINGS
from gateway.settings import Settings

_SID = re.compile(r"^([0-9]{1,5})\.([A-Za-z0-9_-]{16})\.([0-9a-f]{16})$")
_PASS_UP = ("Origin", "Host", "Content-Type", "User-Agent", "Accept-Language")
_PASS_DOWN = ("Content-Type", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
              "Access-Control-Allow-Methods", "Access-Control-Allow-Headers")  # fmt: skip


class Relay:
    """This process's loopback listener, its signed ``sid``s and the relay to the others'."""

    def __init__(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]], max_size: int) -> None:
        self.handler, self.max_size = handler, max_size
        self.key = b""  # the server key, set from the first request (shared by every process of the deployment)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self, settings: Settings) -> None:
        app = web.Application(client_max_size=self.max_size + 1024)
        app[SETTINGS] = settings  # the origin check of a relayed request (the page's origin, passed up)
        app.router.add_route("*", "/{tail:.*}", self._internal)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._http = aiohttp.ClientSession(auto_decompress=False)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def generate_id(self) -> str:
        raw = secrets.token_urlsafe(12)
        return f"{self.port}.{raw}.{self._mac(f'{self.port}.{raw}')}"

    def owner(self, sid: str | None) -> int | None:
        """The loopback port of the process that issued ``sid``, when it is another process's (else None)."""
        match = _SID.match(sid or "")
        if not match or not self.key:
            return None
        port = int(match.group(1))
        if port == self.port or not hmac.compare_digest(match.group(3), self._mac(f"{port}.{match.group(2)}")):
            return None
        return port

    def _mac(self, value: str) -> str:
        return hmac.new(self.key, f"engineio:{value}".encode(), hashlib.sha256).hexdigest()[:16]

    async def _internal(self, request: web.Request) -> web.StreamResponse:
        """A relayed request: only ever one naming a ``sid`` (a handshake is made by the process a client met)."""
        if "sid" not in request.query:
            return web.Response(status=400, text="relay: a sid is required")
        return await self.handler(request)

    async def forward(self, request: web.Request, port: int) -> web.StreamResponse:
        assert self._http is not None
        url = f"http://127.0.0.1:{port}{request.path_qs}"
        headers = {h: request.headers[h] for h in _PASS_UP if h in request.headers}
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._pipe(request, url, headers)
        body = await request.read()
        try:
            async with self._http.request(request.method, url, data=body, headers=headers) as upstream:
                data = await upstream.read()
                down = {h: upstream.headers[h] for h in _PASS_DOWN if h in upstream.headers}
                return web.Response(body=data, status=upstream.status, headers=down)
        except aiohttp.ClientError:  # that process is gone: the client starts a new connection
            return web.Response(status=400, text="Invalid session")

    async def _pipe(self, request: web.Request, url: str, headers: dict[str, str]) -> web.StreamResponse:
        assert self._http is not None
        headers.pop("Host", None)
        try:
            upstream = await self._http.ws_connect(url, headers=headers, max_msg_size=self.max_size, heartbeat=None)
        except (aiohttp.ClientError, aiohttp.WSServerHandshakeError):
            return web.Response(status=400, text="Invalid session")
        ws = web.WebSocketResponse(max_msg_size=self.max_size)
        await ws.prepare(request)

        async def pump(source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                       sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:  # fmt: skip
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):  # one side gone: the pipe's normal end
                async for msg in source:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        await sink.send_str(msg.data)
                    elif msg.type == aiohttp.WSMsgType.BINARY:
                        await sink.send_bytes(msg.data)
                    else:
                        break

        pumps = [asyncio.create_task(pump(ws, upstream)), asyncio.create_task(pump(upstream, ws))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await asyncio.gather(*(tasks.stop(task) for task in pumps))
            await upstream.close()
            await ws.close()
        return ws
