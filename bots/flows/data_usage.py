"""Data usage (流量) per bucket: general, app-directed (定向) and roaming."""

from __future__ import annotations

from bots.context import Ctx, Flow
from bots.state import FlowId

INTENT = "query_data_usage"


async def start(ctx: Ctx) -> None:
    phone = await ctx.need_phone(INTENT)
    if not phone:
        return
    buckets = [b for b in await ctx.svc.bss.usage(phone) if b.total_mb or b.used_mb]
    over = [b for b in buckets if b.used_mb > b.total_mb]
    ctx.say(INTENT, "answer", ctx.button("change_package"), phone=phone, buckets=buckets, over=over)


FLOW = Flow(FlowId.DATA_USAGE, start, (INTENT,), account=True)
