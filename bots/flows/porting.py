"""Number porting (携号转网): the proven customer's eligibility, or the general conditions, and
the steps."""

from __future__ import annotations

from bots.context import Ctx, Flow
from bots.state import FlowId

INTENT = "number_porting"


async def start(ctx: Ctx) -> None:
    if not ctx.phone:
        buttons = [ctx.button("greet", "/bind", ctx.render(INTENT, "bind_label"))] if ctx.can_bind else []
        ctx.say(INTENT, "general", *buttons)
        return
    check = await ctx.svc.bss.porting_check(ctx.phone)
    sub = await ctx.svc.bss.subscriber(ctx.phone)
    if check.eligible:
        ctx.say(INTENT, "eligible", phone=ctx.phone)
    else:
        ctx.say(INTENT, "not_eligible", ctx.button("request_human"), phone=ctx.phone, reasons=check.reasons,
                contract_end=sub.contract_end)  # fmt: skip


FLOW = Flow(FlowId.PORTING, start, (INTENT,), account=True)
