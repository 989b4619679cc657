"""Balance (话费余额): the proven customer's balance and credit, with a nudge when it runs low."""

from __future__ import annotations

from bots.context import Ctx, Flow
from bots.state import FlowId

INTENT = "query_balance"


async def start(ctx: Ctx) -> None:
    phone = await ctx.need_phone(INTENT)
    if not phone:
        return
    bal = await ctx.svc.bss.balance(phone)
    ctx.say(INTENT, "answer", ctx.button("recharge"), ctx.button("query_bill"),
            phone=phone, balance=bal.balance, credit=bal.credit_limit, as_of=bal.as_of)  # fmt: skip


FLOW = Flow(FlowId.BALANCE, start, (INTENT,), account=True)
