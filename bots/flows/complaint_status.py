"""Complaint status (投诉进度): the customer's complaints and where each stands."""

from __future__ import annotations

import datetime as dt

from bots.context import Ctx, Flow
from bots.state import FlowId

INTENT = "complaint_status"


async def start(ctx: Ctx) -> None:
    complaints = await ctx.svc.handoff.complaints(ctx.phone, ctx.channel, ctx.sender)
    if not complaints:
        ctx.say(INTENT, "nothing", ctx.button("complaint"))
        return
    rows = [(c, dt.datetime.fromtimestamp(c.created_at, ctx.tz)) for c in complaints[:5]]
    ctx.say(INTENT, "answer", rows=rows, more=len(complaints) > 5)


FLOW = Flow(FlowId.COMPLAINT_STATUS, start, (INTENT,), account=True)
