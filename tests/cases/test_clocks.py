"""The case clocks: a warning before the breach, escalation to the department's supervisor at the breach and to its
head later, recorded once in the history and pushed to the consoles; a clock met in time stops; with two gateway
processes each timer fires exactly once; timers due while no process ran fire when one starts again (a warning
whose breach is past by then is dropped)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

from tests.cases.conftest import complain
from tests.handoff.conftest import WebCustomer


def short(config, due: float = 3.0, warn_before: float = 1.5, head_after: float = 1.5):
    """Case clocks of a few seconds, and a department head of its own (head1) for the network department."""
    cases = config.cases.with_clocks(first_response={"due": due, "warn_before": warn_before, "head_after": head_after})
    depts = {**cases.departments, "network_ops": dataclasses.replace(cases.departments["network_ops"], head="head1")}
    return config.replace(cases=cases.replace(departments=depts))


def events(case, name):
    return [h for h in case["history"] if h.get("event") == name]


async def wait_for(check, timeout: float = 15.0):
    async with asyncio.timeout(timeout):
        while not (value := await check()):
            await asyncio.sleep(0.1)
        return value


async def test_warning_breach_and_escalation_to_supervisor_then_head(make_gateway, people, quiet_config, key_prefix,
                                                                     redis_client):  # fmt: skip
    gw = await make_gateway(short(quiet_config))
    agent, supervisor = people("agent", gw.base, "agent1", "demo-agent1"), people("agent", gw.base, "super1",
                                                                                 "demo-super1")  # fmt: skip
    for a in (agent, supervisor):
        await a.login()
        await a.connect()
    customer = people("customer", gw.base)
    await customer.connect()
    ticket = await complain(customer, "投诉网络太差，4G信号一格都没有")
    is_alert = lambda stage: lambda f: f.get("type") == "case_alert" and f["ticket"] == ticket and f["stage"] == stage  # noqa: E731
    warn = await agent.expect(is_alert("warn"), timeout=10)
    assert warn["clock"] == "first_response"
    await agent.expect(is_alert("breach"), timeout=10)
    await supervisor.expect(is_alert("breach"), timeout=10)
    await supervisor.expect(is_alert("head"), timeout=10)

    case = await supervisor.call("GET", f"/api/cases/{ticket}")
    assert case["escalation"] == 2 and case["escalated_to"] == "head1"
    (warning,) = events(case, "sla_warning")
    (breach,) = events(case, "sla_breach")
    assert warning["clock"] == breach["clock"] == "first_response" and warning["by_kind"] == "system"
    assert warning["at"] < breach["at"] and breach["at"] >= case["clocks"][0]["due_at"] - 0.05
    assert [(e["level"], e["to"]) for e in events(case, "escalated")] == [(1, "super1"), (2, "head1")]
    assert case["clocks"][0]["breached"] and not case["clocks"][1]["breached"]  # the 24 h clock still runs
    stream = [json.loads(f[b"e"]) for _, f in await redis_client.xrange(f"{key_prefix}{{cases}}:events")]
    assert [e.get("event") for e in stream if e.get("event")] == ["sla_warning", "sla_breach", "escalated", "escalated"]
    timers = await redis_client.zrange(f"{key_prefix}{{cases}}:timers", 0, -1)
    assert {t.decode().split("|", 1)[1] for t in timers} == {"solution|warn", "solution|breach"}


async def test_a_clock_met_in_time_stops(make_gateway, people, quiet_config, redis_client, key_prefix):
    gw = await make_gateway(short(quiet_config, due=4.0, warn_before=1.0))
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    customer = people("customer", gw.base)
    await customer.connect()
    ticket = await complain(customer, "投诉网络信号差")
    case = await agent.call("POST", f"/api/cases/{ticket}/transition", {"to": "in_progress"})
    assert case["clocks"][0]["met_at"] < case["clocks"][0]["due_at"]
    timers = [t.decode() for t in await redis_client.zrange(f"{key_prefix}{{cases}}:timers", 0, -1)]
    assert not any("first_response" in t for t in timers) and f"{ticket}|solution|breach" in timers
    await asyncio.sleep(4.5)
    case = await agent.call("GET", f"/api/cases/{ticket}")
    assert not events(case, "sla_warning") and not events(case, "sla_breach") and case["escalation"] == 0
    assert not case["clocks"][0]["breached"]


async def test_two_processes_fire_each_timer_once(make_gateway, people, quiet_config):
    config = short(quiet_config, due=2.0, warn_before=1.0, head_after=1.0)
    gw1, gw2 = await make_gateway(config), await make_gateway(config)
    supervisor = people("agent", gw1.base, "super1", "demo-super1")
    await supervisor.login()
    tickets = []
    for i, gw in enumerate((gw1, gw2, gw1, gw2)):
        customer = people("customer", gw.base, f"1380013800{i}")
        await customer.connect()
        tickets.append(await complain(customer, "投诉网络信号差，打不了电话"))

    async def all_escalated():
        cases = [await supervisor.call("GET", f"/api/cases/{t}") for t in tickets]
        return cases if all(c["escalation"] == 2 for c in cases) else None

    cases = await wait_for(all_escalated, timeout=20)
    await asyncio.sleep(1.5)  # time for a second firing, were there one
    for case in [await supervisor.call("GET", f"/api/cases/{t}") for t in tickets]:
        assert len(events(case, "sla_warning")) == 1 and len(events(case, "sla_breach")) == 1
        assert [e["level"] for e in events(case, "escalated")] == [1, 2]
    assert len(cases) == 4


async def test_timers_due_while_no_process_ran_fire_after_the_restart(make_gateway, people, quiet_config):
    config = short(quiet_config, due=5.0, warn_before=1.0, head_after=60.0)
    gw = await make_gateway(config)
    customer = WebCustomer(gw.base)
    await customer.connect()
    ticket = await complain(customer, "投诉网络信号差")
    await customer.close()
    await gw.close()  # the only process stops before the warning
    stopped = time.time()
    await asyncio.sleep(5.5)
    gw = await make_gateway(config)
    supervisor = people("agent", gw.base, "super1", "demo-super1")
    await supervisor.login()

    async def breached():
        case = await supervisor.call("GET", f"/api/cases/{ticket}")
        return case if events(case, "sla_breach") else None

    case = await wait_for(breached, timeout=10)
    (breach,) = events(case, "sla_breach")
    assert breach["at"] > stopped + 5  # fired by the new process
    assert events(case, "sla_warning") == []  # its warning came due meanwhile too: past the breach, dropped
    assert case["escalation"] == 1 and case["escalated_to"] == "super1"
