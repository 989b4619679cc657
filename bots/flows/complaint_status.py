"""Complaint status (投诉进度): the customer's complaint cases, each with its real stage and the next time promised
(someone contacts them, a solution, the follow-up visit) — on any channel.

Also the follow-up visit's questions (回访, asked by the human side after a case is resolved, on the customer's own
channel): ``fu_solved`` (1 solved / 2 not solved: "not solved" reopens the case), ``fu_score`` (five levels, 1–5 →
20–100 points) and ``fu_comment`` (or skip). A quick reply ``/complaint_status{"ticket", "solved"}`` answers the
first one even when the conversation has moved on."""

from __future__ import annotations

import datetime as dt

from bots.context import Ctx, Flow
from bots.flows.survey import SKIP, WORDS
from bots.state import FlowId, Slot
from gateway.models import Button
from gateway.privacy import mask_text

INTENT = "complaint_status"
SOLVED = {"1", "是", "是的", "已解决", "解决了", "解决", "好了", "yes", "y", "solved", "yes solved"}
UNSOLVED = {"2", "否", "不是", "没有", "没解决", "未解决", "没有解决", "还没解决", "no", "n", "not solved", "unsolved"}


def _when(ctx: Ctx, at: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(at, ctx.tz) if at else None


async def start(ctx: Ctx) -> None:
    ticket, solved = ctx.entity("ticket"), ctx.entity("solved")
    if ticket and solved in ("yes", "no"):  # the visit's quick reply, after the conversation moved on
        await _solved(ctx, str(ticket), solved == "yes")
        return
    complaints = await ctx.svc.handoff.complaints(ctx.phone, ctx.channel, ctx.sender)
    if not complaints:
        ctx.say(INTENT, "nothing", ctx.button("complaint"))
        return
    rows = [(c, _when(ctx, c.created_at), _when(ctx, c.next_due)) for c in complaints[:5]]
    ctx.say(INTENT, "answer", rows=rows, more=len(complaints) > 5)
    waiting = next((c for c in complaints if c.followup_pending), None)
    if waiting is not None:  # the visit waits for an answer: ask again
        _ask_solved(ctx, waiting.ticket)


def _ask_solved(ctx: Ctx, ticket: str) -> None:
    yes = Button(ctx.render(INTENT, "solved_label"), f'/complaint_status{{"ticket":"{ticket}","solved":"yes"}}')
    no = Button(ctx.render(INTENT, "unsolved_label"), f'/complaint_status{{"ticket":"{ticket}","solved":"no"}}')
    ctx.say(INTENT, "followup_ask", yes, no, ticket=ticket)
    ctx.ask(FlowId.COMPLAINT_STATUS, "fu_solved", ticket=ticket)


async def _solved(ctx: Ctx, ticket: str, solved: bool) -> None:
    case = await ctx.svc.handoff.followup_answer(ticket, ctx.channel, ctx.sender, {"solved": solved})
    if case is None:
        ctx.say(INTENT, "followup_gone", ctx.button("complaint_status"))
        return
    ctx.event("followup", ticket=ticket, solved=solved)
    if not solved:
        if case.status == "reopened":
            ctx.say(INTENT, "followup_reopened", ticket=ticket, due=_when(ctx, case.next_due))
        else:
            ctx.say(INTENT, "followup_not_reopened", ctx.button("complaint"), ticket=ticket)
        return
    levels = [Button(ctx.render(INTENT, "level", level=i), str(5 - i)) for i in range(5)]
    ctx.say(INTENT, "followup_score", *levels)
    ctx.ask(FlowId.COMPLAINT_STATUS, "fu_score", ticket=ticket)


def _score(ctx: Ctx) -> int | None:
    text = ctx.norm
    if text in {"1", "2", "3", "4", "5"}:
        return int(text) * 20
    return WORDS.get(text)


async def fill(ctx: Ctx, slot: Slot) -> bool:
    ticket = str(slot.data.get("ticket", ""))
    if slot.name == "fu_solved":
        solved = ctx.entity("solved")
        if solved in ("yes", "no"):
            await _solved(ctx, ticket, solved == "yes")
            return True
        if ctx.norm in SOLVED or ctx.norm in UNSOLVED:
            await _solved(ctx, ticket, ctx.norm in SOLVED)
            return True
        return False
    if slot.name == "fu_score":
        score = _score(ctx)
        if score is None:
            return False
        if await ctx.svc.handoff.followup_answer(ticket, ctx.channel, ctx.sender, {"score": score}) is None:
            ctx.say(INTENT, "followup_gone")
            return True
        skip = ctx.render(INTENT, "skip_label")
        ctx.say(INTENT, "followup_comment", ctx.button("deny", skip, skip), score=score)
        ctx.ask(FlowId.COMPLAINT_STATUS, "fu_comment", ticket=ticket, score=score)
        return True
    if slot.name == "fu_comment":
        comment = None if ctx.norm in SKIP else mask_text(ctx.text, ctx.result.entities)
        await ctx.svc.handoff.followup_answer(ticket, ctx.channel, ctx.sender, {"comment": comment})
        ctx.event("followup_done", ticket=ticket)
        ctx.say(INTENT, "followup_thanks", score=int(slot.data.get("score", 100)))
        return True
    return False


async def reask(ctx: Ctx, slot: Slot) -> None:
    ticket = str(slot.data.get("ticket", ""))
    if slot.name == "fu_solved":
        _ask_solved(ctx, ticket)
    elif slot.name == "fu_score":
        ctx.say(INTENT, "followup_score", *[Button(ctx.render(INTENT, "level", level=i), str(5 - i)) for i in range(5)])
    else:
        skip = ctx.render(INTENT, "skip_label")
        ctx.say(INTENT, "followup_comment", ctx.button("deny", skip, skip), score=int(slot.data.get("score", 100)))


FLOW = Flow(FlowId.COMPLAINT_STATUS, start, (INTENT,), fill=fill, reask=reask, account=True)
