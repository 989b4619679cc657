"""A case-timer worker on its own, as an OS process: ``python -m tests.cases.worker_proc URL PREFIX SECONDS``.
Runs the worker every gateway process runs (clocks of 3 s: warning at 1.5 s, head 1.5 s after the breach) for
SECONDS, with a lease of LEASE seconds (default 1: a timer a killed process claimed fires again soon)."""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as aioredis

from gateway import redisconn
from gateway.rkeys import Keys, deployment_keys
from handoff.agents import AgentStore
from handoff.cases.config import load_cases_config
from handoff.cases.service import CaseEngine
from handoff.store import ChatStore
from handoff.tickets import ComplaintTickets


def engine(redis: aioredis.Redis, keys: Keys) -> CaseEngine:
    config = load_cases_config().with_clocks(first_response={"due": 3, "warn_before": 1.5, "head_after": 1.5})
    return CaseEngine(
        redis, keys, config, ComplaintTickets(redis, keys), ChatStore(redis, keys), AgentStore(redis, keys)
    )


async def main(url: str, prefix: str, seconds: float, lease: float) -> None:
    redis = redisconn.client(url)
    worker = engine(redis, deployment_keys(prefix))
    worker.timers.lease = lease
    worker.timers.start(worker.fire)
    print("ready", flush=True)
    await asyncio.sleep(seconds)
    await worker.timers.stop()
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4 else 1.0))
