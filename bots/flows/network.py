"""Network status (网络故障): outages in the customer's area — the district they name, or the
one on their account — with what happened and when it should be fixed."""

from __future__ import annotations

from typing import Any

INTENT = "network_status"


async def start(ctx: Any, district: str | None = None) -> None:
    district = district or ctx.entity("district")
    if not district and ctx.phone:
        district = (await ctx.svc.bss.subscriber(ctx.phone)).district
    if not district:
        ctx.say(INTENT, "ask_district")
        ctx.ask("network", "district")
        return
    outages = await ctx.svc.bss.outages(district)
    if outages:
        ctx.say(INTENT, "outage", ctx.button("complaint"), ctx.button("request_human"),
                district=district, outages=outages)  # fmt: skip
    else:
        ctx.say(INTENT, "nothing", ctx.button("broadband_repair"), ctx.button("request_human"), district=district)


async def fill(ctx: Any, slot: Any) -> bool:
    district = ctx.entity("district")
    if not district:
        return False
    await start(ctx, str(district))
    return True


async def reask(ctx: Any, slot: Any) -> None:
    ctx.say(INTENT, "ask_district")
    ctx.state.slot = slot
