"""The bill for a month (账单); asks which month when none is said ("上个月" is resolved by the NLU
from today)."""

from __future__ import annotations

import re

from bots.bss import NotFound, month_key
from bots.context import Ctx, Flow
from bots.state import FlowId, Slot

INTENT = "query_bill"
_MONTH_ONLY = re.compile(r"^(\d{1,2})$")


def _recent(ctx: Ctx) -> list[str]:
    return [month_key(ctx.now.date(), n) for n in (1, 2, 3)]


async def start(ctx: Ctx, month: str | None = None) -> None:
    month = month or ctx.entity("month")
    phone = await ctx.need_phone(INTENT)
    if not phone:
        return
    if not month:
        await reask(ctx, None)
        return
    await _answer(ctx, phone, str(month))


async def reask(ctx: Ctx, slot: Slot | None) -> None:
    months = _recent(ctx)
    ctx.say(INTENT, "ask_month", *(ctx.button(INTENT, f'/{INTENT}{{"month":"{m}"}}', ctx.render(INTENT, "month_label",
            month=m)) for m in months))  # fmt: skip
    ctx.ask(FlowId.BILL, "month", tries=slot.tries if slot else 0)


async def fill(ctx: Ctx, slot: Slot) -> bool:
    month = ctx.entity("month")
    m = _MONTH_ONLY.match(ctx.norm)
    if not month and m and 1 <= int(m.group(1)) <= 12:  # "10": the most recent October
        year = ctx.now.year if int(m.group(1)) <= ctx.now.month else ctx.now.year - 1
        month = f"{year:04d}-{int(m.group(1)):02d}"
    if not month:
        return False
    await start(ctx, str(month))
    return True


async def _answer(ctx: Ctx, phone: str, month: str) -> None:
    current = f"{ctx.now.year:04d}-{ctx.now.month:02d}"
    if month >= current:
        ctx.say(INTENT, "not_issued", month=month)
        return
    try:
        bill = await ctx.svc.bss.bill(phone, month)
    except NotFound:
        ctx.say(INTENT, "no_bill", month=month)
        return
    ctx.say(INTENT, "answer", *([ctx.button("recharge")] if bill.status == "unpaid" else []),
            phone=phone, bill=bill)  # fmt: skip


FLOW = Flow(FlowId.BILL, start, (INTENT,), fill=fill, reask=reask, account=True)
