"""Top up (充值): which number (the customer's own, or one they name), how much, then a payment
link. Paying for a number reveals nothing about it, so no binding is needed."""

from __future__ import annotations

from bots.bss import NotFound
from bots.context import Ctx, Flow
from bots.state import FlowId, Slot

INTENT = "recharge"
AMOUNTS = (30, 50, 100, 200)
MIN, MAX = 1, 5000


async def start(ctx: Ctx, phone: str | None = None, amount: float | None = None) -> None:
    phone = phone or ctx.entity("phone") or ctx.phone
    amount = amount if amount is not None else ctx.entity("money") if ctx.entity("money") is not None \
        else ctx.entity("amount")  # fmt: skip
    if not phone:
        ctx.say(INTENT, "ask_phone")
        ctx.ask(FlowId.RECHARGE, "phone", amount=amount)
        return
    if amount is None:
        buttons = [ctx.button(INTENT, f'/{INTENT}{{"amount":{a}}}', ctx.render(INTENT, "amount_label", amount=a))
                   for a in AMOUNTS]  # fmt: skip
        ctx.say(INTENT, "ask_amount", *buttons, phone=phone)
        ctx.ask(FlowId.RECHARGE, "amount", phone=phone)
        return
    amount = float(amount)
    if not MIN <= amount <= MAX:
        ctx.say(INTENT, "bad_amount", low=MIN, high=MAX)
        ctx.ask(FlowId.RECHARGE, "amount", phone=phone)
        return
    number, value = str(phone), amount
    try:
        order = await ctx.write("payment_link", lambda key: ctx.svc.bss.payment_link(number, value, key), key="payment")
    except NotFound:
        ctx.say(INTENT, "unknown_number", phone=phone)
        return
    if order:
        ctx.say(INTENT, "link", phone=phone, amount=amount, url=order.url or "", order=order.order_id)


async def fill(ctx: Ctx, slot: Slot) -> bool:
    if slot.name == "phone":
        phone = ctx.entity("phone")
        if not phone:
            return False
        await start(ctx, str(phone), slot.data.get("amount"))
        return True
    amount = ctx.entity("amount") if ctx.entity("amount") is not None else ctx.entity("money")
    if amount is None and ctx.norm.replace(".", "", 1).isdigit():
        amount = float(ctx.norm)
    if amount is None:
        return False
    await start(ctx, slot.data["phone"], float(amount))
    return True


async def reask(ctx: Ctx, slot: Slot) -> None:
    if slot.name == "phone":
        ctx.say(INTENT, "ask_phone")
    else:
        ctx.say(INTENT, "ask_amount", phone=slot.data["phone"])
    ctx.state.slot = slot


FLOW = Flow(FlowId.RECHARGE, start, (INTENT,), fill=fill, reask=reask, account=True)
