"""The contract between the core and a channel adapter.

An adapter knows its provider's protocol and nothing about intents, flows or queues: it verifies and parses
requests into ``InboundMessage``, hands them to the ``Host`` (the core's side of the contract), answers the
provider, and delivers ``OutboundMessage`` (``push``). It declares what it can do (``Capabilities``) and its
own commands (``metadata["command"]``, answered instead of the bot), typed against ``CommandContext`` — the
part of a bot turn a command may use — so that no adapter imports the bots.

One registry (``gateway/registry.py``) mounts every adapter (``Adapter``: when it is enabled, its routes, how
to build it) and runs its lifecycle; adding a channel is one adapter file, its settings section and one line
there. Rich content degrades to text in one place (``as_text``) for channels without buttons.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import redis.asyncio as aioredis
from aiohttp import web

from gateway.edge import read_body  # noqa: F401  (the adapters' one body reader)
from gateway.metrics import Metrics
from gateway.models import Button, InboundMessage, OutboundMessage, Turn
from gateway.outbox import Job, Outbox, OutboxPolicy, random_id
from gateway.rkeys import Keys
from gateway.settings import Settings


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can do; the core and the bots decide by these, never by a channel's name."""

    push: bool = True  # delivers messages outside a reply (agents' replies, late answers)
    buttons: bool = False  # shows buttons (else they become numbered lines)
    public: bool = False  # what is answered is seen by everyone (a forum): no account data in public
    proven_identity: bool = False  # the sender id is the customer's number, proven by the network (SMS)
    max_chars: int | None = None  # one message's size on the platform
    variant: str = ""  # the templates' variant: "" (rich), "sms", "forum", …


class CommandContext(Protocol):
    """What a channel's command sees of a bot turn (``bots.engine.Ctx`` is one)."""

    sender: str
    text: str
    lang: str
    turn_id: str
    conversation_id: str

    @property
    def intent(self) -> str: ...

    def say(self, name: str, macro: str, *buttons: Button, **args: Any) -> None: ...

    def event(self, kind: str, **data: Any) -> None: ...

    def render(self, name: str, macro: str, **args: Any) -> str: ...

    def button(self, intent: str, payload: str | None = None, title: str | None = None) -> Button: ...


Command = Callable[[CommandContext], Awaitable[None]]
NO_COMMANDS: Mapping[str, Command] = MappingProxyType({})


class Host(Protocol):
    """The core's side of the contract, handed to every adapter."""

    settings: Settings

    @property
    def redis(self) -> aioredis.Redis: ...

    @property
    def keys(self) -> Keys: ...

    @property
    def metrics(self) -> Metrics: ...

    async def handle(self, msg: InboundMessage) -> Turn:
        """Run one customer message through the pipeline (dedupe, order, bot or agent, log)."""
        ...

    def check_text(self, text: object, field: str = "text") -> str:
        """``text`` when it may be handled (a string, not empty, within the limit, valid Unicode); else
        ``BadRequest`` naming ``field``."""
        ...

    def text(self, group: str, key: str, lang: str, channel: str, **values: Any) -> str:
        """A template text (a footer, a notice) in ``lang`` for ``channel``."""
        ...

    async def customer_typing(self, channel: str, sender: str) -> None: ...

    async def for_people(self, text: str) -> bool:
        """On a channel the gateway cannot answer on: is ``text`` for people (a complaint, a request for one)?"""
        ...

    async def note(self, channel: str, sender: str, text: str) -> bool:
        """A note on the conversation's chat with a person, when one is open (False otherwise)."""
        ...

    def outbox(self, channel: str, section: Any, interval: float = 0.0, **policy: Any) -> Outbox:
        """The channel's durable outbound queue (one per channel, shared with whoever sends on it)."""
        ...

    @property
    def intents(self) -> frozenset[str]:
        """The intents the NLU knows (to check a keyword or menu configuration)."""
        ...


class Channel(Protocol):
    """A running adapter."""

    name: str
    capabilities: Capabilities
    commands: Mapping[str, Command]
    outbox: Outbox | None

    def state(self) -> str: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def push(self, message: OutboundMessage) -> Any: ...


@runtime_checkable
class Draining(Protocol):
    """A channel that holds connections (WebSockets) and lets them go when the gateway starts stopping."""

    async def shutdown(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Adapter:
    """A channel module's registration: ``enabled(settings)``, its routes (handlers find the running channel
    under ``key``), ``build(host, settings)`` at start-up. ``prefix`` mounts the routes as a sub-application
    (``/channels/<name>/``); without it they keep their own paths (web chat's Rasa-compatible ones)."""

    name: str
    key: web.AppKey[Any]
    enabled: Callable[[Settings], bool]
    build: Callable[[Host, Settings], Channel]
    routes: Callable[[Settings], list[web.RouteDef]] = field(default=lambda _settings: [])
    prefix: str = ""


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


def make_outbox(redis: aioredis.Redis, keys: Keys | str, channel: str, metrics: Metrics, section: Any,
                interval: float = 0.0, **policy: Any) -> Outbox:  # fmt: skip
    """A channel's outbox from its settings section (``max_per_second``, ``max_attempts``, ``backoff_base``); its
    key names from ``keys`` (a key prefix is taken as ``Keys(prefix)``)."""
    keys = Keys(keys) if isinstance(keys, str) else keys
    return Outbox(redis, keys, channel, metrics, OutboxPolicy(
        interval=interval, per_second=section.max_per_second, max_attempts=section.max_attempts,
        backoff_base=section.backoff_base, **policy))  # fmt: skip


# ---- commands any channel may use (``InboundMessage.metadata["command"]``) ------------------------------
async def cmd_welcome(ctx: CommandContext) -> None:
    """What the bot can do, with the most asked-for requests as buttons (a first contact, /start)."""
    ctx.say("channel", "welcome", *(ctx.button(i) for i in ("query_balance", "query_data_usage", "query_bill",
                                                            "request_human")))  # fmt: skip


async def cmd_text_only(ctx: CommandContext) -> None:
    """A photo, a sticker, a voice message: the text is ``[<kind>]``."""
    ctx.say("channel", "text_only", kind=ctx.text.strip("[]"))


async def cmd_too_long(ctx: CommandContext) -> None:
    ctx.say("channel", "too_long")


CHANNEL_COMMANDS = {"channel.welcome": cmd_welcome, "channel.text_only": cmd_text_only,
                    "channel.too_long": cmd_too_long}  # fmt: skip
