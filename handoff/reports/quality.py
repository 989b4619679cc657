"""Quality inspection (质检): every conversation an agent closes is scored against ``config/quality.yml`` —
greeting and closing phrases, courtesy words, forbidden phrases, response gaps, the resolution, the survey — and
kept with the lines that cost points (masked). Supervisors review and override a score; the per-agent averages
(day buckets ``q|<agent>|…``) follow every change, so the report never re-reads transcripts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol

import redis.asyncio as aioredis

from gateway.errors import BadRequest, NotFound
from gateway.privacy import mask_text
from gateway.rkeys import REPORT_QUALITY_TTL, Keys
from handoff.reports import buckets, counters
from handoff.reports.config import Rubric, current, load

LINE_CHARS = 160  # a line quoted in a deduction
ITEMS = ("greeting", "closing", "courtesy", "forbidden", "response_gap", "resolution", "survey")
REASONS = {  # item → (en, zh) of a deduction
    "greeting": ("no greeting in the agent's first messages", "开场未使用问候语"),
    "closing": ("no closing phrase in the agent's last messages", "结束时未使用结束语"),
    "courtesy": ("too few courtesy words", "礼貌用语不足"),
    "forbidden": ("forbidden phrase", "使用服务禁语"),
    "response_gap": ("slow response", "响应间隔过长"),
    "resolution": ("not resolved in the chat", "会话中未解决问题"),
    "survey": ("customer dissatisfied", "客户评价不满意"),
}


class ChatLike(Protocol):
    id: str
    channel: str
    lang: str
    log: str
    agent: str | None
    assigned_at: float | None
    enqueued_at: float


def rubric(folder: Path | None = None) -> Rubric:
    """The rubric of ``folder``'s configuration (checked when read), else the process's."""
    return load(folder).rubric if folder else current().rubric


def _has(text: str, phrases: tuple[str, ...]) -> str | None:
    low = text.lower()
    return next((p for p in phrases if p in low), None)


def _deduct(item: str, points: int, line: str = "", at: float | None = None, detail: str = "") -> dict[str, Any]:
    en, zh = REASONS[item]
    return {"item": item, "points": points, "reason": en + (f" ({detail})" if detail else ""),
            "reason_zh": zh + (f"（{detail}）" if detail else ""), "line": mask_text(line, ())[:LINE_CHARS],
            "at": at}  # fmt: skip


def score(entries: list[dict[str, Any]], disposition: str, assigned_at: float, survey: int | None,
          r: Rubric) -> list[dict[str, Any]]:  # fmt: skip
    """The deductions of one conversation (its log entries from the pick-up on, oldest first)."""
    agent = [e for e in entries if e.get("kind") == "agent" and isinstance(e.get("text"), str)]
    out: list[dict[str, Any]] = []
    for item, window in (("greeting", agent[: r.points("greeting", "within_messages")]),
                         ("closing", agent[-r.points("closing", "within_messages"):])):  # fmt: skip
        if not any(_has(e["text"], r.phrases(item)) for e in window):
            first = window[0 if item == "greeting" else -1] if window else {}
            out.append(_deduct(item, r.points(item), first.get("text", ""), first.get("at")))
    polite = [e for e in agent if _has(e["text"], r.phrases("courtesy"))]
    if not agent or len(polite) / len(agent) < float(r.raw["courtesy"]["min_share"]):
        plain = next((e for e in agent if e not in polite), {})
        out.append(_deduct("courtesy", r.points("courtesy"), plain.get("text", ""), plain.get("at"),
                           f"{len(polite)}/{len(agent)}"))  # fmt: skip
    lost = 0
    for e in agent:
        phrase = _has(e["text"], r.phrases("forbidden"))
        if phrase and lost < r.points("forbidden", "max"):
            points = min(r.points("forbidden", "points_each"), r.points("forbidden", "max") - lost)
            lost += points
            out.append(_deduct("forbidden", points, e["text"], e.get("at"), phrase))
    out += _gaps(entries, assigned_at, r)
    kept = int((r.raw["resolution"].get("dispositions") or {}).get(disposition, 0))
    if kept < r.points("resolution"):
        out.append(_deduct("resolution", r.points("resolution") - kept, detail=disposition))
    if survey is not None:
        kept = int((r.raw["survey"].get("scores") or {}).get(survey, r.points("survey")))
        if kept < r.points("survey"):
            out.append(_deduct("survey", r.points("survey") - kept, detail=str(survey)))
    return out


def _gaps(entries: list[dict[str, Any]], assigned_at: float, r: Rubric) -> list[dict[str, Any]]:
    """Customer messages the agent answered later than the rubric allows (waiting in the queue is not the agent's:
    a message from before the pick-up counts from the pick-up)."""
    limit, each, most = (float(r.raw["response_gap"]["seconds"]), r.points("response_gap", "points_each"),
                         r.points("response_gap", "max"))  # fmt: skip
    out, lost, waiting = [], 0, None
    for e in entries:
        kind, at = e.get("kind"), float(e.get("at") or 0)
        if kind == "customer" and waiting is None:
            waiting = max(at, assigned_at)
        elif kind == "agent" and waiting is not None:
            gap = at - waiting
            waiting = None
            if gap > limit and lost < most:
                points = min(each, most - lost)
                lost += points
                out.append(_deduct("response_gap", points, str(e.get("text", "")), at, f"{gap:.0f} s"))
    return out


async def transcript(redis: aioredis.Redis, keys: Keys, log_key: str, since: float) -> list[dict[str, Any]]:
    """The chat's log entries from ``since`` (a second's slack) on."""
    start = f"{max(int((since - 1) * 1000), 0)}-0"
    out = []
    for _, fields in await redis.xrange(log_key, min=start, max="+", count=5000):
        try:
            entry = json.loads(keys.unseal(fields[b"e"]))
        except (KeyError, ValueError):  # (KeyringError is a ValueError: an entry that does not open is skipped)
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


def total(deductions: list[dict[str, Any]]) -> int:
    return max(0, 100 - sum(int(d["points"]) for d in deductions))


async def inspect(redis: aioredis.Redis, keys: Keys, chat: ChatLike, disposition: str, at: float) -> int:
    """Score a closed chat, keep the inspection, count it for its agent; its score."""
    since = chat.assigned_at or chat.enqueued_at
    entries = await transcript(redis, keys, chat.log, since)
    found = score(entries, disposition, since, None, rubric())
    points = total(found)
    record = {
        "chat": chat.id,
        "agent": chat.agent or "",
        "channel": chat.channel,
        "lang": chat.lang,
        "at": at,
        "disposition": disposition,
        "assigned_at": since,
        "auto": points,
        "score": points,
        "survey": "",
        "deductions": json.dumps(found, ensure_ascii=False),
        "override": "",
        "override_by": "",
        "override_reason": "",
        "override_at": "",
        "messages": sum(e.get("kind") == "agent" for e in entries),
    }
    key = keys.report_quality(chat.id)
    if not await redis.hsetnx(key, "chat", chat.id):  # inspected already (a repeated close)
        return int(await redis.hget(key, "score") or 0)
    day = buckets.day_of(at, current().tz)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping=record)
        pipe.expire(key, REPORT_QUALITY_TTL)
        for ranking in (keys.report_quality_day(day), keys.report_quality_day(day, buckets.clean(chat.agent))):
            pipe.zadd(ranking, {chat.id: points})
            pipe.expire(ranking, REPORT_QUALITY_TTL)
        await pipe.execute()
    await counters.add(redis, keys, at, buckets.quality(chat.agent or "", points))
    return points


def _view(raw: dict[bytes, bytes]) -> dict[str, Any]:
    g = {k.decode(): v.decode() for k, v in raw.items()}
    return {"chat": g["chat"], "agent": g.get("agent", ""), "channel": g.get("channel", ""), "lang": g.get("lang"),
            "at": float(g.get("at") or 0), "disposition": g.get("disposition", ""), "auto": int(g.get("auto") or 0),
            "score": int(g.get("score") or 0), "survey": int(g["survey"]) if g.get("survey") else None,
            "deductions": json.loads(g.get("deductions") or "[]"), "messages": int(g.get("messages") or 0),
            "override": int(g["override"]) if g.get("override") else None, "override_by": g.get("override_by", ""),
            "override_reason": g.get("override_reason", ""),
            "override_at": float(g["override_at"]) if g.get("override_at") else None}  # fmt: skip


async def _rescore(redis: aioredis.Redis, keys: Keys, view: dict[str, Any], value: int) -> None:
    """A chat's score changed: its day's rankings and its agent's average follow."""
    day = buckets.day_of(view["at"], current().tz)
    async with redis.pipeline(transaction=False) as pipe:
        for ranking in (keys.report_quality_day(day), keys.report_quality_day(day, buckets.clean(view["agent"]))):
            pipe.zadd(ranking, {view["chat"]: value}, xx=True)
        await pipe.execute()
    await counters.add(redis, keys, view["at"], buckets.quality(view["agent"], value - view["score"], 0))


