"""The bot: one customer message (with its NLU result and the conversation's state) in, replies out.

Order of decisions for a message:

1. ``取消/cancel`` drops a question or a confirmation in progress; ``绑定/bind`` and
   ``解绑/unbind`` manage the account binding (never on a public channel: ``Ctx.can_bind``).
2. A bare number picks one of the quick replies just offered (for channels without buttons).
3. A pending confirmation: yes → do it (once, even if the message is repeated), no → nothing
   changes, past its expiry → say so; anything else drops it and is handled as new.
4. A question being asked (month, district, phone, code …): the flow takes the answer; a clear
   new request abandons the question.
5. The intent's flow (``bots.flows``); ``nlu_fallback`` follows the fallback policy: ask once with
   the top two guesses, after two misses in a row offer a human.

A flow that needs account data first makes sure the customer proved who they are
(``Ctx.need_phone``): a token or the SMS sender, or a binding made with a one-time code. On a public
channel (a forum) such a flow is not started: a public pointer, and a private message saying where to ask.

The turn and the flows' contract live in ``bots.context``; the flows in ``bots.flows``; this module only
decides which step runs.
"""

from __future__ import annotations

import logging
import time

from bots import incident_notice
from bots.bss import BSSError, BSSUnavailable, NotFound
from bots.context import BotConfig, Ctx, Reply, Services, forced_result
from bots.flows import FLOWS, ROUTES, binding
from bots.state import Slot
from gateway.models import Button
from nlu import FALLBACK_INTENT
from nlu.normalize import has_cjk

# the turn's types stay importable from here for callers not yet moved to ``bots.context``
__all__ = ["FOR_PEOPLE", "Bot", "BotConfig", "Ctx", "Reply", "Services", "forced_result", "reply_lang"]

log = logging.getLogger(__name__)

CANCEL = {"取消", "算了", "不办了", "退出", "cancel", "quit", "stop it", "never mind"}
YES = {"是", "是的", "确认", "确定", "好", "好的", "可以", "对", "办理", "y", "yes", "ok", "okay", "confirm", "sure"}
NO = {"否", "不", "不是", "不要", "不用", "不用了", "不确认", "n", "no", "nope"}
BIND = {"绑定", "绑定手机", "绑定手机号", "绑定号码", "bind", "/bind"}
UNBIND = {"解绑", "解除绑定", "取消绑定", "unbind", "/unbind"}
SMALLTALK = {"out_of_scope", "affirm", "deny", "greet", "thanks", "goodbye"}
NOT_AN_ANSWER = {FALLBACK_INTENT, "affirm", "deny", "out_of_scope", "greet", "thanks"}  # to a question: ask again


class Bot:
    def __init__(self, services: Services) -> None:
        self.svc = services

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
            return await (binding.bind(ctx) if norm in BIND else binding.unbind(ctx))
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
        flow = FLOWS[pending.flow]
        yes = ctx.intent == "affirm" or norm in YES
        no = ctx.intent == "deny" or norm in NO
        ctx.state.pending = None
        if not (yes or no):
            return False  # something else: the confirmation lapses and the message is handled as new
        if no:
            ctx.event("confirmation", action=pending.action, answer="no")
            ctx.say("common", "cancelled")
        elif time.time() > pending.expires or flow.execute is None:
            ctx.event("confirmation", action=pending.action, answer="expired")
            ctx.say("common", "confirm_expired", ctx.button(flow.intent))
        else:
            ctx.event("confirmation", action=pending.action, answer="yes")
            if ctx.phone:
                await flow.execute(ctx, pending, ctx.phone)
            else:  # the token expired, or the account was unbound, since the question
                ctx.say("common", "need_login")
        return True

    async def _slot(self, ctx: Ctx) -> bool:
        slot = ctx.state.slot
        assert slot is not None
        ctx.state.slot = None
        flow = FLOWS[slot.flow]
        if flow.fill is not None and await flow.fill(ctx, slot):
            if ctx.resumed is not None:  # the answer completes a step before the request (a binding)
                ctx.result, ctx.resumed = ctx.resumed, None
                await self.route(ctx)
            return True
        if ctx.intent in NOT_AN_ANSWER:
            if slot.tries < 2:
                again = Slot(slot.flow, slot.name, slot.data, slot.tries + 1)
                if flow.reask is not None:
                    await flow.reask(ctx, again)
                else:
                    ctx.say("common", "reask")
                ctx.state.slot = again
                return True
            ctx.say("common", "slot_give_up", ctx.button("request_human"))
            return True
        return False  # a new request: the question is dropped

    async def route(self, ctx: Ctx) -> None:
        state = ctx.state
        if ctx.svc.incidents is not None and await incident_notice.routed(ctx):  # a major incident answers it
            state.misses = 0
            return None
        if ctx.intent == FALLBACK_INTENT:
            return await self._fallback(ctx)
        state.misses = 0
        flow = ROUTES.get(ctx.intent) or ROUTES["out_of_scope"]  # a remote NLU may know other intents
        if ctx.public and flow.account:  # no account data where anyone reads: point to the private ways
            ctx.event("forum_private", intent=ctx.intent)
            ctx.say("channel", "forum_public_private")
            ctx.say_privately("channel", "forum_pm")
            return None
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


# on a channel the bot cannot answer on (a forum read through its feed), what still goes on: to people
FOR_PEOPLE = frozenset({"complaint", "request_human"})


def reply_lang(text: str, preferred: str | None) -> str:
    """Chinese text → zh; a short Latin text ("TD", "ok", "1") or a quick-reply payload keeps the
    conversation's language (else the UI's); longer English → en."""
    if has_cjk(text):
        return "zh"
    if preferred in {"zh", "en"} and (len(text) <= 12 or text.startswith("/")):
        return preferred
    return "en"
