"""Binding (绑定) a social or forum account — or an anonymous web chat — to a phone number: the
number, a one-time code by SMS, then the account is bound and the original question answered.
``解绑/unbind`` removes it."""

from __future__ import annotations

import re
from typing import Any

from bots.engine import forced_result
from nlu.entities import Entity

INTENT = "greet"
INTENTS: tuple[str, ...] = ()  # not routed: started by the bind command or by an agent closing a chat
_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


async def bind(ctx: Any) -> None:
    if ctx.proven_phone:
        ctx.say("binding", "already_proven", phone=ctx.proven_phone)
    elif ctx.bound_phone:
        ctx.say("binding", "already_bound", phone=ctx.bound_phone)
    else:
        ctx.say("binding", "ask_phone", purpose="")
        ctx.ask("binding", "phone", resume="", entities={})


async def unbind(ctx: Any) -> None:
    if ctx.bound_phone and await ctx.svc.binder.unbind(ctx.channel, ctx.sender):
        ctx.bound_phone = None
        ctx.event("unbound")
        ctx.say("binding", "unbound")
    else:
        ctx.say("binding", "not_bound")


async def start(ctx: Any) -> None:  # pragma: no cover - reached through bind()
    await bind(ctx)


async def fill(ctx: Any, slot: Any) -> bool:
    if slot.name == "phone":
        phone = ctx.entity("phone")
        if not phone:
            return False
        code = await ctx.svc.binder.issue(ctx.channel, ctx.sender, str(phone))
        if code is None:
            ctx.say("binding", "too_soon", seconds=ctx.svc.binder.resend_after)
            ctx.state.slot = slot
            return True
        await ctx.svc.sms.send(str(phone), ctx.svc.renderer.text("binding", "sms_code", ctx.lang, "sms", code=code,
                                                                 minutes=ctx.svc.binder.code_ttl // 60))  # fmt: skip
        ctx.event("otp_sent")
        ctx.say("binding", "code_sent", phone=str(phone), minutes=ctx.svc.binder.code_ttl // 60)
        ctx.ask("binding", "code", resume=slot.data.get("resume", ""), entities=slot.data.get("entities", {}))
        return True
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
    if resume:
        forced = forced_result(f"/{resume}", ctx.lang)
        assert forced is not None
        entities = tuple(Entity(k, v, 0, 0, str(v)) for k, v in slot.data.get("entities", {}).items())
        ctx.result = forced.__class__(**{**_fields(forced), "entities": entities})
        await ctx.svc.bot.route(ctx)
    return True


async def reask(ctx: Any, slot: Any) -> None:
    ctx.say("binding", "ask_phone" if slot.name == "phone" else "ask_code", purpose="")
    ctx.state.slot = slot


def _fields(result: Any) -> dict[str, Any]:
    return {name: getattr(result, name) for name in result.__dataclass_fields__}
