"""Unsubscribe (退订): list the customer's value-added services, cancel the chosen one after an
explicit "yes"."""

from __future__ import annotations

from collections.abc import Sequence

from bots.bss import Vas
from bots.context import Ctx, Flow
from bots.state import FlowId, Pending, Slot

INTENT = "unsubscribe"


def _named(ctx: Ctx, services: Sequence[Vas]) -> str | None:
    """The service the message names ("退订视频彩铃"), if any."""
    return next((v.id for v in services if v.name["zh"] in ctx.text or v.name["en"].lower() in ctx.norm), None)


async def start(ctx: Ctx, vas_id: str | None = None) -> None:
    vas_id = vas_id or ctx.entity("vas")
    phone = await ctx.need_phone(INTENT)
    if not phone:
        return
    services = await ctx.svc.bss.vas(phone)
    if not services:
        ctx.say(INTENT, "nothing", phone=phone)
        return
    if vas_id is None:
        vas_id = _named(ctx, services)
    chosen = next((v for v in services if v.id == vas_id), None)
    if chosen is None:
        buttons = [ctx.button(INTENT, f'/{INTENT}{{"vas":"{v.id}"}}', ctx.render(INTENT, "vas_label", vas=v))
                   for v in services]  # fmt: skip
        ctx.say(INTENT, "choose", *buttons, services=services, phone=phone)
        ctx.ask(FlowId.UNSUBSCRIBE, "vas")
        return
    ctx.confirm(FlowId.UNSUBSCRIBE, "cancel_vas", vas=chosen.id)
    ctx.say(INTENT, "confirm", *ctx.yes_no(INTENT), vas=chosen,
            minutes=ctx.svc.config.confirm_ttl // 60)  # fmt: skip


async def fill(ctx: Ctx, slot: Slot) -> bool:
    vas_id = ctx.entity("vas")
    if vas_id is None:
        vas_id = _named(ctx, await ctx.svc.bss.vas(ctx.phone) if ctx.phone else ())
    if vas_id is None:
        return False
    await start(ctx, str(vas_id))
    return True


async def reask(ctx: Ctx, slot: Slot) -> None:
    await start(ctx)


async def execute(ctx: Ctx, pending: Pending, phone: str) -> None:
    vas_id = pending.args["vas"]
    vas = {v.id: v for v in await ctx.svc.bss.vas(phone)}.get(vas_id)
    order = await ctx.write("cancel_vas", lambda key: ctx.svc.bss.cancel_vas(phone, vas_id, key), confirmed=pending)
    if order:
        ctx.say(INTENT, "done", vas=vas, order=order)


FLOW = Flow(FlowId.UNSUBSCRIBE, start, (INTENT,), fill=fill, reask=reask, execute=execute, account=True)
