"""``gateway demo seed``: realistic history for the reports, so a newcomer's dashboard is not empty.

Conversations arrive with a daily rhythm (quiet nights, a morning and an evening peak) and a weekly one (weekends
quieter); about one in seven goes to a person, who waits longer at the peaks; some are complaints with their first
response, solution and the odd reopening; about half the chats get a survey, each agent with their own typical
score; every chat closed is inspected (kept one by one, as the live inspection does, for the list and the
review). The events go through the same ``buckets`` functions the live recorder uses, added up per hour and day in
memory and written with one script call per bucket. Deterministic for a given ``seed``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from gateway.rkeys import REPORT_DAY_TTL, REPORT_HOUR_TTL, REPORT_QUALITY_TTL, Keys
from handoff.reports import buckets
from handoff.reports.config import ReportsConfig

CHANNELS = {"webchat": 40, "wechat": 25, "weibo": 8, "sms": 10, "telegram": 5, "rest": 7, "forum": 5}
AGENTS = {
    "agent1": 86,
    "agent2": 80,
    "super1": 90,
    "agent3": 74,
    "agent4": 83,
    "agent5": 69,
    "agent6": 88,
    "agent7": 78,
    "agent8": 84,
    "agent9": 72,
    "agent10": 81,
    "agent11": 77,
}  # name → typical survey score
COMPLAINTS = {"network": 45, "business": 30, "service": 18, "other": 7}
DISTRICTS = ("海淀区", "朝阳区", "东城区", "西城区", "丰台区", "石景山区", "通州区", "昌平区", "大兴区", "顺义区")
HOURLY = (
    0.6,
    0.35,
    0.2,
    0.15,
    0.15,
    0.3,
    0.9,
    2.2,
    4.0,
    5.6,
    6.4,
    6.2,
    5.0,
    5.4,
    6.0,
    5.8,
    5.2,
    4.6,
    4.4,
    5.2,
    5.8,
    5.0,
    3.2,
    1.6,
)  # share of a day's conversations per local hour (weights)
WEEKDAY = (1.0, 1.02, 1.0, 0.98, 1.05, 0.8, 0.72)
CHUNK = 500  # commands per round trip when writing
# script: add field/increment pairs to one hash and set its TTL. KEYS: hash. ARGV: ttl, field, inc, …
BULK = """
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
LINES = {
    "greeting": ("请问有什么问题？", "What is the problem?"),
    "closing": ("好的。", "OK."),
    "forbidden": ("这个不归我管，你找别人吧。", "That is not my problem."),
    "response_gap": ("稍等，我查一下。", "Wait, let me check."),
}


@dataclass
class History:
    hours: dict[int, Counter[str]] = field(default_factory=dict)
    days: dict[str, Counter[str]] = field(default_factory=dict)
    inspections: list[dict[str, object]] = field(default_factory=list)
    conversations: int = 0

    def add(self, at: float, tz: dt.tzinfo, pairs: buckets.Pairs, day_only: buckets.Pairs | None = None) -> None:
        hour = self.hours.setdefault(buckets.hour_of(at), Counter())
        day = self.days.setdefault(buckets.day_of(at, tz), Counter())
        for name, inc in pairs:
            hour[name] += inc
            day[name] += inc
        for name, inc in day_only or ():
            day[name] += inc


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def _score(rng: random.Random, typical: int) -> int:
    """A survey score around an agent's typical one (5 levels)."""
    value = rng.gauss(typical, 18)
    return min(buckets.LEVELS, key=lambda s: abs(s - value))


def _chat(h: History, rng: random.Random, config: ReportsConfig, at: float, busy: float, detail: bool) -> None:
    """One conversation that went to a person: queued, picked up, handled, maybe a complaint and a survey."""
    t, tz = config.targets, config.tz
    channel = _pick(rng, CHANNELS)
    local_hour = buckets.local(at, tz).hour
    h.add(at, tz, buckets.queued(channel), buckets.hour_of_day("queued", 0, local_hour))
    on_shift = max(2, round(len(AGENTS) * HOURLY[local_hour] / max(HOURLY) * 0.6))  # a rota: fewer at night
    day = buckets.local(at, tz).toordinal()
    agent = list(AGENTS)[(day * 5 + rng.randrange(on_shift)) % len(AGENTS)]
    wait = rng.expovariate(1 / (6 + 14 * busy))
    picked = at + wait
    h.add(picked, tz, buckets.picked_up(agent, wait, t))
    handle = min(rng.lognormvariate(math.log(360), 0.55), 7000)
    end = picked + handle
    h.add(end, tz, buckets.closed(handle), buckets.hour_of_day("closed", handle, buckets.local(end, tz).hour))
    complaint = rng.choice(list(COMPLAINTS)) if rng.random() < 0.14 else None
    if complaint:
        h.add(at, tz, buckets.complaint(complaint))
        first = rng.lognormvariate(math.log(600), 0.7)
        h.add(at + first, tz, buckets.first_response(first, t))
        solution = rng.lognormvariate(math.log(8 * 3600), 0.8)
        h.add(at + solution, tz, buckets.solved(solution, t))
        if rng.random() < 0.05:
            h.add(at + solution + 86400, tz, buckets.reopened())
    typical = AGENTS[agent]
    survey = _score(rng, typical) if rng.random() < 0.5 else None
    if survey is not None:
        skill = {"network": "network", "business": "business", "service": "service"}.get(complaint or "", "general")
        groups = {"channel": [channel], "agent": [agent], "skill": [skill], "complaint_type": [complaint or "none"],
                  "district": [rng.choice(DISTRICTS)]}  # fmt: skip
        h.add(end + 30, tz, buckets.survey(survey, groups))
    deductions = _deductions(rng, typical, survey)
    points = max(0, 100 - sum(int(d["points"]) for d in deductions))
    h.add(end, tz, buckets.quality(agent, points))
    if detail:
        h.inspections.append({
            "chat": f"demo{int(at)}{rng.randrange(10**6):06d}", "agent": agent, "channel": channel, "lang": "zh",
            "at": end, "disposition": "resolved" if not complaint else "complaint_registered", "assigned_at": picked,
            "auto": points, "score": points, "survey": survey if survey is not None else "",
            "deductions": json.dumps(deductions, ensure_ascii=False), "override": "", "override_by": "",
            "override_reason": "", "override_at": "", "messages": rng.randint(3, 14),
        })  # fmt: skip


