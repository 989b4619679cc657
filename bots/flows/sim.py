"""SIM services (挂失/补卡/PUK): report a lost or stolen phone (suspend the line, after an explicit
"yes"), how to get a replacement SIM, the PUK code (only to a proven customer)."""

from __future__ import annotations

from bots.context import Ctx, Flow
from bots.state import FlowId, Pending, Slot

INTENT = "sim_service"
ACTIONS = ("lost", "replace", "puk")
_KEYWORDS = {
    "lost": ("丢", "挂失", "被偷", "被盗", "偷了", "停机", "lost", "stolen", "suspend"),
    "replace": ("补卡", "换卡", "补办", "新卡", "replace", "replacement", "new sim", "esim"),
    "puk": ("puk", "锁卡", "卡被锁", "locked"),
}


def _action(ctx: Ctx) -> str | None:
    forced = ctx.entity("action")
    if forced in ACTIONS:
        return str(forced)
    text = ctx.norm
    for action, words in _KEYWORDS.items():
        if any(w in text for w in words):
            return action
    return None


async def start(ctx: Ctx, action: str | None = None) -> None:
    action = action or _action(ctx)
    if action is None:
        buttons = [ctx.button(INTENT, f'/{INTENT}{{"action":"{a}"}}', ctx.render(INTENT, "action_label", action=a))
                   for a in ACTIONS]  # fmt: skip
        ctx.say(INTENT, "choose", *buttons)
        ctx.ask(FlowId.SIM, "action")
        return
    if action == "replace":
        ctx.say(INTENT, "replace", ctx.button("store_hours"))
        return
    phone = await ctx.need_phone(INTENT)
    if not phone:
        if ctx.state.slot:  # resume with the same action after binding
            ctx.state.slot.data["entities"]["action"] = action
        return
    if action == "puk":
        ctx.say(INTENT, "puk", phone=phone, puk=await ctx.svc.bss.puk(phone))
        return
    sub = await ctx.svc.bss.subscriber(phone)
    if sub.status != "active":
        ctx.say(INTENT, "already_suspended", ctx.button("request_human"), phone=phone)
        return
    ctx.confirm(FlowId.SIM, "suspend", reason="lost")
    ctx.say(INTENT, "confirm_suspend", *ctx.yes_no(INTENT), phone=phone,
            minutes=ctx.svc.config.confirm_ttl // 60)  # fmt: skip


async def fill(ctx: Ctx, slot: Slot) -> bool:
    action = _action(ctx)
    if action is None:
        return False
    await start(ctx, action)
    return True


async def execute(ctx: Ctx, pending: Pending, phone: str) -> None:
    reason = pending.args["reason"]
    order = await ctx.write("suspend", lambda key: ctx.svc.bss.suspend(phone, reason, key), confirmed=pending)
    if order:
        ctx.say(INTENT, "suspended", ctx.button("store_hours"), phone=phone, order=order)


FLOW = Flow(FlowId.SIM, start, (INTENT,), fill=fill, execute=execute, account=True)
