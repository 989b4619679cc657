"""Binding (绑定) a social or forum account — or an anonymous web chat — to a phone number: the
number, a one-time code by SMS, then the account is bound and the original question answered.
``解绑/unbind`` removes it. Not where anyone reads the conversation (``Ctx.can_bind``)."""

from __future__ import annotations

import re

from bots.context import Ctx, Flow
from bots.state import FlowId, Slot

_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


async def bind(ctx: Ctx) -> None:
    if ctx.proven_phone:
        ctx.say("binding", "already_proven", phone=ctx.proven_phone)
    elif ctx.bound_phone:
        ctx.say("binding", "already_bound", phone=ctx.bound_phone)
    elif not ctx.can_bind:  # in public: a number and a code would be there for anyone to read
        ctx.event("needs_account", intent="bind")
        ctx.say("common", "need_login")
    else:
        ctx.say("binding", "ask_phone", purpose="")
        ctx.ask(FlowId.BINDING, "phone", resume="", entities={})


async def unbind(ctx: Ctx) -> None:
    if ctx.bound_phone and await ctx.svc.binder.unbind(ctx.channel, ctx.sender):
        ctx.bound_phone = None
        ctx.event("unbound")
        ctx.say("binding", "unbound")
    else:
        ctx.say("binding", "not_bound")


async def fill(ctx: Ctx, slot: Slot) -> bool:
    if slot.name == "phone":
        return await _phone(ctx, slot)
    match = _CODE.search(ctx.norm)
    if not match:
        return False
    session, bind_as = ctx.new_session() if ctx.new_session else (None, None)
    result = await ctx.svc.binder.verify(ctx.channel, ctx.sender, match.group(1), bind_as)
    if result.status == "wrong":
        ctx.say("binding", "wrong_code", left=result.attempts_left)
        ctx.state.slot = slot
        return True
    if result.status != "ok":
        ctx.event("otp_" + result.status)
        ctx.say("binding", result.status)  # locked | expired
        return True
    ctx.bound_phone = result.phone
    ctx.issued_session = session
    ctx.event("bound")
    ctx.say("binding", "bound", phone=result.phone)
    resume = slot.data.get("resume")
    if resume:  # the question that needed the number: the engine routes it next
        ctx.resume(resume, slot.data.get("entities", {}))
    return True


async def _phone(ctx: Ctx, slot: Slot) -> bool:
    phone = ctx.entity("phone")
    if not phone:
        return False
    binder = ctx.svc.binder
    code = await binder.issue(ctx.channel, ctx.sender, str(phone))
    if code is None:
        ctx.say("binding", "too_soon", seconds=binder.resend_after)
        ctx.state.slot = slot
        return True
    minutes = binder.code_ttl // 60
    await ctx.svc.sms.send(str(phone), ctx.svc.renderer.text("binding", "sms_code", ctx.lang, "sms", code=code,
                                                             minutes=minutes))  # fmt: skip
    ctx.event("otp_sent")
    ctx.say("binding", "code_sent", phone=str(phone), minutes=minutes)
    ctx.ask(FlowId.BINDING, "code", resume=slot.data.get("resume", ""), entities=slot.data.get("entities", {}))
    return True


async def reask(ctx: Ctx, slot: Slot) -> None:
    ctx.say("binding", "ask_phone" if slot.name == "phone" else "ask_code", purpose="")
    ctx.state.slot = slot


FLOW = Flow(FlowId.BINDING, bind, fill=fill, reask=reask)
