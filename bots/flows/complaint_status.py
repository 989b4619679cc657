"""Complaint status (投诉进度): the customer's complaints and where each stands."""

from __future__ import annotations

import datetime as dt
from typing import Any

INTENT = "complaint_status"


async def start(ctx: Any) -> None:
    complaints = await ctx.svc.handoff.complaints(ctx.phone, ctx.channel, ctx.sender)
    if not complaints:
        ctx.say(INTENT, "nothing", ctx.button("complaint"))
        return
    rows = [(c, dt.datetime.fromtimestamp(c.created_at, ctx.tz)) for c in complaints[:5]]
    ctx.say(INTENT, "answer", rows=rows, more=len(complaints) > 5)
