"""Change plan (变更套餐): list the eligible plans, state price and effective date, ask for an
explicit "yes", then change it — once, however often the "yes" arrives."""

from __future__ import annotations

import datetime as dt

from bots.context import Ctx, Flow, answered_by
from bots.state import FlowId, Pending, Slot

INTENT = "change_package"


async def start(ctx: Ctx, target: str | None = None) -> None:
    target = target or ctx.entity("plan")
    phone = await ctx.need_phone(INTENT)
    if not phone:
        return
    sub = await ctx.svc.bss.subscriber(phone)
    plans = {p.id: p for p in await ctx.svc.bss.plans()}
    current = plans[sub.plan]
    eligible = [p for p in plans.values() if p.open and p.id != sub.plan]
    if sub.status != "active":
        ctx.say(INTENT, "suspended", ctx.button("request_human"))
        return
    if target == sub.plan:
        ctx.say(INTENT, "same_plan", plan=current)
        return
    if target not in {p.id for p in eligible}:
        buttons = [ctx.button(INTENT, f'/{INTENT}{{"plan":"{p.id}"}}', ctx.render(INTENT, "plan_label", plan=p))
                   for p in eligible]  # fmt: skip
        ctx.say(INTENT, "choose", *buttons, current=current, plans=eligible,
                closed=plans.get(target) if target else None)  # fmt: skip
        ctx.ask(FlowId.CHANGE_PLAN, "plan")
        return
    plan = plans[target]
    ctx.confirm(FlowId.CHANGE_PLAN, "change_plan", plan=plan.id)
    ctx.say(INTENT, "confirm", *ctx.yes_no(INTENT), current=current, plan=plan, effective=_next_month(ctx),
            minutes=ctx.svc.config.confirm_ttl // 60)  # fmt: skip


async def reask(ctx: Ctx, slot: Slot) -> None:
    await start(ctx)


async def execute(ctx: Ctx, pending: Pending, phone: str) -> None:
    plans = {p.id: p for p in await ctx.svc.bss.plans()}
    target = pending.args["plan"]
    order = await ctx.write("change_plan", lambda key: ctx.svc.bss.change_plan(phone, target, key), confirmed=pending)
    if order:
        ctx.say(INTENT, "done", plan=plans[target], order=order)


def _next_month(ctx: Ctx) -> dt.date:
    today = ctx.now.date()
    return today.replace(year=today.year + today.month // 12, month=today.month % 12 + 1, day=1)


FLOW = Flow(FlowId.CHANGE_PLAN, start, (INTENT,), fill=answered_by("plan", start), reask=reask, execute=execute,
            account=True)  # fmt: skip
