"""Every report against a hand-computed fixture: events recorded through the recorder's hooks at known times on a
real Redis, then the reports read back (nothing scanned: only the day buckets)."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from reports_helpers import ChatRecord, at

from handoff.reports import quality, recorder, report
from handoff.reports.recorder import TurnStats

RANGE = {"from": "2026-11-01", "to": "2026-11-30"}
TODAY = dt.date(2026, 11, 3)

SEQ = itertools.count(1)  # stream ids' sequence parts ("<ms>-*" is Redis 7; the embedded Redis is 6.2)


async def transcript(rc, key, entries):
    for e in entries:
        await rc.xadd(key, {"e": json.dumps(e, ensure_ascii=False)}, id=f"{int(e['at'] * 1000)}-{next(SEQ)}")


async def record_fixture(rc, keys, redis_url):
    # four conversations (3 web chat, 1 SMS), one automated answer each: 0.4 s, 1.5 s ok; 6 s and a timed-out miss
    stats = TurnStats(rc, keys)
    stats.record("webchat", at(2, 10), 0.4, True, True, False)
    stats.record("webchat", at(2, 10, 1), 1.5, True, True, False)
    await stats.flush()
    stats.record("webchat", at(2, 11), 6.0, True, True, False)
    stats.record("sms", at(2, 11, 5), 0.9, True, True, True)
    stats.record("sms", at(2, 11, 6), 0.0, False, False, False)  # a message to a person: nothing to count
    await stats.close()
    assert stats.pending == {}
    # chat A: queued 10:00, picked up after 10 s by agent1, closed 200 s later, resolved, a good transcript
    a = ChatRecord("chatA", "webchat", keys.conversation_log("webchat", "u1", "chatA"), "agent1", at(2, 10))
    await recorder.handoff_queued(rc, keys, a, a.enqueued_at)
    await recorder.picked_up(rc, keys, a, "agent1", at(2, 10, 0, 10))
    a.assigned_at = at(2, 10, 0, 10)
    await recorder.picked_up(rc, keys, a, "agent1", at(2, 10, 5))  # back in the queue and taken again: counted once
    await transcript(rc, a.log, [
        {"kind": "customer", "text": "宽带掉线", "at": at(2, 10)},
        {"kind": "agent", "text": "您好，请问是哪个地址？", "at": at(2, 10, 0, 30)},
        {"kind": "customer", "text": "海淀区", "at": at(2, 10, 1)},
        {"kind": "agent", "text": "谢谢，已修复。请问还有什么可以帮您？", "at": at(2, 10, 1, 40)},
    ])  # fmt: skip
    await recorder.chat_closed(rc, keys, a, "resolved", at(2, 10, 3, 30))
    # chat B (SMS): queued 11:00, picked up after 40 s by agent2, closed 700 s later, follow_up, a rude transcript
    b = ChatRecord("chatB", "sms", keys.conversation_log("sms", "u2", "chatB"), "agent2", at(2, 11))
    await recorder.handoff_queued(rc, keys, b, b.enqueued_at)
    await recorder.picked_up(rc, keys, b, "agent2", at(2, 11, 0, 40))
    b.assigned_at = at(2, 11, 0, 40)
    await transcript(rc, b.log, [{"kind": "customer", "text": "bill wrong", "at": at(2, 11)},
                                 {"kind": "agent", "text": "I don't know.", "at": at(2, 11, 1)}])  # fmt: skip
    await recorder.chat_closed(rc, keys, b, "follow_up", at(2, 11, 12, 20))
    # complaints: TS1 (network) registered 10:00, analysed and dispatched by the system at once, in progress after
    # 20 min (the first response), replied after 30 h (the solution), resolved, reopened;
    # TS2 (service) registered 11:00 in chat B's queue entry, first reply after 40 min
    await recorder.case_transition(rc, keys, "TS1", "network", at(2, 10), "registered", at(2, 10))
    await recorder.case_transition(rc, keys, "TS1", "network", at(2, 10), "analysed", at(2, 10))
    await recorder.case_transition(rc, keys, "TS1", "network", at(2, 10), "dispatched", at(2, 10))
    await recorder.case_transition(rc, keys, "TS1", "network", at(2, 10), "in_progress", at(2, 10, 20))
    await recorder.case_transition(rc, keys, "TS1", "network", at(2, 10), "replied", at(3, 16))
    await recorder.case_transition(rc, keys, "TS1", "network", at(2, 10), "resolved", at(3, 17))  # not a 2nd one
    await recorder.case_transition(rc, keys, "TS1", "network", at(2, 10), "reopened", at(3, 18))
    await recorder.complaint_registered(rc, keys, "TS2", "service", at(2, 11))
    t2 = ChatRecord("chatC", "webchat", "unused", "agent1", at(2, 11), ticket="TS2", complaint_type="service")
    await recorder.first_reply(rc, keys, t2, at(2, 11, 40))
    await recorder.first_reply(rc, keys, t2, at(2, 11, 50))  # counted once
    # surveys: A 100 (agent1), B 40 (agent2) on the 2nd; another chat of agent1's 80 on the 3rd (district given)
    base = {"comment": None, "channel": "webchat", "skills": ["zh", "general"], "complaint_type": None}
    await recorder.survey(rc, keys, {**base, "conversation": "chatA", "score": 100, "agent": "agent1",
                                     "at": at(2, 10, 4)})  # fmt: skip
    await recorder.survey(rc, keys, {**base, "conversation": "chatB", "score": 40, "agent": "agent2", "channel": "sms",
                                     "skills": ["en", "business"], "complaint_type": "business",
                                     "at": at(2, 11, 13)})  # fmt: skip
    await recorder.survey(rc, keys, {**base, "conversation": "chatD", "score": 80, "agent": "agent1",
                                     "at": at(3, 9)}, district="海淀区")  # fmt: skip


async def test_service_levels_by_hand(rc, keys, config, redis_url):
    await record_fixture(rc, keys, redis_url)
    body = await report.build("service_levels", rc, keys, config, RANGE, TODAY)
    t = body["total"]
    assert (t["conversations"], t["bot_answers"], t["bot_within_target"]) == (4, 4, 0.5)
    assert (t["handoffs"], t["containment"], t["pickups"], t["pickup_within_target"]) == (2, 0.5, 2, 0.5)
    # waits 10 s and 40 s: p50 = 5 + 5·1/1 = 10; p90 = rank 1.8 in (30, 45] = 30 + 15·0.8 = 42
    assert (t["wait_p50"], t["wait_p90"]) == (10.0, 42.0)
    # handling 200 s and 700 s: p50 = 180 + 120·1 = 300; p90 = 600 + 300·0.8 = 840; average 450
    assert (t["handled"], t["handle_p50"], t["handle_p90"], t["handle_average"]) == (2, 300.0, 840.0, 450.0)
    assert (t["complaints"], t["complaints_per_1000"]) == (2, 500.0)
    assert (t["first_responses"], t["first_response_within_target"]) == (2, 0.5)  # 20 min yes, 40 min no
    assert (t["solutions"], t["solution_within_target"], t["reopened"], t["reopen_rate"]) == (1, 0.0, 1, 1.0)
    assert len(body["periods"]) == 30  # every day of the range, empty ones too (a chart's gaps are real)
    days = {p["period"]: p for p in body["periods"] if p["conversations"] or p["solutions"]}
    assert set(days) == {"2026-11-02", "2026-11-03"} and days["2026-11-03"]["solutions"] == 1
    monthly = await report.build("service_levels", rc, keys, config, {**RANGE, "group_by": "month"}, TODAY)
    assert [p["period"] for p in monthly["periods"]] == ["2026-11"]
    channels = {c["channel"]: c for c in body["channels"]}
    assert channels["sms"] == {"channel": "sms", "conversations": 1, "handoffs": 1, "containment": 0.0}


async def test_satisfaction_by_hand(rc, keys, config, redis_url):
    await record_fixture(rc, keys, redis_url)
    body = await report.build("satisfaction", rc, keys, config, RANGE, TODAY)
    assert body["total"] == {"surveys": 3, "average": 73.3333, "levels": {"5": 1, "4": 1, "3": 0, "2": 1, "1": 0},
                             "satisfied": 0.6667}  # fmt: skip
    answered = [(g["group"], g["surveys"], g["average"]) for g in body["groups"] if g["surveys"]]
    assert answered == [("2026-11-02", 2, 70.0), ("2026-11-03", 1, 80.0)]
    agents = await report.build("satisfaction", rc, keys, config, {**RANGE, "group_by": "agent"}, TODAY)
    assert [(g["group"], g["average"]) for g in agents["groups"]] == [("agent1", 90.0), ("agent2", 40.0)]
    skills = await report.build("satisfaction", rc, keys, config, {**RANGE, "group_by": "skill"}, TODAY)
    assert {g["group"]: g["surveys"] for g in skills["groups"]} == {"general": 2, "business": 1}
    kinds = await report.build("satisfaction", rc, keys, config, {**RANGE, "group_by": "complaint_type"}, TODAY)
    assert {g["group"]: g["average"] for g in kinds["groups"]} == {"none": 90.0, "business": 40.0}
    districts = await report.build("satisfaction", rc, keys, config, {**RANGE, "group_by": "district"}, TODAY)
    assert {g["group"]: g["surveys"] for g in districts["groups"]} == {"unknown": 2, "海淀区": 1}
    quarter = await report.build("satisfaction", rc, keys, config, {**RANGE, "group_by": "quarter"}, TODAY)
    assert [g["group"] for g in quarter["groups"]] == ["2026-Q4"]


async def test_quality_by_hand_and_the_override(rc, keys, config, redis_url):
    await record_fixture(rc, keys, redis_url)
    body = await report.build("quality", rc, keys, config, RANGE, TODAY)
    # A: every item kept, survey 100 → 100. B: no greeting −10, no closing −10, no courtesy −10, "i don't know"
    # −20, follow_up −10 (20 − 10 kept), survey 40 −10 → 30
    assert [(a["agent"], a["inspected"], a["average"]) for a in body["agents"]] == [("agent2", 1, 30.0),
                                                                                    ("agent1", 1, 100.0)]  # fmt: skip
    worst = body["inspections"][0]
    assert worst["chat"] == "chatB" and worst["score"] == 30 and worst["survey"] == 40
    assert {d["item"] for d in worst["deductions"]} == {"greeting", "closing", "courtesy", "forbidden", "resolution",
                                                        "survey"}  # fmt: skip
    assert next(d for d in worst["deductions"] if d["item"] == "forbidden")["line"] == "I don't know."
    changed = await quality.override(rc, keys, "chatB", 50, "the customer was abusive", "super1")
    assert (changed["score"], changed["auto"], changed["override_by"]) == (50, 30, "super1")
    after = await report.build("quality", rc, keys, config, RANGE, TODAY)
    assert [(a["agent"], a["average"]) for a in after["agents"]] == [("agent2", 50.0), ("agent1", 100.0)]
    assert after["total"] == {"inspected": 2, "average": 75.0}
    await quality.survey_arrived(rc, keys, "chatB", 20)  # a second score never re-scores an inspection
    assert (await quality.inspection(rc, keys, "chatB"))["score"] == 50


async def test_staffing_from_the_fixture(rc, keys, config, redis_url):
    await record_fixture(rc, keys, redis_url)
    body = await report.build("staffing", rc, keys, config, {"from": "2026-11-02", "to": "2026-11-03"}, TODAY)
    ten, eleven = body["hours"][10], body["hours"][11]
    # one arrival at 10:00 and one at 11:00 over two days: 0.5 an hour; handled 200 s and 700 s at those hours
    assert (ten["arrivals_per_hour"], ten["handle_seconds"], eleven["handle_seconds"]) == (0.5, 200.0, 700.0)
    assert ten["traffic_erlangs"] == round(0.5 * 200 / 3600, 3) and ten["agents_needed"] == 1
    assert body["hours"][3]["agents_needed"] == 0


async def test_csv_tables_and_bad_ranges(rc, keys, config, redis_url):
    from gateway.errors import BadRequest

    await record_fixture(rc, keys, redis_url)
    body = await report.build("satisfaction", rc, keys, config, {**RANGE, "group_by": "agent"}, TODAY)
    text = report.to_csv(report.tables(body)["groups"])
    assert text.startswith("\ufeffgroup,surveys,average,satisfied,level_5,level_4,level_3,level_2,level_1\r\n")
    assert "agent1,2,90.0,1.0,1,1,0,0,0" in text
    for query, field in (
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-11-05", "to": "2026-11-01"}, "from"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "from"),
        ({"group_by": "planet"}, "group_by"),
    ):
        with pytest.raises(BadRequest) as err:
            await report.build("satisfaction", rc, keys, config, query, TODAY)
        assert err.value.field == field
