"""The small contract every channel adapter meets.

An adapter knows its provider's protocol and nothing about intents: it verifies and parses
requests into ``InboundMessage``, hands them to ``on_message`` and delivers ``OutboundMessage``.
Rich content degrades to text in one place (``as_text``) for channels without buttons.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from aiohttp import web

from bots.engine import Ctx
from gateway.edge import read_body  # noqa: F401  (the adapters' one body reader)
from gateway.metrics import Metrics
from gateway.models import InboundMessage, OutboundMessage, Turn
from gateway.outbox import Job, Outbox, OutboxPolicy, random_id

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


# ---- what provider channels share ------------------------------------------------------------------------
def job_kind(message: OutboundMessage) -> str:
    return "agent" if message.sender == "agent" else "notice" if message.sender == "system" else "message"


async def queue_parts(outbox: Outbox, message: OutboundMessage, parts: list[str], id_: str = "") -> bool:
    """``message`` as one outbox job per part (a platform's size limit); ids ``<id>:<n>`` when split."""
    added = False
    for i, part in enumerate(parts):
        key = f"{id_}:{i}" if id_ and len(parts) > 1 else id_
        job = Job(to=message.recipient_id, text=part, id=key or random_id(), kind=job_kind(message),
                  buttons=[[b.title, b.payload] for b in message.buttons] if i == len(parts) - 1 else [],
                  conversation_id=message.conversation_id)  # fmt: skip
        added = await outbox.put(job) or added
    return added


def make_outbox(redis: aioredis.Redis, prefix: str, channel: str, metrics: Metrics, section: Any,
                interval: float = 0.0, **policy: Any) -> Outbox:  # fmt: skip
    """A channel's outbox from its settings section (``max_per_second``, ``max_attempts``, ``backoff_base``)."""
    return Outbox(redis, prefix, channel, metrics, OutboxPolicy(
        interval=interval, per_second=section.max_per_second, max_attempts=section.max_attempts,
        backoff_base=section.backoff_base, **policy))  # fmt: skip


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
