"""The current plan (我的套餐): name, monthly fee, allowances, a change booked for next month."""

from __future__ import annotations

from typing import Any

INTENT = "query_package"


async def start(ctx: Any) -> None:
    phone = await ctx.need_phone(INTENT)
    if not phone:
        return
    sub = await ctx.svc.bss.subscriber(phone)
    plans = {p.id: p for p in await ctx.svc.bss.plans()}
    pending = plans.get(sub.pending_plan) if sub.pending_plan else None
    ctx.say(INTENT, "answer", ctx.button("change_package"), ctx.button("query_data_usage"),
            phone=phone, plan=plans[sub.plan], pending=pending, contract_end=sub.contract_end)  # fmt: skip
