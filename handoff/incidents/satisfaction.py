"""The satisfaction of an incident's affected customers against the baseline, for its review (seed ch. 7.2.2).

The surveys are the human side's (``handoff/surveys.py``: a score 20–100 per conversation, on the stream
``handoff_surveys``). *Affected* are the conversations told of the incident (its notice, a linked complaint) — kept
in the incident's set as they are told; their surveys from the incident's start until ``after_days`` past its close
are compared with every survey of the ``baseline_days`` before it started."""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aioredis

from gateway.rkeys import Keys

READ_LIMIT = 200_000  # stream entries read at most (the newest such period of a large desk)


def _summary(scores: list[int]) -> dict[str, Any]:
    if not scores:
        return {"surveys": 0, "mean": None, "satisfied_share": None}
    satisfied = sum(1 for s in scores if s >= 80)
    return {
        "surveys": len(scores),
        "mean": round(sum(scores) / len(scores), 1),
        "satisfied_share": round(satisfied / len(scores), 3),
    }


async def satisfaction(redis: aioredis.Redis, keys: Keys, started: float, ended: float | None,
                       affected: set[str], baseline_days: int = 28, after_days: int = 3) -> dict[str, Any]:  # fmt: skip
    """``{affected: {surveys, mean, satisfied_share}, baseline: {…}, difference}`` (means on the 20–100 scale)."""
    until = (ended or time.time()) + after_days * 86400
    first = int((started - baseline_days * 86400) * 1000)
    entries = await redis.xrange(keys.handoff_surveys(), min=f"{first}-0", max=f"{int(until * 1000)}-0",
                                 count=READ_LIMIT)  # fmt: skip
    mine: list[int] = []
    before: list[int] = []
    for entry_id, fields in entries:
        at = int(entry_id.split(b"-")[0]) / 1000
        try:
            entry = json.loads(fields[b"e"])
            score = int(entry["score"])
        except (KeyError, ValueError, TypeError):
            continue
        if at < started:
            before.append(score)
        elif entry.get("conversation") in affected:
            mine.append(score)
    result = {"affected": _summary(mine), "baseline": _summary(before)}
    a, b = result["affected"]["mean"], result["baseline"]["mean"]
    result["difference"] = round(a - b, 1) if a is not None and b is not None else None
    return result
