"""A human, please (转人工): hand over through the handoff interface and say plainly what happens."""

from __future__ import annotations

from bots.context import Ctx, Flow
from bots.state import FlowId, Slot

INTENT = "request_human"


async def start(ctx: Ctx) -> None:
    await ctx.hand_over("request_human")


async def fill(ctx: Ctx, slot: Slot) -> bool:
    """What the customer writes now is their message for the callback — unless it is clearly a new
    request the bot can answer ("查话费", "投诉进度")."""
    if ctx.result.confidence >= 0.8 and ctx.intent not in ("complaint", "request_human", "nlu_fallback",
                                                          "out_of_scope", "affirm", "deny"):  # fmt: skip
        return False
    await ctx.svc.handoff.leave_message(slot.data["request_id"], ctx.channel, ctx.sender, ctx.phone, ctx.text)
    ctx.event("callback_message", request_id=slot.data["request_id"])
    ctx.say("request_human", "message_recorded", request_id=slot.data["request_id"])
    return True


FLOW = Flow(FlowId.HUMAN, start, (INTENT,), fill=fill)
