"""One turn as the flows see it (``Ctx``), what they are given (``Services``) and what a flow is (``Flow``).

Flows import this module; the engine imports the flows; nothing here imports back. The turn carries the
channel's capabilities, never its name, into the bot's policy: ``public`` (anyone may read the answers: no
account data in them, no binding) and ``proven_phone`` (the channel proves the sender's number, as SMS does).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from bots.bss import BSS, Order, Rejected
from bots.identity import Binder
from bots.incidents import IncidentDesk
from bots.ports import Handoff, HandoffRequest, SmsSender
from bots.state import BotState, FlowId, Pending, Slot
from bots.templates import Renderer
from gateway.models import Button
from gateway.privacy import mask_text
from nlu import INTENTS, ParseResult, Ranked
from nlu.entities import Entity


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()
    private: bool = False  # on a public channel: for the customer alone (a private message), never posted


@dataclass(frozen=True, slots=True)
class BotConfig:
    confirm_ttl: int = 120
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class Services:
    bss: BSS
    renderer: Renderer
    handoff: Handoff
    sms: SmsSender
    binder: Binder
    config: BotConfig = field(default_factory=BotConfig)
    incidents: IncidentDesk | None = None  # major incidents (bots/incident_notice.py); None: none are handled


class Ctx:
    """One turn: what the customer said and who they are; flows add replies and change state."""

    def __init__(
        self, svc: Services, *, channel: str, sender: str, conversation_id: str, turn_id: str, text: str,
        result: ParseResult, state: BotState, lang: str, proven_phone: str | None = None,
        bound_phone: str | None = None, public: bool = False,
        new_session: Callable[[], tuple[str, str]] | None = None,
    ) -> None:  # fmt: skip
        self.svc = svc
        self.channel = channel
        self.sender = sender
        self.conversation_id = conversation_id
        self.turn_id = turn_id
        self.text = text
        self.result = result
        self.state = state
        self.lang = lang
        self.proven_phone = proven_phone
        self.bound_phone = bound_phone
        self.public = public
        # the sender is a client-chosen string (REST): a binding goes to a fresh secret session, not to it;
        # ``new_session()`` gives (the secret for the client, the sender name the binding is kept under)
        self.new_session = new_session
        self.issued_session: str | None = None
        self.replies: list[Reply] = []
        self.events: list[dict[str, Any]] = []
        self.handed_over = False
        self.resumed: ParseResult | None = None  # a request the engine routes after this step (``resume``)
        self.tz = ZoneInfo(svc.config.timezone)
        self.now = dt.datetime.now(self.tz)

    # ---- who ------------------------------------------------------------------------------------
    @property
    def phone(self) -> str | None:
        return self.proven_phone or self.bound_phone

    @property
    def can_bind(self) -> bool:
        """A number can be proven here: not in public, and not where the channel proves it already."""
        return not self.public and self.proven_phone is None

    async def need_phone(self, resume: str) -> str | None:
        """The customer's proven number; otherwise start the binding (then resume the intent ``resume``)."""
        if self.phone:
            return self.phone
        if not self.can_bind:
            self.event("needs_account", intent=resume)
            self.say("common", "need_login")
            return None
        entities = {e.entity: e.value for e in self.result.entities if e.entity != "phone"}
        self.say("binding", "ask_phone", purpose=self.svc.renderer.label(resume, self.lang))
        self.ask(FlowId.BINDING, "phone", resume=resume, entities=entities)
        return None

    # ---- what -----------------------------------------------------------------------------------
    @property
    def intent(self) -> str:
        return self.result.intent

    def entity(self, name: str) -> Any:
        for e in self.result.entities:
            if e.entity == name:
                return e.value
        return None

    @functools.cached_property
    def norm(self) -> str:
        return simple(self.text)

    def resume(self, intent: str, entities: Mapping[str, Any]) -> None:
        """Handle the request ``intent`` (with ``entities``) next, as if the customer had just made it."""
        self.resumed = intent_result(intent, self.lang, entities)

    # ---- answering --------------------------------------------------------------------------------
    def render(self, name: str, macro: str, **args: Any) -> str:
        return self.svc.renderer.text(name, macro, self.lang, self.channel, **args)

    def say(self, name: str, macro: str, *buttons: Button, **args: Any) -> None:
        self.replies.append(Reply(self.render(name, macro, **args), tuple(buttons)))
        if buttons:
            self.state.options = [[b.title, b.payload] for b in buttons]

    def say_privately(self, name: str, macro: str, **args: Any) -> None:
        """A reply for the customer alone: a private message where the channel is public."""
        self.replies.append(Reply(self.render(name, macro, **args), private=True))

    def button(self, intent: str, payload: str | None = None, title: str | None = None) -> Button:
        if title is not None:
            return Button(title, payload or f"/{intent}")
        return self.svc.renderer.button(intent, self.lang, payload)

    def yes_no(self, name: str) -> tuple[Button, Button]:
        """The two quick replies of a confirmation, titled by the flow's ``yes_label``/``no_label``."""
        return (self.button("affirm", "/affirm", self.render(name, "yes_label")),
                self.button("deny", "/deny", self.render(name, "no_label")))  # fmt: skip

    def ask(self, flow: FlowId, name: str, **data: Any) -> None:
        self.state.slot = Slot(flow, name, data)

    def confirm(self, flow: FlowId, action: str, **args: Any) -> None:
        pending_id = hashlib.sha1(f"{self.turn_id}:{action}".encode()).hexdigest()[:16]
        self.state.pending = Pending(pending_id, flow, action, args, time.time() + self.svc.config.confirm_ttl)

    def event(self, kind: str, **data: Any) -> None:
        self.events.append({"kind": "event", "event": kind, **data})

    # ---- doing ------------------------------------------------------------------------------------
    async def write(
        self, action: str, call: Callable[[str], Awaitable[Order]], *, confirmed: Pending | None = None, key: str = ""
    ) -> Order | None:
        """A write to the operator back end, made once however often it is asked: ``call`` gets the idempotency
        key — the confirmation's (a repeated "yes" writes nothing new) or this turn's (named ``key``, else
        ``action``). Logged as a ``write`` event; a refusal (``Rejected``) is told to the customer and gives None."""
        if confirmed is not None:
            idempotency_key = f"{self.conversation_id}:{confirmed.id}"
        else:
            idempotency_key = f"{self.conversation_id}:{self.turn_id}:{key or action}"
        try:
            order = await call(idempotency_key)
        except Rejected as exc:
            self.say("common", "rejected", reason=exc.code)
            return None
        self.event("write", action=action, order=order.order_id)
        return order

    def handoff_request(self, reason: str, **extra: Any) -> HandoffRequest:
        """This turn as a request to people (the customer's text masked)."""
        return HandoffRequest(
            conversation_id=self.conversation_id, channel=self.channel, sender=self.sender, phone=self.phone,
            reason=reason, lang=self.lang, text=mask_text(self.text, self.result.entities),
            urgency=self.result.urgency, complaint_type=self.result.complaint_type, **extra,
        )  # fmt: skip

    async def hand_over(self, reason: str, **extra: Any) -> None:
        await self.hand_over_request(self.handoff_request(reason, **extra))

    async def hand_over_request(self, request: HandoffRequest, **event: Any) -> None:
        """``request`` to people; the customer is told where it stands, and asked for a message when it became a
        callback task. ``event``: more fields for the turn's handoff event (which bot engine asked)."""
        result = await self.svc.handoff.request_human(request)
        self.handed_over = True
        self.event("handoff", reason=request.reason, status=result.status, request_id=result.request_id, **event)
        self.say("request_human", result.status, request_id=result.request_id, position=result.position,
                 wait=result.wait_seconds)  # fmt: skip
        if result.status in ("closed", "no_agents"):  # no endless wait: a message becomes a callback task
            self.ask(FlowId.HUMAN, "message", request_id=result.request_id)

    async def tier(self) -> str:
        if not self.phone:
            return "normal"
        return str((await self.svc.bss.subscriber(self.phone)).tier)


