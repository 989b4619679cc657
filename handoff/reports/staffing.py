"""Staffing advice by Erlang C: from the measured arrivals and handling times per local hour of day, how many agents
answer the target share of chats within the target time (default 80 % within 15 s), and the service level to
expect with today's staffing (the agents who picked chats up in that hour today).

An agent holds up to ``concurrency`` chats at once and the measured handling time is the chat's length with that
sharing already in it, so the queue is modelled with ``agents × concurrency`` servers (M/M/c).
"""

from __future__ import annotations

import math
from typing import Any

from handoff.reports.config import ReportsConfig
from handoff.reports.queries import Row, ratio

DEFAULT_HANDLE = 300.0  # seconds, when nothing was handled in the range


def erlang_b(servers: int, traffic: float) -> float:
    """Blocking probability (Erlang B) by the stable recursion B(n) = A·B(n−1) / (n + A·B(n−1))."""
    b = 1.0
    for n in range(1, servers + 1):
        b = traffic * b / (n + traffic * b)
    return b


def erlang_c(servers: int, traffic: float) -> float:
    """Probability that a chat waits (Erlang C) with ``servers`` and ``traffic`` erlangs; 1 when overloaded."""
    if traffic <= 0:
        return 0.0
    if servers <= traffic:
        return 1.0
    b = erlang_b(servers, traffic)
    return servers * b / (servers - traffic * (1 - b))


def service_level(servers: int, traffic: float, handle: float, within: float) -> float:
    """Share answered within ``within`` seconds: 1 − C·e^(−(N−A)·t/AHT)."""
    if traffic <= 0:
        return 1.0
    if servers <= traffic:
        return 0.0
    return 1 - erlang_c(servers, traffic) * math.exp(-(servers - traffic) * within / handle)


def servers_needed(traffic: float, handle: float, target: float, within: float, most: int) -> int | None:
    """The fewest servers reaching ``target``; None when even ``most`` do not."""
    if traffic <= 0:
        return 0
    for n in range(max(1, math.floor(traffic) + 1), most + 1):
        if service_level(n, traffic, handle, within) >= target:
            return n
    return None


def advice(rows: list[Row], today: list[dict[str, int]], config: ReportsConfig, on_duty: int | None = None,
           hours_past: int = 24) -> dict[str, Any]:  # fmt: skip
    """Per local hour of day: arrivals per hour (the range's average day), average handling time, the traffic,
    the agents needed, today's agents (or ``on_duty`` for every hour) and the service level they give. Today's
    hours from ``hours_past`` on have not begun: no staffing yet (None) unless ``on_duty`` is given."""
    s = config.staffing
    days = max(len(rows), 1)
    total: dict[str, int] = {}
    for _, fields in rows:
        for k, v in fields.items():
            if "@" in k or k in ("hc", "tsum"):
                total[k] = total.get(k, 0) + v
    overall = total["tsum"] / total["hc"] if total.get("hc") else DEFAULT_HANDLE
    hours = []
    for h in range(24):
        arrivals = total.get(f"hq@{h:02d}", 0) / days
        handled = total.get(f"hc@{h:02d}", 0)
        handle = total[f"tsum@{h:02d}"] / handled if handled and total.get(f"tsum@{h:02d}") else overall
        traffic = arrivals * handle / 3600
        servers = servers_needed(traffic, handle, s.service_level, s.answer_within, s.max_agents * s.concurrency)
        staffed: int | None = on_duty
        if staffed is None and h < hours_past:
            staffed = sum(k.startswith("ag|") for k in today[h]) if today else 0
        level = None if staffed is None else service_level(staffed * s.concurrency, traffic, handle, s.answer_within)
        hours.append({
            "hour": h, "arrivals_per_hour": round(arrivals, 2), "handle_seconds": round(handle, 1),
            "traffic_erlangs": round(traffic, 3),
            "agents_needed": math.ceil(servers / s.concurrency) if servers is not None else None,
            "agents_today": staffed, "service_level_today": round(level, 4) if level is not None and traffic else None,
            "gap": (math.ceil(servers / s.concurrency) - staffed) if servers is not None and staffed is not None
            else None,
        })  # fmt: skip
    return {"target": {"service_level": s.service_level, "answer_within": s.answer_within,
                       "concurrency": s.concurrency}, "days": len(rows), "handle_average": ratio(total.get("tsum", 0),
                                                                                             total.get("hc", 0)),
            "hours": hours}  # fmt: skip