async def survey_arrived(redis: aioredis.Redis, keys: Keys, chat_id: str, survey: int) -> None:
    """The customer's score reached the inspection: the survey item is scored (once) and the agent's average follows
    (an overridden score stays as the supervisor set it)."""
    key = keys.report_quality(chat_id)
    raw = await redis.hgetall(key)
    if not raw or raw.get(b"survey"):
        return
    view = _view(raw)
    r = rubric()
    kept = int((r.raw["survey"].get("scores") or {}).get(survey, r.points("survey")))
    found = list(view["deductions"])
    if kept < r.points("survey"):
        found.append(_deduct("survey", r.points("survey") - kept, detail=str(survey)))
    auto = total(found)
    fields = {"survey": survey, "auto": auto, "deductions": json.dumps(found, ensure_ascii=False)}
    await redis.hset(key, mapping=fields)
    if view["override"] is None:
        await redis.hset(key, "score", auto)
        if auto != view["score"]:
            await _rescore(redis, keys, view, auto)


async def override(redis: aioredis.Redis, keys: Keys, chat_id: str, value: int, reason: str, by: str) -> dict[str, Any]:
    """A supervisor's score for an inspected chat (0–100, with a reason); the agent's average follows."""
    if not 0 <= value <= 100:
        raise BadRequest("'score' must be between 0 and 100", zh="分数须在 0 到 100 之间", field="score")
    if not reason.strip():
        raise BadRequest("'reason' is required", zh="请填写调整原因", field="reason")
    key = keys.report_quality(chat_id)
    raw = await redis.hgetall(key)
    if not raw:
        raise NotFound("no inspection of this chat", zh="没有该会话的质检记录")
    view = _view(raw)
    await redis.hset(key, mapping={"override": value, "score": value, "override_by": by,
                                   "override_reason": reason.strip()[:500], "override_at": time.time()})  # fmt: skip
    if value != view["score"]:
        await _rescore(redis, keys, view, value)
    return _view(await redis.hgetall(key))


