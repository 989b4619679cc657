"""Proactive broadcast of an incident's notice by SMS (the HTTP SMS provider's local fake): opt-outs honoured,
invalid numbers and repeats counted, a second supervisor's approval above the configured count, quiet hours,
the per-second pace, and a restart in the middle that resumes without sending anything twice."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from handoff.api import SERVICE
from tests.channels.conftest import eventually, http_sms_sections
from tests.channels.test_sms import E164, text_in
from tests.incidents.conftest import open_incident, supervisor

NUMBERS = ["13800138001", "13800138002", "13800138003", "13800138004", "13800138005", "13800138006"]


async def progress(boss: Any, incident_id: str, state: str = "done") -> dict[str, Any] | None:
    found = (await boss.call("GET", f"/api/incidents/{incident_id}"))["broadcasts"]
    return found[0] if found and found[0]["state"] == state else None


async def test_the_notice_by_sms_honours_opt_outs(gateways, http_sms, people, incidents_config):
    incidents_config()
    gw = await gateways(**http_sms_sections(http_sms))
    await text_in(gw, http_sms, "TD")  # 13800138000 opts out of marketing texts
    await http_sms.wait_messages(1)
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss, eta=1893456000)
    body = {"numbers": [E164, NUMBERS[0], NUMBERS[0], "+86 138-0013-8002", "not a number"], "lang": "zh"}
    made = (await boss.call("POST", f"/api/incidents/{incident['id']}/broadcasts", body, status=201))["broadcast"]
    assert made["state"] == "sending" and made["total"] == 3 and made["invalid"] == 1
    done = await eventually(lambda: progress(boss, incident["id"]), timeout=8)
    assert (done["queued"], done["opted_out"], done["duplicates"], done["progress"]) == (2, 1, 0, 1.0)
    sent = await http_sms.wait_messages(3)
    assert {m["to"] for m in sent[1:]} == {"+8613800138001", "+8613800138002"}
    assert all("故障通知" in m["text"] and "朝阳区" in m["text"] and "预计" in m["text"] for m in sent[1:])
    assert http_sms.sent_to(E164) == [sent[0]["text"]]  # only the opt-out's confirmation
    notes = [e["note"] for e in (await boss.call("GET", f"/api/incidents/{incident['id']}"))["timeline"]
             if e["event"] == "note"]  # fmt: skip
    assert any(made["id"] in n and "3 recipients" in n for n in notes)
    await boss.call("POST", f"/api/incidents/{incident['id']}/transition", {"to": "closed"})
    status, refused = await boss.raw("POST", f"/api/incidents/{incident['id']}/broadcasts", body)
    assert status == 409 and refused["error_zh"]


async def test_many_recipients_need_a_second_supervisor(gateways, http_sms, people, incidents_config):
    incidents_config(second_approval_over=3)
    gw = await gateways(**http_sms_sections(http_sms))
    service = gw.app[SERVICE]
    await service.agents.add("super2", "demo-super2-pw", role="supervisor", skills=["zh"], capacity=3,
                             display_name="Super Two")  # fmt: skip
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss)
    made = (await boss.call("POST", f"/api/incidents/{incident['id']}/broadcasts", {"numbers": NUMBERS[:4],
                                                                                       "text": "朝阳区抢修中"},
                            status=201))["broadcast"]  # fmt: skip
    assert made["state"] == "awaiting_approval"
    status, body = await boss.raw("POST", f"/api/incidents/broadcasts/{made['id']}/approve")
    assert status == 403 and "second supervisor" in body["error"] and body["error_zh"]
    assert http_sms.messages == []
    other = people("agent", gw.base, "super2", "demo-super2-pw")
    await other.login()
    approved = (await other.call("POST", f"/api/incidents/broadcasts/{made['id']}/approve"))["broadcast"]
    assert approved["state"] == "sending" and approved["approved_by"] == "super2"
    assert (await other.raw("POST", f"/api/incidents/broadcasts/{made['id']}/approve"))[0] == 409
    await eventually(lambda: progress(boss, incident["id"]), timeout=8)
    assert sorted(m["text"] for m in await http_sms.wait_messages(4)) == ["朝阳区抢修中"] * 4
    plain = people("agent", gw.base, "agent1", "demo-agent1")
    await plain.login()
    assert (await plain.raw("POST", f"/api/incidents/{incident['id']}/broadcasts", {"numbers": NUMBERS}))[0] == 403


async def test_quiet_hours_hold_it_and_a_cancel_ends_it(gateways, http_sms, people, incidents_config):
    now = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
    start, end = (now - dt.timedelta(hours=1)).strftime("%H:%M"), (now + dt.timedelta(hours=1)).strftime("%H:%M")
    incidents_config(quiet_hours=[start, end])
    gw = await gateways(**http_sms_sections(http_sms))
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss)
    made = (await boss.call("POST", f"/api/incidents/{incident['id']}/broadcasts", {"numbers": NUMBERS[:2]},
                            status=201))["broadcast"]  # fmt: skip
    waiting = await eventually(lambda: _quiet(boss, incident["id"]), timeout=5)
    assert waiting["cursor"] == 0 and waiting["queued"] == 0 and http_sms.messages == []
    cancelled = (await boss.call("POST", f"/api/incidents/broadcasts/{made['id']}/cancel"))["broadcast"]
    assert cancelled["state"] == "cancelled"
    assert (await boss.raw("POST", f"/api/incidents/broadcasts/{made['id']}/cancel"))[0] == 409


async def test_a_restart_resumes_without_sending_twice(gateways, http_sms, people, incidents_config):
    incidents_config(per_second=1)
    sections = http_sms_sections(http_sms, per_number_interval=0.01)
    gw = await gateways(**sections)
    port = gw.port
    boss = await supervisor(people, gw.base)
    incident = await open_incident(boss)
    await boss.call("POST", f"/api/incidents/{incident['id']}/broadcasts", {"numbers": NUMBERS}, status=201)
    await http_sms.wait_messages(2, timeout=8)  # one a second: the third is not out yet
    await gw.close()
    stopped_at = len(http_sms.messages)
    assert stopped_at < len(NUMBERS)
    gw2 = await gateways(port=port, **sections)
    boss2 = await supervisor(people, gw2.base)
    done = await eventually(lambda: progress(boss2, incident["id"]), timeout=15)
    assert done["queued"] == len(NUMBERS)
    sent = await http_sms.wait_messages(len(NUMBERS), timeout=8)
    assert sorted(m["to"] for m in sent) == sorted(f"+86{n}" for n in NUMBERS)  # each once


async def _quiet(boss: Any, incident_id: str) -> dict[str, Any] | None:
    found = (await boss.call("GET", f"/api/incidents/{incident_id}"))["broadcasts"]
    return found[0] if found and found[0]["quiet_wait"] else None
