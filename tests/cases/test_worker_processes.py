"""The case timers' worker in three OS processes on one Redis (one of them killed with SIGKILL on the way): every
breach and escalation of every case happens exactly once, a warning at most once (one whose claim died with the
killed process comes round after its breach and is dropped); a case a dead process left at ``registered`` is
analysed and dispatched by the worker."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from bots.ports import HandoffRequest
from gateway.rkeys import deployment_keys
from tests.cases.worker_proc import engine

ROOT = Path(__file__).resolve().parents[2]


async def test_three_worker_processes_fire_each_timer_once(redis_url, redis_client, key_prefix):
    cases = engine(redis_client, deployment_keys(key_prefix))  # registers only: no worker in this process
    procs = [subprocess.Popen([sys.executable, "-m", "tests.cases.worker_proc", redis_url, key_prefix, "20"],
                              cwd=ROOT, stdout=subprocess.PIPE) for _ in range(3)]  # fmt: skip
    try:
        for p in procs:
            assert (await asyncio.to_thread(p.stdout.readline)).strip() == b"ready"  # type: ignore[union-attr]
        tickets = []
        for i in range(6):
            request = HandoffRequest(f"conv{i}", "webchat", f"visitor{i}", None, "complaint", "zh", "信号很差", 0,
                                     "network")  # fmt: skip
            case, linked = await cases.register(request, source="bot", by_kind="bot", by="webchat")
            assert not linked
            tickets.append(case["ticket"])
        await asyncio.sleep(1.6)
        procs[0].send_signal(signal.SIGKILL)  # one dies while the warnings fire; the others carry on

        async def escalated() -> bool:
            return all(int(c["escalation"]) == 2 for c in await cases.store.many(tickets))

        async with asyncio.timeout(30):
            while not await escalated():
                await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # room for a second firing, were there one
        warned = 0
        for ticket in tickets:
            events = [h.get("event") for h in await cases.store.history(ticket) if h["kind"] == "event"]
            assert events in (["sla_warning", "sla_breach", "escalated", "escalated"],
                              ["sla_breach", "escalated", "escalated"]), (ticket, events)  # fmt: skip
            warned += events[0] == "sla_warning"
        assert warned >= len(tickets) - 1  # only the killed process's claim, if any, can have held one back
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            await asyncio.to_thread(p.wait, 10)


async def test_a_case_left_registered_by_a_dead_process_is_analysed_and_dispatched(redis_client, key_prefix):
    """What a process that died right after registering leaves: the case at ``registered`` and its intake timer."""
    import time

    cases = engine(redis_client, deployment_keys(key_prefix))
    now = time.time()
    fields = {"ticket": "TS2026010100042", "status": "registered", "source": "bot", "owner": "webchat:v9",
              "channel": "webchat", "sender": "v9", "phone": "", "lang": "zh", "summary": "我要找律师起诉你们",
              "conversation": "c9", "type": "service", "severity": "", "urgency": 0, "created_at": now,
              "updated_at": now, "escalation": 0, "reopens": 0, "chats": [], "linked": [],
              "first_response_due": now + 1800, "solution_due": now + 86400,
              "registered_by": "bot:webchat"}  # fmt: skip
    entry = {"kind": "transition", "ticket": fields["ticket"], "from": "", "to": "registered", "at": now,
             "by_kind": "bot", "by": "webchat"}  # fmt: skip
    assert await cases.store.create(fields["ticket"], "webchat:v9", fields, entry) == (True, fields["ticket"])
    await cases.timers.schedule(fields["ticket"], "intake", "check", now)
    cases.timers.start(cases.fire)
    try:
        async with asyncio.timeout(10):
            while (case := await cases.store.get(fields["ticket"]))["status"] != "dispatched":
                await asyncio.sleep(0.1)
    finally:
        await cases.timers.stop()
    assert case["severity"] == "high" and case["department"] == "service"  # 律师: high
    assert [(h["to"], h["by"]) for h in await cases.store.history(case["ticket"])][1:] == [
        ("analysed", "analysis"), ("dispatched", "dispatch")]  # fmt: skip
