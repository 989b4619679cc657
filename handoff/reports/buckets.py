"""What one event adds to the report buckets, as ``(field, increment)`` pairs — the one definition the recorder
(events as they happen) and the demo seed (history in bulk) share — and the fixed, mergeable histograms.

Every bucket is a Redis hash of integer counters: one per UTC hour (``Keys.report_hour``) and one per local day
(``Keys.report_day``, days in the configured time zone). Fields:

* ``conv``, ``conv|<channel>`` — conversations started; ``bot``, ``bot_ok``, ``bl|<i>`` — automated answers,
  those within the target (5 s), their latency histogram (``BOT_BOUNDS``);
* ``hq``, ``hq|<channel>`` — handoffs queued; ``hp``, ``hp_ok``, ``w|<i>``, ``wsum`` — picked up, within 15 s,
  waiting-time histogram (``WAIT_BOUNDS``) and sum; ``hc``, ``t|<i>``, ``tsum`` — closed, handling-time histogram
  (``HANDLE_BOUNDS``) and sum; ``ag|<agent>`` — an agent's pick-ups (the hour's staffing is how many agents have one);
* ``cr``, ``cr|<type>`` — complaints registered; ``cf``, ``cf_ok`` — first responses (within 30 min);
  ``cs``, ``cs_ok`` — solutions (within 24 h); ``cro`` — reopened;
* ``s|<dim>|<value>|n``, ``…|sum``, ``…|l<1-5>`` — surveys by ``all``, channel, agent, skill, complaint type,
  district: count, sum of the 100-point scores, the 5-level distribution;
* ``q|<agent>|n``, ``q|<agent>|sum`` (and ``q|all|``) — quality-inspection scores;
* day buckets only: ``hq@HH``, ``hc@HH``, ``tsum@HH`` — arrivals and handling per local hour of day (staffing).
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Pairs = list[tuple[str, int]]

BOT_BOUNDS = (0.25, 0.5, 1, 2, 3, 5, 10, 30)  # seconds; the last bucket is everything above
WAIT_BOUNDS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600)
HANDLE_BOUNDS = (60, 120, 180, 300, 420, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200)
LEVELS = {100: 5, 80: 4, 60: 3, 40: 2, 20: 1}  # survey score → level (5 = very satisfied)
DIMENSIONS = ("channel", "agent", "skill", "complaint_type", "district")


@dataclass(frozen=True, slots=True)
class Targets:
    """The operator's service levels (config/reports.yml ``targets``), seconds."""

    bot_answer: float = 5.0
    pickup: float = 15.0
    complaint_first_response: float = 1800.0
    complaint_solution: float = 86400.0


def clean(value: object) -> str:
    """A dimension value as a field part: no separators, at most 64 characters, ``unknown`` when empty."""
    text = str(value or "").replace("|", "/").replace("@", "/").strip()
    return text[:64] or "unknown"


def bucket(bounds: Sequence[float], value: float) -> int:
    """The histogram bucket of ``value``: the first bound ≥ it (``len(bounds)`` above the last)."""
    return bisect_left(bounds, value)


def percentile(bounds: Sequence[float], counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0–1) from a histogram, interpolated linearly inside its bucket (a bucket spans
    (previous bound, bound]; the first starts at 0; the overflow bucket answers its lower bound). None when empty."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            low = bounds[i - 1] if i else 0.0
            if i >= len(bounds):
                return float(bounds[-1])
            return low + (bounds[i] - low) * (rank - seen) / count
        seen += count
    return float(bounds[-1])


def histogram(fields: dict[str, int], name: str, bounds: Sequence[float]) -> list[int]:
    return [fields.get(f"{name}|{i}", 0) for i in range(len(bounds) + 1)]


# ---- one event → its increments -------------------------------------------------------------------------------
def turn(channel: str, seconds: float, new: bool, bot: bool, timed_out: bool, t: Targets) -> Pairs:
    out: Pairs = [("conv", 1), (f"conv|{clean(channel)}", 1)] if new else []
    if bot:
        ok = not timed_out and seconds <= t.bot_answer
        out += [("bot", 1), ("bot_ok", int(ok)), (f"bl|{bucket(BOT_BOUNDS, seconds)}", 1)]
    return out


def queued(channel: str) -> Pairs:
    return [("hq", 1), (f"hq|{clean(channel)}", 1)]


def picked_up(agent: str, wait: float, t: Targets) -> Pairs:
    wait = max(wait, 0.0)
    return [("hp", 1), ("hp_ok", int(wait <= t.pickup)), (f"w|{bucket(WAIT_BOUNDS, wait)}", 1),
            ("wsum", round(wait)), (f"ag|{clean(agent)}", 1)]  # fmt: skip


def closed(handle: float) -> Pairs:
    handle = max(handle, 0.0)
    return [("hc", 1), (f"t|{bucket(HANDLE_BOUNDS, handle)}", 1), ("tsum", round(handle))]


def hour_of_day(kind: str, handle: float, hour: int) -> Pairs:
    """Day-bucket-only fields for staffing: an arrival (``queued``) or a handled chat (``closed``) at local ``hour``."""
    if kind == "queued":
        return [(f"hq@{hour:02d}", 1)]
    return [(f"hc@{hour:02d}", 1), (f"tsum@{hour:02d}", round(max(handle, 0.0)))]


def complaint(complaint_type: str | None) -> Pairs:
    return [("cr", 1), (f"cr|{clean(complaint_type or 'other')}", 1)]


def first_response(seconds: float, t: Targets) -> Pairs:
    return [("cf", 1), ("cf_ok", int(seconds <= t.complaint_first_response))]


def solved(seconds: float, t: Targets) -> Pairs:
    return [("cs", 1), ("cs_ok", int(seconds <= t.complaint_solution))]


def reopened() -> Pairs:
    return [("cro", 1)]


def survey(score: int, groups: dict[str, Iterable[str]]) -> Pairs:
    """``groups``: dimension → the values this survey counts under (a chat needing two skills counts in both)."""
    level = LEVELS[score]
    out: Pairs = []
    for dim, values in {"all": [""], **groups}.items():
        for value in dict.fromkeys(clean(v) if dim != "all" else "" for v in values):
            out += [(f"s|{dim}|{value}|n", 1), (f"s|{dim}|{value}|sum", score), (f"s|{dim}|{value}|l{level}", 1)]
    return out


def quality(agent: str, score: int, count: int = 1) -> Pairs:
    """A scored conversation (``count`` 1), or a correction of one already counted (``count`` 0, ``score`` the
    difference)."""
    out: Pairs = []
    for who in ("all", clean(agent)):
        out += [(f"q|{who}|sum", score)] + ([(f"q|{who}|n", count)] if count else [])
    return out


# ---- time --------------------------------------------------------------------------------------------------------
def hour_of(at: float) -> int:
    return int(at // 3600)


def local(at: float, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(at, tz)


def day_of(at: float, tz: dt.tzinfo) -> str:
    return local(at, tz).strftime("%Y%m%d")
