"""Complaint intake (投诉): register it (who, when, what, type), give the ticket number and the
promised times, and pass it to people through the handoff interface."""

from __future__ import annotations

import dataclasses

from bots.context import Ctx, Flow
from bots.state import FlowId

INTENT = "complaint"


async def start(ctx: Ctx) -> None:
    kind = ctx.result.complaint_type or "other"
    request = dataclasses.replace(ctx.handoff_request("complaint"), complaint_type=kind)
    ticket = await ctx.svc.handoff.register_complaint(request)
    ctx.event("complaint", ticket=ticket.ticket, complaint_type=kind)
    buttons = [ctx.button("network_status")] if kind == "network" else []
    ctx.say(INTENT, "registered", *buttons, ticket=ticket, kind=kind,
            first_minutes=round((ticket.first_response_due - ticket.created_at) / 60),
            solution_hours=round((ticket.solution_due - ticket.created_at) / 3600))  # fmt: skip
    tier = await ctx.tier() if ctx.phone else "normal"
    if ctx.svc.handoff.wants_human("complaint", kind, ctx.result.urgency, tier):
        await ctx.hand_over("complaint", ticket=ticket.ticket)


FLOW = Flow(FlowId.COMPLAINT, start, (INTENT,))
