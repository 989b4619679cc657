"""The incident room's metrics (seed ch. 7.3): per affected district the last hour's network messages (the
detector's buckets), the notices given and the complaints linked; and the sentiment of the customers told — each
message answered with the notice scored by the NLU's urgency cues (``nlu/urgency.py``: 0 calm, 1 annoyed, 2 angry
or repeated, 3 escalating — a regulator, the media), kept as counters ``mood:<0-3>`` on the incident."""

from __future__ import annotations

from collections import Counter
from typing import Any

MOODS = ("calm", "annoyed", "angry", "escalating")


def sentiment(stats: dict[str, int], links: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The counts per mood of the messages answered with the notice, the share not calm (``negative``), and the
    linked complaints' average urgency."""
    counts = {name: stats.get(f"mood:{i}", 0) for i, name in enumerate(MOODS)}
    total = sum(counts.values())
    negative = total - counts["calm"]
    urgencies = [int(link.get("urgency") or 0) for link in links or []]
    return {**counts, "total": total, "negative_share": round(negative / total, 3) if total else 0.0,
            "complaint_urgency": round(sum(urgencies) / len(urgencies), 2) if urgencies else 0.0}  # fmt: skip


def districts(names: tuple[str, ...], stats: dict[str, int], links: list[dict[str, Any]],
              inbound: dict[str, float]) -> list[dict[str, Any]]:  # fmt: skip
    """One row per district (the affected ones first, then any other a linked complaint named)."""
    linked = Counter(link.get("district") or "" for link in links)
    seen = list(dict.fromkeys([*names, *(d for d in linked if d)]))
    return [{"district": d, "affected": d in names, "inbound_last_hour": round(inbound.get(d, 0.0)),
             "notices": stats.get(f"district:{d}", 0), "linked": linked.get(d, 0)} for d in seen]  # fmt: skip
