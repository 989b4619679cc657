"""The small contract every channel adapter meets.

An adapter knows its provider's protocol and nothing about intents: it verifies and parses
requests into ``InboundMessage``, hands them to ``on_message`` and delivers ``OutboundMessage``.
Rich content degrades to text in one place (``as_text``) for channels without buttons.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from gateway.models import InboundMessage, OutboundMessage, Turn

OnMessage = Callable[[InboundMessage], Awaitable[Turn]]


class Channel(Protocol):
    name: str

    def routes(self, on_message: OnMessage) -> list[web.AbstractRouteDef]: ...

    async def send(self, message: OutboundMessage) -> None: ...


def as_text(message: OutboundMessage) -> str:
    """Buttons become numbered lines for channels that cannot show them."""
    if not message.buttons:
        return message.text
    options = "\n".join(f"{i}. {b.title}" for i, b in enumerate(message.buttons, 1))
    return f"{message.text}\n{options}"