# ---- what a flow is -------------------------------------------------------------------------------------
Start = Callable[[Ctx], Awaitable[None]]
Fill = Callable[[Ctx, Slot], Awaitable[bool]]
Reask = Callable[[Ctx, Slot], Awaitable[None]]
Execute = Callable[[Ctx, Pending, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Flow:
    """A conversation flow. ``start`` answers its ``intents``; ``fill`` takes the answer to a question it asked
    (False: the message is no answer); ``reask`` asks again; ``execute`` does what the customer confirmed, for
    the proven number. ``account``: it answers with the customer's account, so never on a public channel."""

    id: FlowId  # stored in Redis with its questions and confirmations
    start: Start
    intents: tuple[str, ...] = ()  # routed here; the first starts the flow again (a button)
    fill: Fill | None = None
    reask: Reask | None = None
    execute: Execute | None = None
    account: bool = False

    @property
    def intent(self) -> str:
        return self.intents[0] if self.intents else "greet"


def answered_by(entity: str, start: Callable[[Ctx, str], Awaitable[None]]) -> Fill:
    """A question answered by one entity (a district, a plan …): the flow starts again with its value; a
    message without it is no answer."""

    async def fill(ctx: Ctx, slot: Slot) -> bool:
        value = ctx.entity(entity)
        if not value:
            return False
        await start(ctx, str(value))
        return True

    return fill


# ---- requests named outright ------------------------------------------------------------------------------
def simple(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip().lower()
    return text.rstrip("。.!！?？~ ")


def intent_result(intent: str, lang: str, entities: Mapping[str, Any], text: str = "") -> ParseResult:
    """A request whose intent is known without the NLU (a quick reply, a request resumed after binding)."""
    found = tuple(Entity(str(k), v, 0, 0, str(v)) for k, v in entities.items())
    return ParseResult(text or f"/{intent}", intent, 1.0, (Ranked(intent, 1.0),), None, None, lang, found, 0)


def forced_result(payload: str, lang: str) -> ParseResult | None:
    """A quick-reply payload ``/intent`` or ``/intent{"entity": value}`` (Rasa's form)."""
    payload = payload.strip()
    if not payload.startswith("/"):
        return None
    name, brace, rest = payload[1:].partition("{")
    if name not in INTENTS:
        return None
    values: dict[str, Any] = {}
    if brace:
        try:
            values = json.loads("{" + rest)
        except json.JSONDecodeError:
            return None
        if not isinstance(values, dict):
            return None
    return intent_result(name, lang, {k: v for k, v in values.items() if isinstance(v, str | int | float)}, payload)
