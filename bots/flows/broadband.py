"""Broadband repair (宽带报修): check for a known outage, offer appointment windows, create the
repair order (once per choice, even if the message is repeated) with its number."""

from __future__ import annotations

from bots.context import Ctx, Flow, answered_by
from bots.state import FlowId, Slot

INTENT = "broadband_repair"


async def start(ctx: Ctx, window: str | None = None) -> None:
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
        ctx.ask(FlowId.BROADBAND, "window")
        return
    order = await ctx.write("repair", lambda key: ctx.svc.bss.create_repair(phone, chosen.key, key))
    if order:
        ctx.say(INTENT, "created", order=order, window=chosen, address=sub.broadband.address)


async def reask(ctx: Ctx, slot: Slot) -> None:
    await start(ctx)


FLOW = Flow(FlowId.BROADBAND, start, (INTENT,), fill=answered_by("window", start), reask=reask, account=True)
