"""Every transition rule: the rule book itself (each pair of stages, allowed or refused with the allowed ones, the
reopen window), then over HTTP — a case taken through every stage by its responsible agent with each step
attributed and timestamped, 409 JSON errors (zh and en, with ``allowed``) for the invalid ones, who may move and
read a case, the list's filters, and the customer told at ``replied`` and ``resolved`` on their own channel."""

from __future__ import annotations

import time

import pytest

from handoff.cases import model
from tests.cases.conftest import bot, complain, drive

WINDOW = 7 * 86400


@pytest.mark.parametrize("current", model.STAGES)
@pytest.mark.parametrize("to", model.STAGES)
def test_the_rule_book(current, to):
    expected = {
        "registered": {"analysed"}, "analysed": {"dispatched"}, "dispatched": {"in_progress"},
        "in_progress": {"replied"}, "replied": {"resolved", "in_progress"}, "resolved": {"followed_up", "reopened"},
        "followed_up": {"closed", "reopened"}, "closed": {"reopened"}, "reopened": {"dispatched", "in_progress"},
    }[current]  # fmt: skip
    now = time.time()
    if to in expected:
        model.check(current, to, resolved_at=now - 60, now=now, reopen_window=WINDOW)
        return
    with pytest.raises(model.TransitionRefused) as refused:
        model.check(current, to, resolved_at=now - 60, now=now, reopen_window=WINDOW)
    assert refused.value.status == 409 and set(refused.value.allowed) == expected
    assert all(s in refused.value.message for s in expected) and refused.value.zh


@pytest.mark.parametrize("current", model.REOPENABLE)
def test_reopening_only_within_the_window(current):
    now = time.time()
    model.check(current, "reopened", resolved_at=now - WINDOW + 5, now=now, reopen_window=WINDOW)
    with pytest.raises(model.TransitionRefused) as late:
        model.check(current, "reopened", resolved_at=now - WINDOW - 5, now=now, reopen_window=WINDOW)
    assert "reopen window" in late.value.message and "reopened" not in late.value.allowed and "7天" in late.value.zh


async def test_a_case_through_every_stage_over_http(make_gateway, people, quiet_config):
    gw = await make_gateway(quiet_config)
    agent, other = people("agent", gw.base, "agent1", "demo-agent1"), people("agent", gw.base, "agent2", "demo-agent2")
    supervisor = people("agent", gw.base, "super1", "demo-super1")
    for a in (agent, other, supervisor):
        await a.login()
    customer = people("customer", gw.base)
    await customer.connect()
    ticket = await complain(customer, "投诉：手机信号很差，打电话老是断线")  # network → agent1

    # invalid: 409 with the allowed stages, in both languages
    status, body = await agent.raw("POST", f"/api/cases/{ticket}/transition", {"to": "resolved"})
    assert status == 409 and body["allowed"] == ["in_progress"] and body["field"] == "to"
    assert "'dispatched' cannot go to 'resolved'" in body["error"] and "已派单" in body["error_zh"]
    status, body = await agent.raw("POST", f"/api/cases/{ticket}/transition", {"to": "nowhere"})
    assert status == 400 and body["field"] == "to"
    status, body = await agent.raw("POST", "/api/cases/TS../transition", {"to": "in_progress"})
    assert status in (400, 404)
    status, body = await agent.raw("POST", "/api/cases/TS2000010100001/transition", {"to": "in_progress"})
    assert status == 404 and body["error_zh"]

    # not the responsible agent: may neither read nor move it; the supervisor may read every case
    assert (await other.raw("GET", f"/api/cases/{ticket}"))[0] == 403
    assert (await other.raw("POST", f"/api/cases/{ticket}/transition", {"to": "in_progress"}))[0] == 403
    assert (await other.raw("GET", "/api/cases?assignee=agent1"))[0] == 403
    assert (await other.call("GET", "/api/cases"))["cases"] == []
    assert [c["ticket"] for c in (await agent.call("GET", "/api/cases"))["cases"]] == [ticket]
    assert [c["ticket"] for c in (await supervisor.call("GET", "/api/cases?type=network&status=dispatched"))["cases"]] \
        == [ticket]  # fmt: skip
    assert (await supervisor.call("GET", "/api/cases?type=billing_typo", status=400))["field"] == "type"
    assert (await supervisor.call("GET", "/api/cases?status=resolved"))["cases"] == []
    assert (await supervisor.call("GET", "/api/cases?type=business"))["cases"] == []

    case = await drive(agent, ticket, "in_progress")
    assert case["clocks"][0]["met_at"] and not case["clocks"][0]["breached"] and case["allowed"] == ["replied"]
    case = await agent.call("POST", f"/api/cases/{ticket}/transition",
                            {"to": "replied", "note": "已派工程师", "reply": "工程师明天上午上门检修基站"})  # fmt: skip
    told = await customer.expect(lambda f: ticket in f.get("text", "") and "处理答复" in f["text"], timeout=10)
    assert "工程师明天上午上门检修基站" in told["text"]
    assert case["clocks"][1]["met_at"] and set(case["allowed"]) == {"resolved", "in_progress"}
    case = await drive(agent, ticket, "in_progress", "replied", "resolved")
    told = await customer.expect(lambda f: ticket in f.get("text", "") and "处理完毕" in f["text"], timeout=10)
    assert case["next_promise"] == "followup"
    await agent.call("POST", f"/api/cases/{ticket}/notes", {"text": "基站已修复"})
    case = await drive(agent, ticket, "followed_up", "closed")
    assert case["allowed"] == ["reopened"] and case["notes"][0]["text"] == "基站已修复"
    case = await drive(agent, ticket, "reopened")
    assert case["reopens"] == 1 and not case["clocks"][1]["met_at"]
    assert set(case["allowed"]) == {"dispatched", "in_progress"}
    case = await supervisor.call("POST", f"/api/cases/{ticket}/transition", {"to": "dispatched", "assignee": "agent2"})
    assert case["assignee"] == "agent2"
    assert (await agent.raw("POST", f"/api/cases/{ticket}/transition", {"to": "in_progress"}))[0] == 403
    assignee = {"to": "in_progress", "assignee": "agent1"}
    assert (await other.raw("POST", f"/api/cases/{ticket}/transition", assignee))[0] == 403
    await drive(other, ticket, "in_progress")

    history = case["history"]
    stages = [h["to"] for h in history if h["kind"] == "transition"]
    assert stages == ["registered", "analysed", "dispatched", "in_progress", "replied", "in_progress", "replied",
                      "resolved", "followed_up", "closed", "reopened", "dispatched"]  # fmt: skip
    by = [(h["by_kind"], h["by"]) for h in history if h["kind"] == "transition"][3:]
    assert by[:-1] == [("agent", "agent1")] * 8 and by[-1] == ("agent", "super1")
    times = [h["at"] for h in history]
    assert times == sorted(times)
    assert not any(bot(f) and "内部" in f.get("text", "") for f in list(customer.frames._queue))  # notes stay inside
