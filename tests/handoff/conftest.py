"""Fixtures for the human side: a gateway on a real TCP port, agents logged in with their own
cookie jars (sessions, CSRF), customers on the WebSocket — all over loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from gateway.app import create_app
from gateway.security import mint_customer_token
from handoff.config import load_handoff_config

SECRET = "test-secret-of-at-least-thirty-two-bytes!"


class AgentClient:
    def __init__(self, base: str, name: str, password: str) -> None:
        self.base = base
        self.name = name
        self.password = password
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def login(self) -> dict[str, Any]:
        async with self.session.post(f"{self.base}/api/agent/login",
                                     json={"name": self.name, "password": self.password}) as resp:  # fmt: skip
            body = await resp.json()
            assert resp.status == 200, body
        self.csrf = body["csrf"]
        return body

    async def call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, data = await self.raw(method, path, body)
        assert got == status, (got, data)
        return data

    async def raw(self, method: str, path: str, body: Any = None, csrf: bool = True) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if method == "POST" and csrf else {}
        async with self.session.request(method, f"{self.base}{path}", json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    async def connect(self) -> None:
        self.ws = await self.session.ws_connect(f"{self.base}/ws/agent")
        self._reader = asyncio.create_task(self._read())
        await self.expect(lambda f: f["type"] == "hello")

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await self.frames.put(json.loads(msg.data))

    async def expect(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.frames.get()
                if predicate(frame):
                    return frame

    async def disconnect(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader:
            self._reader.cancel()

    async def close(self) -> None:
        await self.disconnect()
        await self.session.close()


class WebCustomer:
    """A signed-in customer on the web chat WebSocket."""

    def __init__(self, base: str, phone: str | None = "13800138000") -> None:
        self.base = base
        self.visitor = ""  # the server issues it (signed) in its hello; kept for reconnects
        self.token = mint_customer_token(phone, SECRET) if phone else ""
        self.session = aiohttp.ClientSession()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._n = 0

    async def connect(self) -> None:
        query = f"visitor_id={self.visitor}" + (f"&token={self.token}" if self.token else "")
        self.ws = await self.session.ws_connect(f"{self.base}/ws/chat?{query}")
        hello = json.loads((await self.ws.receive()).data)
        assert hello["type"] == "hello"
        self.visitor = hello["visitor_id"]
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await self.frames.put(json.loads(msg.data))

    async def send(self, text: str) -> None:
        assert self.ws is not None
        self._n += 1
        await self.ws.send_json({"type": "message", "text": text, "client_id": f"{self.visitor}-{self._n}"})

    async def expect(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.frames.get()
                if predicate(frame):
                    return frame

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader:
            self._reader.cancel()
        await self.session.close()


@pytest.fixture
def handoff_config() -> Any:
    return load_handoff_config()


@pytest.fixture
def make_gateway(aiohttp_server: Any, make_settings: Any, nlu_engine: Any, handoff_config: Any) -> Any:
    """A gateway process (its own app and port) on the test's Redis and key prefix; ``.base`` is its URL."""

    async def make(config: Any = None, **sections: Any) -> Any:
        webchat = {"token_secret": SECRET, **sections.pop("webchat", {})}
        settings = make_settings(webchat=webchat, **sections)
        server = await aiohttp_server(create_app(settings, nlu=nlu_engine, handoff_config=config or handoff_config))
        server.base = str(server.make_url("")).rstrip("/")
        return server

    return make


@pytest.fixture
async def people() -> AsyncIterator[Callable[..., Any]]:
    made: list[Any] = []

    def make(kind: str, base: str, *args: Any) -> Any:
        obj = AgentClient(base, *args) if kind == "agent" else WebCustomer(base, *args)
        made.append(obj)
        return obj

    yield make
    for obj in made:
        await obj.close()
