"""The case timers' worker in three OS processes on one Redis (one of them killed with SIGKILL on the way): every
warning, breach and escalation of every case happens exactly once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from bots.ports import HandoffRequest
from gateway.rkeys import Keys
from tests.cases.worker_proc import engine

ROOT = Path(__file__).resolve().parents[2]


async def test_three_worker_processes_fire_each_timer_once(redis_url, redis_client, key_prefix):
    cases = engine(redis_client, Keys(key_prefix))  # registers only: no worker in this process
    tickets = []
    for i in range(6):
        request = HandoffRequest(
            f"conv{i}", "webchat", f"visitor{i}", None, "complaint", "zh", "信号很差", 0, "network"
        )
        case, linked = await cases.register(request, source="bot", by_kind="bot", by="webchat")
        assert not linked
        tickets.append(case["ticket"])
    procs = [subprocess.Popen([sys.executable, "-m", "tests.cases.worker_proc", redis_url, key_prefix, "12"],
                              cwd=ROOT, stdout=subprocess.PIPE) for _ in range(3)]  # fmt: skip
    try:
        for p in procs:
            assert (await asyncio.to_thread(p.stdout.readline)).strip() == b"ready"  # type: ignore[union-attr]
        procs[0].send_signal(signal.SIGKILL)  # one dies at once; the others carry on

        async def escalated() -> bool:
            return all(int(c["escalation"]) == 2 for c in await cases.store.many(tickets))

        async with asyncio.timeout(30):
            while not await escalated():
                await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # room for a second firing, were there one
        for ticket in tickets:
            events = [h.get("event") for h in await cases.store.history(ticket) if h["kind"] == "event"]
            assert events == ["sla_warning", "sla_breach", "escalated", "escalated"], (ticket, events)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            await asyncio.to_thread(p.wait, 10)
