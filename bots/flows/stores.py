"""Stores (营业厅): addresses, opening hours and phone numbers by district."""

from __future__ import annotations

from bots.context import Ctx, Flow, answered_by
from bots.state import FlowId, Slot

INTENT = "store_hours"


async def start(ctx: Ctx, district: str | None = None) -> None:
    district = district or ctx.entity("district")
    if not district:
        ctx.say(INTENT, "ask_district")
        ctx.ask(FlowId.STORES, "district")
        return
    stores = await ctx.svc.bss.stores(str(district))
    if stores:
        ctx.say(INTENT, "answer", district=district, stores=stores[:3], more=len(stores) > 3)
        return
    covered = sorted({s.district for s in await ctx.svc.bss.stores(None)})
    ctx.say(INTENT, "nothing", district=district, covered=covered)
    ctx.ask(FlowId.STORES, "district")


async def reask(ctx: Ctx, slot: Slot) -> None:
    ctx.say(INTENT, "ask_district")
    ctx.state.slot = slot


FLOW = Flow(FlowId.STORES, start, (INTENT,), fill=answered_by("district", start), reask=reask)
