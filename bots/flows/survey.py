"""The satisfaction survey after an agent closes a chat: five levels (非常满意 … 非常不满意) on a
100-point scale — 100, 80, 60, 40, 20 — then an optional comment. Not routed from an intent: the
human side gives the conversation back waiting for ``FIRST_QUESTION``."""

from __future__ import annotations

from bots.context import Ctx, Flow
from bots.state import FlowId, Slot

WORDS = {
    "非常满意": 100, "很满意": 100, "满意": 80, "一般": 60, "不满意": 40, "非常不满意": 20, "很不满意": 20,
    "very satisfied": 100, "satisfied": 80, "neutral": 60, "ok": 60, "dissatisfied": 40, "very dissatisfied": 20,
}  # fmt: skip
LOW = 40  # 不满意 and below: acknowledged, and a follow-up offered
SKIP = {"跳过", "不用了", "没有", "无", "skip", "no", "none", "no thanks"}


def first_question() -> Slot:
    """The slot a conversation waits in when an agent closes the chat (the agent's side asks the question)."""
    return Slot(FlowId.SURVEY, "score", {})


def _score(text: str) -> int | None:
    if text in {"1", "2", "3", "4", "5"}:
        return int(text) * 20
    for word in sorted(WORDS, key=len, reverse=True):
        if text == word:
            return WORDS[word]
    return None


async def start(ctx: Ctx) -> None:  # pragma: no cover - the survey starts when an agent closes a chat
    ctx.say("survey", "ask")
    ctx.ask(FlowId.SURVEY, "score")


async def fill(ctx: Ctx, slot: Slot) -> bool:
    if slot.name == "score":
        score = _score(ctx.norm)
        if score is None:
            return False
        await ctx.svc.handoff.record_survey(ctx.conversation_id, score, None)
        ctx.event("survey", score=score)
        skip = ctx.render("survey", "skip_label")
        ctx.say("survey", "ask_comment", ctx.button("deny", skip, skip), score=score)
        ctx.ask(FlowId.SURVEY, "comment", score=score)
        return True
    score = int(slot.data["score"])
    if ctx.norm not in SKIP:
        await ctx.svc.handoff.record_survey(ctx.conversation_id, score, ctx.text)
    if score <= LOW:  # a poor rating is acknowledged, with a way back to a person
        ctx.say("survey", "thanks", ctx.button("request_human"), score=score)
    else:
        ctx.say("survey", "thanks", score=score)
    return True


async def reask(ctx: Ctx, slot: Slot) -> None:
    ctx.say("survey", "ask")


FLOW = Flow(FlowId.SURVEY, start, fill=fill, reask=reask)
