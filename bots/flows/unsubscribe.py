"""Unsubscribe (退订): list the customer's value-added services, cancel the chosen one after an
explicit "yes"."""

from __future__ import annotations

from typing import Any

from bots.bss import Rejected

INTENT = "unsubscribe"


async def start(ctx: Any, vas_id: str | None = None) -> None:
    vas_id = vas_id or ctx.entity("vas")
    phone = await ctx.need_phone(INTENT)
    if not phone:
        return
    services = await ctx.svc.bss.vas(phone)
    if not services:
        ctx.say(INTENT, "nothing", phone=phone)
        return
    if vas_id is None:  # named in the message? ("退订视频彩铃")
        vas_id = next((v.id for v in services if v.name["zh"] in ctx.text or v.name["en"].lower() in ctx.norm), None)
    chosen = next((v for v in services if v.id == vas_id), None)
    if chosen is None:
        buttons = [ctx.button(INTENT, f'/{INTENT}{{"vas":"{v.id}"}}', ctx.render(INTENT, "vas_label", vas=v))
                   for v in services]  # fmt: skip
        ctx.say(INTENT, "choose", *buttons, services=services, phone=phone)
        ctx.ask("unsubscribe", "vas")
        return
    ctx.confirm("unsubscribe", "cancel_vas", vas=chosen.id)
    ctx.say(INTENT, "confirm", *ctx.yes_no(INTENT), vas=chosen,
            minutes=ctx.svc.config.confirm_ttl // 60)  # fmt: skip


async def fill(ctx: Any, slot: Any) -> bool:
    vas_id = ctx.entity("vas")
    if vas_id is None:
        services = await ctx.svc.bss.vas(ctx.phone) if ctx.phone else ()
        vas_id = next((v.id for v in services if v.name["zh"] in ctx.text or v.name["en"].lower() in ctx.norm), None)
    if vas_id is None:
        return False
    await start(ctx, str(vas_id))
    return True


async def reask(ctx: Any, slot: Any) -> None:
    await start(ctx)


async def execute(ctx: Any, pending: Any) -> None:
    phone = ctx.phone
    if not phone:
        ctx.say("common", "need_login")
        return
    services = {v.id: v for v in await ctx.svc.bss.vas(phone)}
    vas = services.get(pending.args["vas"])
    try:
        order = await ctx.svc.bss.cancel_vas(phone, pending.args["vas"], f"{ctx.conversation_id}:{pending.id}")
    except Rejected as exc:
        ctx.say("change_package", "rejected", reason=exc.code)
        return
    ctx.event("write", action="cancel_vas", order=order.order_id)
    ctx.say(INTENT, "done", vas=vas, order=order)
