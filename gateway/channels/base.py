"""The small contract every channel adapter meets.

An adapter knows its provider's protocol and nothing about intents: it verifies and parses
requests into ``InboundMessage``, hands them to ``on_message`` and delivers ``OutboundMessage``.
Rich content degrades to text in one place (``as_text``) for channels without buttons.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from bots.engine import Ctx
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


# ---- commands any channel may use (``InboundMessage.metadata["command"]``) ------------------------------
async def cmd_welcome(ctx: Ctx) -> None:
    """What the bot can do, with the most asked-for requests as buttons (a first contact, /start)."""
    ctx.say("channel", "welcome", *(ctx.button(i) for i in ("query_balance", "query_data_usage", "query_bill",
                                                            "request_human")))  # fmt: skip


async def cmd_text_only(ctx: Ctx) -> None:
    """A photo, a sticker, a voice message: the text is ``[<kind>]``."""
    ctx.say("channel", "text_only", kind=ctx.text.strip("[]"))


async def cmd_too_long(ctx: Ctx) -> None:
    ctx.say("channel", "too_long")


CHANNEL_COMMANDS = {"channel.welcome": cmd_welcome, "channel.text_only": cmd_text_only,
                    "channel.too_long": cmd_too_long}  # fmt: skip
