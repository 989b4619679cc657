"""Helpers of the reports' tests: times in Beijing and a chat record as the hooks read it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

TZ = dt.timezone(dt.timedelta(hours=8))  # Asia/Shanghai has no daylight saving: a fixed offset reads the same


def at(day: int, hour: int, minute: int = 0, second: float = 0) -> float:
    """A time on November ``day``, 2026, Beijing time."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=TZ).timestamp() + second


@dataclass
class ChatRecord:
    """A chat as the hooks read it (the fields of ``handoff.store.Chat`` they use)."""

    id: str
    channel: str
    log: str
    agent: str | None
    enqueued_at: float
    assigned_at: float | None = None
    first_reply_at: float | None = None
    lang: str = "zh"
    skills: tuple[str, ...] = ("zh", "general")
    complaint_type: str | None = None
    ticket: str | None = None
