"""How long the reports take over 90 days × 2,000 conversations a day (the issue's bar: under 1 s).

Seeds the history (``handoff/reports/seed.py``) under a key prefix of its own in ``--redis-url`` (default
``$REDIS_URL``, else a throwaway redis-server), then builds each report as the API does (``report.build`` and the
JSON encoding) several times and prints the median and the slowest; the prefix is deleted afterwards.

    python3 bench/reports_bench.py [--days 90] [--per-day 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.embedded import redis_server_binary
from gateway.rkeys import Keys
from handoff.reports import report, seed
from handoff.reports.config import configure

QUERIES = {
    "service_levels (by day)": ("service_levels", {"group_by": "day"}),
    "service_levels (by month)": ("service_levels", {"group_by": "month"}),
    "satisfaction (trend by week)": ("satisfaction", {"group_by": "week"}),
    "satisfaction (by agent)": ("satisfaction", {"group_by": "agent"}),
    "satisfaction (by district)": ("satisfaction", {"group_by": "district"}),
    "quality (agents + 100 worst)": ("quality", {}),
    "staffing (Erlang C, 24 h)": ("staffing", {}),
}


async def run(url: str, days: int, per_day: int, runs: int) -> None:
    config = configure(None)
    keys = Keys(f"bench:{uuid.uuid4().hex[:8]}:")
    client = aioredis.from_url(url)
    now = time.time()
    started = time.perf_counter()
    history = seed.generate(config, days, per_day, now)
    await seed.write(client, keys, history, now, config.tz)
    print(f"seeded {days} days, {history.conversations:,} conversations, {len(history.inspections):,} inspections "
          f"kept, in {time.perf_counter() - started:.1f} s")  # fmt: skip
    today = dt.datetime.now(config.tz).date()
    span = {"from": (today - dt.timedelta(days=days - 1)).isoformat(), "to": today.isoformat()}
    try:
        print(f"{'report over ' + str(days) + ' days':<34} {'median ms':>10} {'max ms':>8}")
        for label, (name, extra) in QUERIES.items():
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                body = await report.build(name, client, keys, config, {**span, **extra})
                json.dumps(body, ensure_ascii=False)
                times.append((time.perf_counter() - t0) * 1000)
            print(f"{label:<34} {statistics.median(times):>10.1f} {max(times):>8.1f}")
    finally:
        stale = [k async for k in client.scan_iter(match=f"{keys.prefix}*", count=1000)]
        for i in range(0, len(stale), 1000):
            await client.delete(*stale[i : i + 1000])
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--per-day", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    args = parser.parse_args()
    if args.redis_url:
        asyncio.run(run(args.redis_url, args.days, args.per_day, args.runs))
        return
    folder = Path(tempfile.mkdtemp(prefix="gw-reports-bench-"))
    sock = folder / "r.sock"
    proc = subprocess.Popen([redis_server_binary(), "--port", "0", "--unixsocket", str(sock), "--save", "",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        asyncio.run(run(f"unix://{sock}", args.days, args.per_day, args.runs))
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
