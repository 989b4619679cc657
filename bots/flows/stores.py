"""Stores (营业厅): addresses, opening hours and phone numbers by district."""

from __future__ import annotations

from typing import Any

INTENT = "store_hours"


async def start(ctx: Any, district: str | None = None) -> None:
    district = district or ctx.entity("district")
    if not district:
        ctx.say(INTENT, "ask_district")
        ctx.ask("stores", "district")
        return
    stores = await ctx.svc.bss.stores(str(district))
    if stores:
        ctx.say(INTENT, "answer", district=district, stores=stores[:3], more=len(stores) > 3)
        return
    covered = sorted({s.district for s in await ctx.svc.bss.stores(None)})
    ctx.say(INTENT, "nothing", district=district, covered=covered)
    ctx.ask("stores", "district")


async def fill(ctx: Any, slot: Any) -> bool:
    district = ctx.entity("district")
    if not district:
        return False
    await start(ctx, str(district))
    return True


async def reask(ctx: Any, slot: Any) -> None:
    ctx.say(INTENT, "ask_district")
    ctx.state.slot = slot