async def inspections(redis: aioredis.Redis, keys: Keys, days: list[str], agent: str | None = None,
                      limit: int = 100) -> list[dict[str, Any]]:  # fmt: skip
    """The lowest-scored inspections of the local ``days`` (``agent``: theirs only), at most ``limit``: the lowest
    ``limit`` of each day's ranking, then the lowest of those — never every inspection of the range."""
    async with redis.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.zrange(keys.report_quality_day(day, buckets.clean(agent) if agent else ""), 0, limit - 1,
                        withscores=True)  # fmt: skip
        ranked = [(score, chat.decode()) for rows in await pipe.execute() for chat, score in rows]
    ranked.sort()
    async with redis.pipeline(transaction=False) as pipe:
        for _, chat_id in ranked[:limit]:
            pipe.hgetall(keys.report_quality(chat_id))
        rows = await pipe.execute()
    out = [_view(r) for r in rows if r]
    out.sort(key=lambda v: (v["score"], -v["at"]))
    return out


async def inspection(redis: aioredis.Redis, keys: Keys, chat_id: str) -> dict[str, Any]:
    raw = await redis.hgetall(keys.report_quality(chat_id))
    if not raw:
        raise NotFound("no inspection of this chat", zh="没有该会话的质检记录")
    return _view(raw)
