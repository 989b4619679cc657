"""The current plan (我的套餐): name, monthly fee, allowances, a change booked for next month."""

from __future__ import annotations

from bots.context import Ctx, Flow
from bots.state import FlowId

INTENT = "query_package"


async def start(ctx: Ctx) -> None:
    phone = await ctx.need_phone(INTENT)
    if not phone:
        return
    sub = await ctx.svc.bss.subscriber(phone)
    plans = {p.id: p for p in await ctx.svc.bss.plans()}
    pending = plans.get(sub.pending_plan) if sub.pending_plan else None
    ctx.say(INTENT, "answer", ctx.button("change_package"), ctx.button("query_data_usage"),
            phone=phone, plan=plans[sub.plan], pending=pending, contract_end=sub.contract_end)  # fmt: skip


FLOW = Flow(FlowId.PLAN, start, (INTENT,), account=True)
