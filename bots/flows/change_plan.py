"""Change plan (变更套餐): list the eligible plans, state price and effective date, ask for an
explicit "yes", then change it — once, however often the "yes" arrives."""

from __future__ import annotations

from typing import Any

from bots.bss import Rejected

INTENT = "change_package"


async def start(ctx: Any, target: str | None = None) -> None:
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
        ctx.ask("change_plan", "plan")
        return
    plan = plans[target]
    effective = _next_month(ctx)
    ctx.confirm("change_plan", "change_plan", plan=plan.id)
    ctx.say(INTENT, "confirm", *ctx.yes_no(INTENT),
            current=current, plan=plan, effective=effective, minutes=ctx.svc.config.confirm_ttl // 60)  # fmt: skip


async def fill(ctx: Any, slot: Any) -> bool:
    target = ctx.entity("plan")
    if not target:
        return False
    await start(ctx, str(target))
    return True


async def reask(ctx: Any, slot: Any) -> None:
    await start(ctx)


async def execute(ctx: Any, pending: Any) -> None:
    phone = ctx.phone
    if not phone:
        ctx.say("common", "need_login")
        return
    plans = {p.id: p for p in await ctx.svc.bss.plans()}
    try:
        order = await ctx.svc.bss.change_plan(phone, pending.args["plan"], f"{ctx.conversation_id}:{pending.id}")
    except Rejected as exc:
        ctx.say(INTENT, "rejected", reason=exc.code)
        return
    ctx.event("write", action="change_plan", order=order.order_id)
    ctx.say(INTENT, "done", plan=plans[pending.args["plan"]], order=order)


def _next_month(ctx: Any) -> Any:
    today = ctx.now.date()
    return today.replace(year=today.year + today.month // 12, month=today.month % 12 + 1, day=1)
