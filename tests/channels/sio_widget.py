"""A rasa-webchat widget on the wire (python-socketio's client), for the Socket.IO tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import socketio


class Widget:
    """What rasa-webchat does on the wire: session_request on connect, user_uttered with the confirmed id."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.session: str | None = None
        for name in ("session_confirm", "bot_uttered", "error"):
            self.client.on(name, self._handler(name))

    def _handler(self, name: str) -> Callable[[Any], None]:
        return lambda data=None: self.events.put_nowait((name, data))

    async def open(self, session: str | None = None, transport: str = "websocket") -> str:
        await self.client.connect(self.base, socketio_path="/socket.io/", transports=[transport])
        await self.client.emit("session_request", {"session_id": session})
        _, confirmed = await self.expect("session_confirm")
        self.session = confirmed
        return confirmed

    async def say(self, text: Any, **custom: Any) -> None:
        await self.client.emit("user_uttered", {"message": text, "session_id": self.session, "customData": custom})

    async def expect(self, name: str, match: Callable[[Any], bool] = lambda _d: True, timeout: float = 8.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                got, data = await self.events.get()
                if got == name and match(data):
                    return got, data

    async def bot(self, match: Callable[[dict[str, Any]], bool] = lambda _d: True) -> dict[str, Any]:
        return (await self.expect("bot_uttered", match))[1]

    def pending(self) -> list[tuple[str, Any]]:
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    async def close(self) -> None:
        await self.client.disconnect()