def _deductions(rng: random.Random, typical: int, survey: int | None) -> list[dict[str, object]]:
    from handoff.reports.quality import REASONS

    careless = (100 - typical) / 40
    out: list[dict[str, object]] = []
    for item, points, chance in (("greeting", 10, 0.5), ("closing", 10, 0.6), ("forbidden", 20, 0.08),
                                 ("response_gap", 5, 0.9)):  # fmt: skip
        if rng.random() < careless * chance:
            zh_line = LINES[item][0]
            en, zh = REASONS[item]
            out.append({"item": item, "points": points, "reason": en, "reason_zh": zh, "line": zh_line, "at": None})
    if survey is not None and survey <= 40:
        en, zh = REASONS["survey"]
        out.append({"item": "survey", "points": 10, "reason": f"{en} ({survey})", "reason_zh": f"{zh}（{survey}）",
                    "line": "", "at": None})  # fmt: skip
    return out


def generate(config: ReportsConfig, days: int, per_day: int, now: float, seed: int = 1,
             detail_days: int = 90) -> History:  # fmt: skip
    """``days`` of history up to ``now`` (the current day up to its current hour)."""
    rng = random.Random(seed)
    tz, t = config.tz, config.targets
    h = History()
    today = dt.datetime.fromtimestamp(now, tz).date()
    weights = sum(HOURLY)
    for back in range(days - 1, -1, -1):
        day = today - dt.timedelta(days=back)
        volume = per_day * WEEKDAY[day.weekday()] * rng.uniform(0.9, 1.1)
        for hour in range(24):
            start = dt.datetime.combine(day, dt.time(hour), tz).timestamp()
            if start >= now:
                break
            share = HOURLY[hour] / weights
            count = round(rng.gauss(volume * share, math.sqrt(volume * share + 1)))
            busy = HOURLY[hour] / max(HOURLY)
            for _ in range(max(count, 0)):
                at = start + rng.random() * 3600
                if at >= now:
                    continue
                h.conversations += 1
                channel = _pick(rng, CHANNELS)
                h.add(at, tz, [("conv", 1), (f"conv|{channel}", 1)])
                for turn in range(rng.choice((1, 1, 2, 2, 3, 4))):
                    seconds = rng.lognormvariate(math.log(0.5), 0.9)
                    h.add(at + turn * 20, tz, buckets.turn(channel, seconds, False, True, seconds > 4.5, t))
                if rng.random() < 0.14:
                    _chat(h, rng, config, at, busy, back < detail_days)
    return h


async def write(redis: aioredis.Redis, keys: Keys, history: History, now: float, tz: dt.tzinfo) -> int:
    """Add the history's buckets (to whatever is there) and keep its inspections, a few hundred commands per round
    trip; the number of buckets written."""
    await redis.script_load(BULK)
    sha = hashlib.sha1(BULK.encode()).hexdigest()
    commands: list[tuple[object, ...]] = []
    for hour, counts in history.hours.items():
        ttl = int(REPORT_HOUR_TTL - (now - hour * 3600))
        if ttl > 60:  # an hour older than the hourly buckets' retention is in its day only
            commands.append(("EVALSHA", sha, 1, keys.report_hour(hour), ttl, *_flat(counts)))
    for day, counts in history.days.items():
        commands.append(("EVALSHA", sha, 1, keys.report_day(day), REPORT_DAY_TTL, *_flat(counts)))
    written = len(commands)
    for record in history.inspections:
        chat, day = str(record["chat"]), buckets.day_of(float(record["at"]), tz)  # type: ignore[arg-type]
        commands.append(("HSET", keys.report_quality(chat), *[x for kv in record.items() for x in kv]))
        commands.append(("EXPIRE", keys.report_quality(chat), REPORT_QUALITY_TTL))
        for ranking in (keys.report_quality_day(day), keys.report_quality_day(day, str(record["agent"]))):
            commands.append(("ZADD", ranking, int(record["score"]), chat))  # type: ignore[call-overload, arg-type]
            commands.append(("EXPIRE", ranking, REPORT_QUALITY_TTL))
    for start in range(0, len(commands), CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            for command in commands[start : start + CHUNK]:
                pipe.execute_command(*command)
            await pipe.execute()
    return written


def _flat(counts: Counter[str]) -> list[object]:
    out: list[object] = []
    for name, inc in counts.items():
        if inc:
            out += [name, inc]
    return out
