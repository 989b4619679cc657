"""The bot: one customer message (with its NLU result and the conversation's state) in, replies out.

Order of decisions for a message:

1. ``取消/cancel`` drops a question or a confirmation in progress; ``绑定/bind`` and
   ``解绑/unbind`` manage the account binding on any channel.
2. A bare number picks one of the quick replies just offered (for channels without buttons).
3. A pending confirmation: yes → do it (once, even if the message is repeated), no → nothing
   changes, past its expiry → say so; anything else drops it and is handled as new.
4. A question being asked (month, district, phone, code …): the flow takes the answer; a clear
   new request abandons the question.
5. The intent's flow (``bots.flows``); ``nlu_fallback`` follows the fallback policy: ask once with
   the top two guesses, after two misses in a row offer a human.

A flow that needs account data first makes sure the customer proved who they are
(``Ctx.need_phone``): a token or the SMS sender, or a binding made with a one-time code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from bots.bss import BSS, BSSError, BSSUnavailable, NotFound
from bots.identity import Binder
from bots.ports import Handoff, HandoffRequest, SmsSender
from bots.state import BotState, Pending, Slot
from bots.templates import Renderer
from gateway.models import Button
from gateway.privacy import mask_text
from gateway.rkeys import Keys
from nlu import INTENTS, ParseResult, Ranked
from nlu.entities import Entity
from nlu.normalize import has_cjk

log = logging.getLogger(__name__)

CANCEL = {"取消", "算了", "不办了", "退出", "cancel", "quit", "stop it", "never mind"}
YES = {"是", "是的", "确认", "确定", "好", "好的", "可以", "对", "办理", "y", "yes", "ok", "okay", "confirm", "sure"}
NO = {"否", "不", "不是", "不要", "不用", "不用了", "不确认", "n", "no", "nope"}
BIND = {"绑定", "绑定手机", "绑定手机号", "绑定号码", "bind", "/bind"}
UNBIND = {"解绑", "解除绑定", "取消绑定", "unbind", "/unbind"}
SMALLTALK = {"out_of_scope", "affirm", "deny", "greet", "thanks", "goodbye"}


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True, slots=True)
class BotConfig:
    confirm_ttl: int = 120
    timezone: str = "Asia/Shanghai"


@dataclass(slots=True)
class Services:
    bss: BSS
    redis: aioredis.Redis
    keys: Keys
    renderer: Renderer
    handoff: Handoff
    sms: SmsSender
    binder: Binder
    config: BotConfig = field(default_factory=BotConfig)
    bot: Any = None  # the Bot, so a flow can route a resumed request


class Ctx:
    """One turn: what the customer said and who they are; flows add replies and change state."""

    def __init__(
        self, svc: Services, *, channel: str, sender: str, conversation_id: str, turn_id: str, text: str,
        result: ParseResult, state: BotState, lang: str, proven_phone: str | None = None,
        bound_phone: str | None = None, new_session: Callable[[], tuple[str, str]] | None = None,
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
        # the sender is a client-chosen string (REST): a binding goes to a fresh secret session, not to it;
        # ``new_session()`` gives (the secret for the client, the sender name the binding is kept under)
        self.new_session = new_session
        self.issued_session: str | None = None
        self.replies: list[Reply] = []
        self.events: list[dict[str, Any]] = []
        self.handed_over = False
        self.tz = ZoneInfo(svc.config.timezone)
        self.now = dt.datetime.now(self.tz)

    # ---- who ------------------------------------------------------------------------------------
    @property
    def phone(self) -> str | None:
        return self.proven_phone or self.bound_phone

    @property
    def can_bind(self) -> bool:
        # SMS has its sender's number; a public forum is no place to prove one
        return self.channel not in ("sms", "forum") and self.proven_phone is None

    async def need_phone(self, resume: str) -> str | None:
        """The customer's proven number; otherwise start the binding (then resume ``resume``)."""
        if self.phone:
            return self.phone
        if not self.can_bind:  # the forum (SMS always has its sender)
            self.event("needs_account", intent=resume)
            self.say("common", "need_login")
            return None
        entities = {e.entity: e.value for e in self.result.entities if e.entity != "phone"}
        self.say("binding", "ask_phone", purpose=self.svc.renderer.label(resume, self.lang))
        self.ask("binding", "phone", resume=resume, entities=entities)
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

    @property
    def norm(self) -> str:
        return _simple(self.text)

    # ---- answering --------------------------------------------------------------------------------
    def render(self, name: str, macro: str, **args: Any) -> str:
        return self.svc.renderer.text(name, macro, self.lang, self.channel, **args)

    def say(self, name: str, macro: str, *buttons: Button, **args: Any) -> None:
        self.replies.append(Reply(self.render(name, macro, **args), tuple(buttons)))
        if buttons:
            self.state.options = [[b.title, b.payload] for b in buttons]

    def button(self, intent: str, payload: str | None = None, title: str | None = None) -> Button:
        if title is not None:
            return Button(title, payload or f"/{intent}")
        return self.svc.renderer.button(intent, self.lang, payload)

    def yes_no(self, name: str) -> tuple[Button, Button]:
        """The two quick replies of a confirmation, titled by the flow's ``yes_label``/``no_label``."""
        return (self.button("affirm", "/affirm", self.render(name, "yes_label")),
                self.button("deny", "/deny", self.render(name, "no_label")))  # fmt: skip

    def ask(self, flow: str, name: str, **data: Any) -> None:
        self.state.slot = Slot(flow, name, data)

    def confirm(self, flow: str, action: str, **args: Any) -> None:
        pending_id = hashlib.sha1(f"{self.turn_id}:{action}".encode()).hexdigest()[:16]
        self.state.pending = Pending(pending_id, flow, action, args, time.time() + self.svc.config.confirm_ttl)

    def event(self, kind: str, **data: Any) -> None:
        self.events.append({"kind": "event", "event": kind, **data})

    def write_key(self, what: str) -> str:
        """The idempotency key of a write made by this turn."""
        return f"{self.conversation_id}:{self.turn_id}:{what}"

    async def hand_over(self, reason: str, **extra: Any) -> None:
        request = HandoffRequest(
            conversation_id=self.conversation_id, channel=self.channel, sender=self.sender, phone=self.phone,
            reason=reason, lang=self.lang, text=mask_text(self.text, self.result.entities),
            urgency=self.result.urgency, complaint_type=self.result.complaint_type, **extra,
        )  # fmt: skip
        result = await self.svc.handoff.request_human(request)
        self.handed_over = True
        self.event("handoff", reason=reason, status=result.status, request_id=result.request_id)
        self.say("request_human", result.status, request_id=result.request_id, position=result.position,
                 wait=result.wait_seconds)  # fmt: skip
        if result.status in ("closed", "no_agents"):  # no endless wait: a message becomes a callback task
            self.ask("human", "message", request_id=result.request_id)

    async def tier(self) -> str:
        if not self.phone:
            return "normal"
        return str((await self.svc.bss.subscriber(self.phone)).tier)


