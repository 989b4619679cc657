"""Complaint intake (投诉): register it (who, when, what, type) as a case, give the ticket number and the
promised times, and pass it to people through the handoff interface. A customer whose earlier complaint is still
open hears that this one was added to it (the case links it; nothing is registered twice)."""

from __future__ import annotations

import dataclasses

from bots.context import Ctx, Flow
from bots.state import FlowId

INTENT = "complaint"
STAGES_ZH = {"registered": "已登记", "analysed": "已受理", "dispatched": "已派单", "in_progress": "处理中",
             "replied": "已答复", "reopened": "已重新打开"}  # fmt: skip


async def start(ctx: Ctx) -> None:
    kind = ctx.result.complaint_type or "other"
    request = dataclasses.replace(ctx.handoff_request("complaint"), complaint_type=kind)
    ticket = await ctx.svc.handoff.register_complaint(request)
    if ticket.linked:
        ctx.event("complaint_linked", ticket=ticket.ticket, complaint_type=kind)
        stage = STAGES_ZH.get(ticket.status, ticket.status) if ctx.lang == "zh" else ticket.status.replace("_", " ")
        ctx.say(INTENT, "linked", ctx.button("complaint_status"), ticket=ticket, stage=stage)
        return
    ctx.event("complaint", ticket=ticket.ticket, complaint_type=kind)
    buttons = [ctx.button("network_status")] if kind == "network" else []
    ctx.say(INTENT, "registered", *buttons, ticket=ticket, kind=kind,
            first_minutes=round((ticket.first_response_due - ticket.created_at) / 60),
            solution_hours=round((ticket.solution_due - ticket.created_at) / 3600))  # fmt: skip
    tier = await ctx.tier() if ctx.phone else "normal"
    if ctx.svc.handoff.wants_human("complaint", kind, ctx.result.urgency, tier):
        await ctx.hand_over("complaint", ticket=ticket.ticket)


FLOW = Flow(FlowId.COMPLAINT, start, (INTENT,))
