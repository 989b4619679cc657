"""Broadband repair (宽带报修): check for a known outage, offer appointment windows, create the
repair order (once per choice, even if the message is repeated) with its number."""

from __future__ import annotations

from typing import Any

from bots.bss import Rejected

INTENT = "broadband_repair"


async def start(ctx: Any, window: str | None = None) -> None:
    window = window or ctx.entity("window")
    phone = await ctx.need_phone(INTENT)
    if not phone:
        return
    sub = await ctx.svc.bss.subscriber(phone)
    if sub.broadband is None:
        ctx.say(INTENT, "no_broadband", ctx.button("request_human"), phone=phone)
        return
    windows = await ctx.svc.bss.repair_windows(phone)
    chosen = next((w for w in windows if w.key == window), None)
    if chosen is None:
        outages = [o for o in await ctx.svc.bss.outages(sub.district) if o.service == "broadband"]
        buttons = [ctx.button(INTENT, f'/{INTENT}{{"window":"{w.key}"}}', ctx.render(INTENT, "window_label", window=w))
                   for w in windows]  # fmt: skip
        ctx.say(INTENT, "choose", *buttons, account=sub.broadband.account, address=sub.broadband.address,
                outages=outages)  # fmt: skip
        ctx.ask("broadband", "window")
        return
    try:
        order = await ctx.svc.bss.create_repair(phone, chosen.key, ctx.write_key("repair"))
    except Rejected as exc:
        ctx.say("change_package", "rejected", reason=exc.code)
        return
    ctx.event("write", action="repair", order=order.order_id)
    ctx.say(INTENT, "created", order=order, window=chosen, address=sub.broadband.address)


async def fill(ctx: Any, slot: Any) -> bool:
    window = ctx.entity("window")
    if not window:
        return False
    await start(ctx, str(window))
    return True


async def reask(ctx: Any, slot: Any) -> None:
    await start(ctx)
