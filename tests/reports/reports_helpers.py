"""Helpers of the reports' tests: times in Beijing and a chat record as the hooks read it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

TZ = dt.timezone(dt.timedelta(hours=8))  # Asia/Shanghai has no daylight saving: a fixed offset reads the same


def at(day: int, hour: int, minute: int = 0, second: float = 0) -> float:
    """A time on November ``day``, 2026, Beijing time."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=TZ).timestamp() + second


@dataclass
class ChatRecord:
    """A chat as the hooks read it (the fields of ``handoff.store.Chat`` they use)."""

    id: str
    channel: str
    log: str
    agent: str | None
    enqueued_at: float
    assigned_at: float | None = None
    first_reply_at: float | None = None
    lang: str = "zh"
    skills: tuple[str, ...] = ("zh", "general")
    complaint_type: str | None = None
    ticket: str | None = None


class Agent:
    """An agent's console over loopback: its own cookie jar (session, CSRF) and, once connected, its WebSocket."""

    def __init__(self, base: str, name: str, password: str) -> None:
        import aiohttp

        self.base, self.name, self.password = base, name, password
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.ws: Any = None

    async def login(self) -> None:
        async with self.session.post(f"{self.base}/api/agent/login",
                                     json={"name": self.name, "password": self.password}) as resp:  # fmt: skip
            body = await resp.json()
            assert resp.status == 200, body
        self.csrf = body["csrf"]

    async def raw(self, method: str, path: str, body: Any = None) -> tuple[int, Any, str]:
        headers = {"X-CSRF-Token": self.csrf} if method == "POST" else {}
        async with self.session.request(method, f"{self.base}{path}", json=body, headers=headers) as resp:
            text = await resp.text()
            data = json.loads(text) if resp.content_type == "application/json" else None
            return resp.status, data, text

    async def call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, data, text = await self.raw(method, path, body)
        assert got == status, (got, text[:500])
        return data

    async def connect(self) -> None:
        self.ws = await self.session.ws_connect(f"{self.base}/ws/agent")

    async def frame(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                data = json.loads(msg.data)
                if data.get("type") == kind:
                    return data

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.session.close()
