"""One report by name, for the API, the page and the CLI: ``build`` (JSON), ``tables`` (its tables as rows) and
``to_csv`` (one table, with a BOM so spreadsheet programs read the Chinese right)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from gateway.errors import BadRequest
from gateway.rkeys import Keys
from handoff.reports import quality, queries, staffing
from handoff.reports.config import ReportsConfig

NAMES = ("satisfaction", "service_levels", "quality", "staffing")
DEFAULT_GROUP = {"satisfaction": "day", "service_levels": "day", "quality": "agent", "staffing": "hour"}


def _int(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    if not query.get(name):
        return None
    try:
        value = int(query[name])
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise BadRequest(f"'{name}' must be a whole number from {low} to {high}", zh=f"{name} 须为 {low}–{high} 的整数",
                         field=name)  # fmt: skip
    return value


async def build(name: str, redis: aioredis.Redis, keys: Keys, config: ReportsConfig, query: Mapping[str, str],
                today: dt.date | None = None) -> dict[str, Any]:  # fmt: skip
    if name not in NAMES:
        raise BadRequest(f"unknown report; one of {', '.join(NAMES)}", zh="没有该报表", field="report")
    r = queries.parse_range(query, config, today)
    group_by = query.get("group_by") or DEFAULT_GROUP[name]
    rows = await queries.day_rows(redis, keys, r)
    head: dict[str, Any] = {"report": name, "from": r.start.isoformat(), "to": r.end.isoformat(),
                            "timezone": config.timezone, "group_by": group_by}  # fmt: skip
    if name == "satisfaction":
        return {**head, **queries.satisfaction(rows, group_by)}
    if name == "service_levels":
        return {**head, **queries.service_levels(rows, group_by, config)}
    if name == "quality":
        limit = _int(query, "limit", 1, 1000) or 100
        days = [d.strftime("%Y%m%d") for d in r.days()]
        found = await quality.inspections(redis, keys, days, query.get("agent") or None, limit)
        return {**head, **queries.quality_agents(rows), "inspections": found}
    on_duty = _int(query, "agents", 0, 10_000)
    now = dt.datetime.now(config.tz)
    day = today or now.date()
    past = 24 if day < now.date() else now.hour + 1 if day == now.date() else 0
    hours = await queries.hour_rows(redis, keys, day, config.tz)
    return {**head, **staffing.advice(rows, hours, config, on_duty, past), "today": day.isoformat()}


def tables(body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The report's tables, flat: the first is the default of a CSV export."""
    name = body["report"]
    if name == "satisfaction":
        return {"groups": [{"group": g["group"], "surveys": g["surveys"], "average": g["average"],
                            "satisfied": g["satisfied"], **{f"level_{k}": v for k, v in g["levels"].items()}}
                           for g in body["groups"]]}  # fmt: skip
    if name == "service_levels":
        return {"periods": body["periods"], "channels": body["channels"]}
    if name == "quality":
        rows = [{"chat": i["chat"], "agent": i["agent"], "channel": i["channel"], "score": i["score"],
                 "auto": i["auto"], "override": i["override"], "override_by": i["override_by"],
                 "disposition": i["disposition"], "survey": i["survey"],
                 "closed_at": dt.datetime.fromtimestamp(i["at"], dt.UTC).isoformat(timespec="seconds"),
                 "deductions": "; ".join(f"-{d['points']} {d['reason']}" for d in i["deductions"])}
                for i in body["inspections"]]  # fmt: skip
        return {"agents": body["agents"], "inspections": rows}
    return {"hours": body["hours"]}


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    out.write("\ufeff")
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), extrasaction="ignore", lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()