def _simple(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip().lower()
    return text.rstrip("。.!！?？~ ")


def forced_result(payload: str, lang: str) -> ParseResult | None:
    """A quick-reply payload ``/intent`` or ``/intent{"entity": value}`` (Rasa's form)."""
    payload = payload.strip()
    if not payload.startswith("/"):
        return None
    name, brace, rest = payload[1:].partition("{")
    if name not in INTENTS:
        return None
    entities: list[Entity] = []
    if brace:
        try:
            values = json.loads("{" + rest)
        except json.JSONDecodeError:
            return None
        if not isinstance(values, dict):
            return None
        entities = [Entity(str(k), v, 0, 0, str(v)) for k, v in values.items() if isinstance(v, str | int | float)]
    return ParseResult(payload, name, 1.0, (Ranked(name, 1.0),), None, None, lang, tuple(entities), 0)


class Bot:
    def __init__(self, services: Services) -> None:
        from bots.flows import FLOWS, ROUTES

        self.svc = services
        services.bot = self
        self.flows = FLOWS
        self.routes = ROUTES

    async def respond(self, ctx: Ctx) -> None:
        try:
            await self._respond(ctx)
        except NotFound:
            ctx.state.slot = ctx.state.pending = None
            ctx.say("common", "not_subscriber", phone=ctx.phone or "")
        except BSSUnavailable as exc:
            log.warning("operator back end unavailable: %s", exc)
            ctx.replies.clear()
            ctx.state.slot = None
            ctx.event("backend_unavailable")
            ctx.say("common", "backend_down", ctx.button("request_human"))
        except BSSError as exc:
            log.warning("operator back end error: %s", exc)
            ctx.replies.clear()
            ctx.event("backend_error")
            ctx.say("common", "backend_down", ctx.button("request_human"))

    async def _respond(self, ctx: Ctx) -> None:
        state, norm = ctx.state, ctx.norm
        options, state.options = state.options, []
        if norm in CANCEL and (state.slot or state.pending):
            state.slot = state.pending = None
            return ctx.say("common", "cancelled")
        if norm in BIND or norm in UNBIND:
            state.slot = state.pending = None
            flow = self.flows["binding"]
            return await (flow.bind(ctx) if norm in BIND else flow.unbind(ctx))
        if options and norm.isdigit() and 1 <= int(norm) <= len(options):
            forced = forced_result(options[int(norm) - 1][1], ctx.lang)
            if forced:
                ctx.result = forced
        if state.pending and await self._pending(ctx):
            return None
        if state.slot and await self._slot(ctx):
            return None
        return await self.route(ctx)

    async def _pending(self, ctx: Ctx) -> bool:
        pending, norm = ctx.state.pending, ctx.norm
        assert pending is not None
        yes = ctx.intent == "affirm" or norm in YES
        no = ctx.intent == "deny" or norm in NO
        ctx.state.pending = None
        if not (yes or no):
            return False  # something else: the confirmation lapses and the message is handled as new
        if no:
            ctx.event("confirmation", action=pending.action, answer="no")
            ctx.say("common", "cancelled")
        elif time.time() > pending.expires:
            ctx.event("confirmation", action=pending.action, answer="expired")
            ctx.say("common", "confirm_expired", ctx.button(self.flows[pending.flow].INTENT))
        else:
            ctx.event("confirmation", action=pending.action, answer="yes")
            await self.flows[pending.flow].execute(ctx, pending)
        return True

    async def _slot(self, ctx: Ctx) -> bool:
        slot = ctx.state.slot
        assert slot is not None
        ctx.state.slot = None
        flow = self.flows[slot.flow]
        if await flow.fill(ctx, slot):
            return True
        if ctx.intent in {"nlu_fallback", "affirm", "deny", "out_of_scope", "greet", "thanks"}:
            if slot.tries < 2:
                again = Slot(slot.flow, slot.name, slot.data, slot.tries + 1)
                await flow.reask(ctx, again)
                ctx.state.slot = again
                return True
            ctx.say("common", "slot_give_up", ctx.button("request_human"))
            return True
        return False  # a new request: the question is dropped

    async def route(self, ctx: Ctx) -> None:
        state = ctx.state
        if ctx.intent == "nlu_fallback":
            return await self._fallback(ctx)
        state.misses = 0
        flow = self.routes.get(ctx.intent) or self.routes["out_of_scope"]
        await flow.start(ctx)
        result = ctx.result
        if not ctx.handed_over and result.urgency and result.intent not in ("request_human", "greet", "thanks") \
                and ctx.svc.handoff.wants_human("urgent", result.complaint_type, result.urgency, "normal"):  # fmt: skip
            await ctx.hand_over("urgent")
        return None

    async def _fallback(self, ctx: Ctx) -> None:
        state = ctx.state
        state.misses += 1
        ctx.event("nlu_fallback", misses=state.misses)
        if ctx.phone and ctx.svc.handoff.wants_human("vip", None, 0, await ctx.tier()):
            await ctx.hand_over("vip")
            return
        if state.misses >= 2:
            state.human_offered = True
            ctx.say("common", "fallback_human", ctx.button("request_human"), *self._menu(ctx))
            return
        guesses = [r.name for r in ctx.result.intent_ranking if r.name in self.svc.renderer.labels
                   and r.name not in SMALLTALK][:2]  # fmt: skip
        ctx.say("common", "fallback", *(ctx.button(g) for g in guesses), ctx.button("request_human"))

    def _menu(self, ctx: Ctx) -> list[Button]:
        return [ctx.button(i) for i in ("query_balance", "query_data_usage", "query_bill")]


def reply_lang(text: str, preferred: str | None) -> str:
    """Chinese text → zh; a short Latin text ("TD", "ok", "1") or a quick-reply payload keeps the
    conversation's language (else the UI's); longer English → en."""
    if has_cjk(text):
        return "zh"
    if preferred in {"zh", "en"} and (len(text) <= 12 or text.startswith("/")):
        return preferred
    return "en"
