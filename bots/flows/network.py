"""Network status (网络故障): outages in the customer's area — the district they name, or the
one on their account — with what happened and when it should be fixed."""

from __future__ import annotations

from bots import incident_notice
from bots.context import Ctx, Flow, answered_by
from bots.state import FlowId, Slot

INTENT = "network_status"


async def start(ctx: Ctx, district: str | None = None) -> None:
    district = district or ctx.entity("district")
    if not district and ctx.phone:
        district = (await ctx.svc.bss.subscriber(ctx.phone)).district
    if not district:
        ctx.say(INTENT, "ask_district")
        ctx.ask(FlowId.NETWORK, "district")
        return
    if await incident_notice.network(ctx, district):  # a major incident in the district: its notice answers
        return
    outages = await ctx.svc.bss.outages(district)
    if outages:
        ctx.say(INTENT, "outage", ctx.button("complaint"), ctx.button("request_human"),
                district=district, outages=outages)  # fmt: skip
    else:
        ctx.say(INTENT, "nothing", ctx.button("broadband_repair"), ctx.button("request_human"), district=district)


async def reask(ctx: Ctx, slot: Slot) -> None:
    ctx.say(INTENT, "ask_district")
    ctx.state.slot = slot


FLOW = Flow(FlowId.NETWORK, start, (INTENT,), fill=answered_by("district", start), reask=reask)
