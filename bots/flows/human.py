"""A human, please (转人工): hand over through the handoff interface and say plainly what happens."""

from __future__ import annotations

from bots.context import Ctx, Flow
from bots.state import FlowId, Slot

INTENT = "request_human"


async def start(ctx: Ctx) -> None:
    await ctx.hand_over("request_human")


# requests the bot answers at once while a callback task is open (the task keeps what the customer writes next)
SELF_SERVICE = ("query_balance", "query_bill", "query_data_usage", "query_package", "complaint_status",
                "store_hours", "network_status")  # fmt: skip


async def fill(ctx: Ctx, slot: Slot) -> bool:
    """While the callback task is open, what the customer writes is added to it (the bot confirms) — "call me back
    after 6pm" included, so no second task — except a clear request the bot answers itself ("查话费"), after which
    the task still takes what follows. A task an agent has handled takes nothing: the message is a new one."""
    request_id = slot.data["request_id"]
    if ctx.result.confidence >= 0.8 and ctx.intent in SELF_SERVICE:
        ctx.ask(FlowId.HUMAN, "message", **slot.data)
        return False
    if not await ctx.svc.handoff.leave_message(request_id, ctx.channel, ctx.sender, ctx.phone, ctx.text):
        ctx.resumed = ctx.result  # the task was handled: the engine routes the message as new
        return True
    ctx.event("callback_message", request_id=request_id)
    ctx.say("request_human", "message_added" if slot.data.get("added") else "message_recorded", request_id=request_id)
    ctx.ask(FlowId.HUMAN, "message", request_id=request_id, added=True)
    return True


FLOW = Flow(FlowId.HUMAN, start, (INTENT,), fill=fill)
