"""The early-warning detector on synthetic traffic: four weeks of a daily rhythm (quiet nights, busy evenings,
day-to-day noise) stay quiet at every hour of a normal day; a surge in one district fires once (per district and
per channel), with its evidence; one process judges each interval; end to end, supervisors get the alert on their
console and accept it into an incident."""

from __future__ import annotations

import asyncio
import random

import redis.asyncio as aioredis

from gateway.rkeys import Keys, deployment_keys
from handoff.incidents.config import DetectorConfig
from handoff.incidents.detector import HOUR, Counts, Detector
from tests.channels.conftest import eventually
from tests.incidents.conftest import CHAOYANG, rest, supervisor

RHYTHM = [2, 1, 1, 1, 1, 2, 4, 8, 12, 14, 15, 14, 13, 14, 15, 16, 18, 22, 28, 30, 26, 18, 10, 5]  # per hour of day
DISTRICTS = {CHAOYANG: 1.0, "海淀区": 0.6, "丰台区": 0.3}  # each district's share of the rhythm
CHANNELS = ("webchat", "sms", "wechat")
START = 1_790_000_000 // 86400 * 86400  # midnight UTC of a day in 2026: day 0 of the synthetic traffic


def normal_day(counts: Counts, day: int, rng: random.Random, hours: range = range(24)) -> None:
    for hour in hours:
        for district, share in DISTRICTS.items():
            n = max(0, round(RHYTHM[hour] * share * rng.uniform(0.6, 1.5)))
            for i in range(n):
                kind = "complaint" if i % 3 == 0 else "network_status"
                counts.add(district, CHANNELS[i % 3], kind, "", at=START + day * 86400 + hour * HOUR + 60 * (i % 59))


async def seeded(redis_client: aioredis.Redis, keys: Keys, days: int = 28) -> None:
    counts, rng = Counts(), random.Random(7)
    for day in range(days):
        normal_day(counts, day, rng)
    await counts.flush(redis_client, keys)


async def test_quiet_on_the_daily_rhythm_fires_on_a_surge(redis_client, key_prefix):
    keys = deployment_keys(key_prefix)
    await seeded(redis_client, keys)
    detector = Detector(redis_client, keys, DetectorConfig(factor=5.0, min_count=20, cooldown=7200))
    # day 28: an ordinary day, judged at the end of every hour (nights, the evening peak)
    counts, rng = Counts(), random.Random(11)
    normal_day(counts, 28, rng)
    await counts.flush(redis_client, keys)
    for hour in range(24):
        assert await detector.evaluate(START + 28 * 86400 + hour * HOUR + HOUR - 1) == [], hour
    # day 29, 15:00–16:00: a cable cut in Chaoyang (ten times its rhythm, on every channel), the rest as always
    normal_day(counts, 29, rng, range(16))
    surge = START + 29 * 86400 + 15 * HOUR
    for i in range(RHYTHM[15] * 10):
        counts.add(CHAOYANG, CHANNELS[i % 3], "complaint", f"家里宽带断了，手机号13800138000 #{i}", at=surge + i)
    await counts.flush(redis_client, keys)
    proposals = await detector.evaluate(surge + HOUR - 1)
    scopes = {p["district"] + ("|" + p["channel"] if p["channel"] else "") for p in proposals}
    assert scopes == {CHAOYANG, f"{CHAOYANG}|webchat", f"{CHAOYANG}|sms", f"{CHAOYANG}|wechat"}
    whole = next(p for p in proposals if p["channel"] is None)
    assert whole["count"] >= RHYTHM[15] * 10 and whole["baseline"] < RHYTHM[15] * 1.5 and whole["factor"] > 5
    assert len(whole["history"]) == 28 and whole["samples"] and "13800138000" not in str(whole["samples"])
    assert await detector.evaluate(surge + HOUR - 1) == []  # judged once per cooldown
    assert [p["id"] for p in await detector.proposals()] and len(await detector.proposals()) == 4
    # an open incident already covering a district: nothing proposed for it
    other = Detector(redis_client, deployment_keys(key_prefix + "x:"), DetectorConfig())
    assert await other.evaluate(surge + HOUR - 1, covered={CHAOYANG}) == []


async def test_a_quiet_district_needs_the_minimum_count(redis_client, key_prefix):
    keys = deployment_keys(key_prefix)
    detector = Detector(redis_client, keys, DetectorConfig(factor=5.0, min_count=20, floor=1.0))
    now = START + 10 * 86400 + 12 * HOUR
    counts = Counts()
    for i in range(12):  # twelve times its (empty) baseline, but only 12 messages
        counts.add("东城区", "sms", "network_status", "", at=now - 600 + i)
    await counts.flush(redis_client, keys)
    assert await detector.evaluate(now) == []
    for i in range(10):
        counts.add("东城区", "sms", "network_status", "", at=now - 300 + i)
    await counts.flush(redis_client, keys)
    assert {p["district"] for p in await detector.evaluate(now)} == {"东城区"}


async def test_one_process_judges_each_interval(redis_client, key_prefix):
    keys = deployment_keys(key_prefix)
    processes = [Detector(redis_client, keys, DetectorConfig(interval=60)) for _ in range(4)]
    now = START + 5 * 86400 + 30
    claims = await asyncio.gather(*(d.claim(now) for d in processes))
    assert sorted(claims) == [False, False, False, True]
    assert sum(await asyncio.gather(*(d.claim(now + 60) for d in processes))) == 1  # the next interval


async def test_supervisors_get_the_alert_and_accept_it(make_gateway, people):
    gw = await make_gateway()
    boss = await supervisor(people, gw.base)
    await boss.connect()
    for i in range(22):  # no history: a surge of network questions in Chaoyang
        await rest(gw.base, f"s{i}", "is there an outage in Chaoyang")
    proposals = await eventually(lambda: _detect(boss), timeout=10)
    frame = await boss.expect(lambda f: f.get("type") == "incident_proposal")
    assert frame["proposal"]["district"] == CHAOYANG and frame["proposal"]["count"] >= 20
    proposal = next(p for p in proposals if p["channel"] is None)
    listed = (await boss.call("GET", "/api/incidents"))["proposals"]
    assert proposal["id"] in {p["id"] for p in listed}
    accepted = await boss.call("POST", f"/api/incidents/proposals/{proposal['id']}/accept", status=201)
    assert accepted["incident"]["districts"] == [CHAOYANG] and accepted["incident"]["source"] == "detector"
    assert accepted["proposal"]["state"] == "accepted"
    assert accepted["proposal"]["incident"] == accepted["incident"]["id"]
    status, again = await boss.raw("POST", f"/api/incidents/proposals/{proposal['id']}/dismiss")
    assert status == 409 and again["error_zh"]
    others = [p for p in proposals if p["id"] != proposal["id"]]
    dismissed = await boss.call("POST", f"/api/incidents/proposals/{others[0]['id']}/dismiss")
    assert dismissed["proposal"]["state"] == "dismissed"
    timeline = (await boss.call("GET", f"/api/incidents/{accepted['incident']['id']}"))["timeline"]
    assert "network messages" in timeline[0]["note"]


async def _detect(boss):
    """Run the detector now; the worker may have run it first (every interval): then its proposals are listed."""
    found = (await boss.call("POST", "/api/incidents/detect"))["proposals"]
    return found or (await boss.call("GET", "/api/incidents"))["proposals"] or None
