"""Reports from the buckets: read the days of a range (one pipelined round trip, one hash per day), add their
counters up per period or dimension, and turn them into rates and percentiles. Nothing here reads a log."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from gateway.errors import BadRequest
from gateway.rkeys import Keys
from handoff.reports import buckets
from handoff.reports.buckets import BOT_BOUNDS, DIMENSIONS, HANDLE_BOUNDS, WAIT_BOUNDS
from handoff.reports.config import ReportsConfig

MAX_DAYS = 400
PERIODS = ("day", "week", "month", "quarter")
Row = tuple[dt.date, dict[str, int]]


@dataclass(frozen=True, slots=True)
class Range:
    """Local days ``start`` … ``end``, both included."""

    start: dt.date
    end: dt.date
    tz: dt.tzinfo

    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def epoch(self) -> tuple[float, float]:
        """[start, end) in seconds."""
        first = dt.datetime.combine(self.start, dt.time(), self.tz)
        last = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), self.tz)
        return first.timestamp(), last.timestamp()


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"'{name}' must be a date YYYY-MM-DD", zh=f"{name} 须为日期（YYYY-MM-DD）",
                         field=name) from None  # fmt: skip


def parse_range(query: Mapping[str, str], config: ReportsConfig, today: dt.date | None = None) -> Range:
    """``from`` / ``to`` (local dates, both included); by default the last 30 days up to today."""
    today = today or dt.datetime.now(config.tz).date()
    end = _date(query["to"], "to") if query.get("to") else today
    start = _date(query["from"], "from") if query.get("from") else end - dt.timedelta(days=29)
    if start > end:
        raise BadRequest("'from' is after 'to'", zh="开始日期晚于结束日期", field="from")
    if (end - start).days >= MAX_DAYS:
        raise BadRequest(f"a report covers at most {MAX_DAYS} days", zh=f"报表最多覆盖 {MAX_DAYS} 天", field="from")
    return Range(start, end, config.tz)


async def day_rows(redis: aioredis.Redis, keys: Keys, r: Range) -> list[Row]:
    async with redis.pipeline(transaction=False) as pipe:
        for day in r.days():
            pipe.hgetall(keys.report_day(day.strftime("%Y%m%d")))
        raw = await pipe.execute()
    return [(day, {k.decode(): int(v) for k, v in h.items()}) for day, h in zip(r.days(), raw, strict=True)]


async def hour_rows(redis: aioredis.Redis, keys: Keys, day: dt.date, tz: dt.tzinfo) -> list[dict[str, int]]:
    """The 24 local hours of ``day`` (from the hourly buckets, kept 40 days)."""
    first = int(dt.datetime.combine(day, dt.time(), tz).timestamp() // 3600)
    async with redis.pipeline(transaction=False) as pipe:
        for hour in range(first, first + 24):
            pipe.hgetall(keys.report_hour(hour))
        raw = await pipe.execute()
    return [{k.decode(): int(v) for k, v in h.items()} for h in raw]


def period(day: dt.date, group: str) -> str:
    if group == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if group == "month":
        return f"{day.year}-{day.month:02d}"
    if group == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return day.isoformat()


def merged(rows: Iterable[dict[str, int]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for row in rows:
        total.update(row)
    return total


def by_period(rows: list[Row], group: str) -> list[tuple[str, Counter[str]]]:
    out: dict[str, Counter[str]] = {}
    for day, fields in rows:
        out.setdefault(period(day, group), Counter()).update(fields)
    return list(out.items())


def ratio(num: int, den: int, scale: float = 1.0) -> float | None:
    return round(num * scale / den, 4) if den else None


def _pct(c: Mapping[str, int], name: str, bounds: tuple[float, ...], q: float) -> float | None:
    value = buckets.percentile(bounds, buckets.histogram(dict(c), name, bounds), q)
    return round(value, 2) if value is not None else None


# ---- service levels ------------------------------------------------------------------------------------------------
def levels(c: Mapping[str, int]) -> dict[str, Any]:
    """The service levels of one set of counters."""
    g = c.get
    return {
        "conversations": g("conv", 0), "bot_answers": g("bot", 0),
        "bot_within_target": ratio(g("bot_ok", 0), g("bot", 0)),
        "bot_p50": _pct(c, "bl", BOT_BOUNDS, 0.5), "bot_p90": _pct(c, "bl", BOT_BOUNDS, 0.9),
        "handoffs": g("hq", 0), "containment": ratio(max(g("conv", 0) - g("hq", 0), 0), g("conv", 0)),
        "pickups": g("hp", 0), "pickup_within_target": ratio(g("hp_ok", 0), g("hp", 0)),
        "wait_p50": _pct(c, "w", WAIT_BOUNDS, 0.5), "wait_p90": _pct(c, "w", WAIT_BOUNDS, 0.9),
        "handled": g("hc", 0), "handle_average": ratio(g("tsum", 0), g("hc", 0)),
        "handle_p50": _pct(c, "t", HANDLE_BOUNDS, 0.5), "handle_p90": _pct(c, "t", HANDLE_BOUNDS, 0.9),
        "complaints": g("cr", 0), "complaints_per_1000": ratio(g("cr", 0), g("conv", 0), 1000),
        "first_responses": g("cf", 0), "first_response_within_target": ratio(g("cf_ok", 0), g("cf", 0)),
        "solutions": g("cs", 0), "solution_within_target": ratio(g("cs_ok", 0), g("cs", 0)),
        "reopened": g("cro", 0), "reopen_rate": ratio(g("cro", 0), g("cs", 0)),
    }  # fmt: skip


def service_levels(rows: list[Row], group_by: str, config: ReportsConfig) -> dict[str, Any]:
    if group_by not in PERIODS:
        raise BadRequest(f"'group_by' must be one of {', '.join(PERIODS)}",
                         zh="group_by 须为 day、week、month 或 quarter", field="group_by")  # fmt: skip
    total = merged(f for _, f in rows)
    names = {k.split("|", 1)[1] for k in total if k.startswith(("conv|", "hq|"))}
    channels = sorted(names, key=lambda ch: (-total.get(f"conv|{ch}", 0), ch))  # the busiest first
    return {
        "targets": {"bot_answer": config.targets.bot_answer, "pickup": config.targets.pickup,
                    "complaint_first_response": config.targets.complaint_first_response,
                    "complaint_solution": config.targets.complaint_solution},
        "total": levels(total),
        "periods": [{"period": key, **levels(c)} for key, c in by_period(rows, group_by)],
        "channels": [{"channel": ch, "conversations": total.get(f"conv|{ch}", 0), "handoffs": total.get(f"hq|{ch}", 0),
                      "containment": ratio(max(total.get(f"conv|{ch}", 0) - total.get(f"hq|{ch}", 0), 0),
                                           total.get(f"conv|{ch}", 0))} for ch in channels],
    }  # fmt: skip


# ---- satisfaction --------------------------------------------------------------------------------------------------
def _survey(c: Mapping[str, int], dim: str, value: str) -> dict[str, Any]:
    base = f"s|{dim}|{value}|"
    n = c.get(base + "n", 0)
    dist = {str(level): c.get(f"{base}l{level}", 0) for level in (5, 4, 3, 2, 1)}
    return {"surveys": n, "average": ratio(c.get(base + "sum", 0), n), "levels": dist,
            "satisfied": ratio(dist["5"] + dist["4"], n)}  # fmt: skip


def satisfaction(rows: list[Row], group_by: str) -> dict[str, Any]:
    """The 100-point average and the 5-level distribution, in all and per period or dimension."""
    total = merged(f for _, f in rows)
    if group_by in PERIODS:
        groups = [{"group": key, **_survey(c, "all", "")} for key, c in by_period(rows, group_by)]
    elif group_by in DIMENSIONS:
        values = sorted({k.split("|")[2] for k in total if k.startswith(f"s|{group_by}|")})
        groups = [{"group": v, **_survey(total, group_by, v)} for v in values]
        groups.sort(key=lambda g: -g["surveys"])
    else:
        raise BadRequest(f"'group_by' must be one of {', '.join(PERIODS + DIMENSIONS)}",
                         zh="group_by 须为时间粒度（day/week/month/quarter）或维度（channel/agent/skill/"
                            "complaint_type/district）", field="group_by")  # fmt: skip
    return {"group_by": group_by, "total": _survey(total, "all", ""), "groups": groups}


# ---- quality (the averages; the inspections themselves are in quality.py) -----------------------------------------
def quality_agents(rows: list[Row]) -> dict[str, Any]:
    total = merged(f for _, f in rows)
    agents = sorted({k.split("|")[1] for k in total if k.startswith("q|") and not k.startswith("q|all|")})
    out = [{"agent": a, "inspected": total.get(f"q|{a}|n", 0),
            "average": ratio(total.get(f"q|{a}|sum", 0), total.get(f"q|{a}|n", 0))} for a in agents]  # fmt: skip
    out.sort(key=lambda row: (row["average"] is None, row["average"] or 0))
    return {"total": {"inspected": total.get("q|all|n", 0), "average": ratio(total.get("q|all|sum", 0),
                                                                             total.get("q|all|n", 0))},
            "agents": out}  # fmt: skip
