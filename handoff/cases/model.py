"""A complaint case's stages and the transitions between them (seed ch. 5): register → analyse → dispatch → handle
→ reply (the customer may complain again) → resolve → follow-up visit → close, and reopen within a window.

``NEXT`` is the whole rule book: a transition not in it is refused (409, with the allowed ones). The clocks a
stage meets are in ``MEETS``; ``OPEN`` are the stages a new complaint of the same customer links to."""

from __future__ import annotations

import json
from typing import Any

from gateway.errors import Conflict

STAGES = ("registered", "analysed", "dispatched", "in_progress", "replied", "resolved", "followed_up", "closed",
          "reopened")  # fmt: skip
NEXT: dict[str, tuple[str, ...]] = {
    "registered": ("analysed",),
    "analysed": ("dispatched",),
    "dispatched": ("in_progress",),
    "in_progress": ("replied",),
    "replied": ("resolved", "in_progress"),  # the customer answers the reply: handled again
    "resolved": ("followed_up", "reopened"),
    "followed_up": ("closed", "reopened"),
    "closed": ("reopened",),
    "reopened": ("dispatched", "in_progress"),
}
REOPENABLE = ("resolved", "followed_up", "closed")
OPEN = ("registered", "analysed", "dispatched", "in_progress", "replied", "reopened")
MEETS = {"in_progress": "first_response", "replied": "solution"}  # reaching the stage stops that clock
LABELS = {
    "registered": ("已登记", "registered"), "analysed": ("已分析", "analysed"), "dispatched": ("已派单", "dispatched"),
    "in_progress": ("处理中", "in progress"), "replied": ("已答复", "replied"), "resolved": ("已解决", "resolved"),
    "followed_up": ("已回访", "followed up"), "closed": ("已结案", "closed"), "reopened": ("已重新打开", "reopened"),
}  # fmt: skip
ACTORS = ("bot", "agent", "system")


class TransitionRefused(Conflict):
    """409: the transition is not allowed from the case's stage (now); ``allowed`` lists the ones that are."""

    def __init__(self, message: str, *, zh: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message, zh=zh, field="to")
        self.allowed = allowed


def label(stage: str, lang: str) -> str:
    zh, en = LABELS.get(stage, (stage, stage))
    return zh if lang == "zh" else en


def check(current: str, to: str, *, resolved_at: float | None, now: float, reopen_window: float) -> None:
    """Raise ``Conflict`` (409) unless ``current → to`` is allowed now; the error lists the allowed stages."""
    allowed = allowed_from(current, resolved_at=resolved_at, now=now, reopen_window=reopen_window)
    if to in allowed:
        return
    listed = ", ".join(allowed) or "none"
    listed_zh = "、".join(label(s, "zh") for s in allowed) or "无"
    if to == "reopened" and current in REOPENABLE:
        days = reopen_window / 86400
        raise TransitionRefused(
            f"the case can no longer be reopened: the reopen window ({days:g} days from resolution) has passed; "
            f"allowed from '{current}': {listed}",
            zh=f"已超过重新打开期限（解决后{days:g}天），当前阶段“{label(current, 'zh')}”可转为：{listed_zh}",
            allowed=allowed)  # fmt: skip
    raise TransitionRefused(f"a case at '{current}' cannot go to '{to}'; allowed: {listed}",
                   zh=f"投诉单当前阶段“{label(current, 'zh')}”不能转为“{label(to, 'zh')}”，可转为：{listed_zh}",
                   allowed=allowed)  # fmt: skip


def allowed_from(current: str, *, resolved_at: float | None, now: float, reopen_window: float) -> tuple[str, ...]:
    """The stages a case at ``current`` may go to now (reopening only within the window from its resolution)."""
    out = NEXT.get(current, ())
    if "reopened" in out and (resolved_at is None or now - resolved_at > reopen_window):
        out = tuple(s for s in out if s != "reopened")
    return out


def owner_of(phone: str | None, channel: str, sender: str) -> str:
    """Whose case it is: the phone number when known (the same customer on any channel), else the channel's sender."""
    return f"phone:{phone}" if phone else f"{channel}:{sender}"


def decode(raw: dict[bytes, bytes]) -> dict[str, Any]:
    """A case hash as plain values (numbers as floats, JSON fields decoded)."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key, value = k.decode(), v.decode()
        if key in ("facts", "chats", "linked", "followup"):
            out[key] = json.loads(value) if value else ([] if key in ("chats", "linked") else {})
        elif key in NUMBERS:
            out[key] = float(value) if value not in ("", "None") else None
        else:
            out[key] = value
    return out


NUMBERS = {"created_at", "first_response_due", "solution_due", "first_response_at", "solution_at", "resolved_at",
           "closed_at", "updated_at", "followup_due", "urgency", "escalation", "reopens"}  # fmt: skip
