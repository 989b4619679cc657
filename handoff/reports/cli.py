"""``gateway report`` and ``gateway demo seed``.

* ``gateway report --from 2026-11-01 --to 2026-11-30 [--format json|csv] [--report NAME …] [--group-by G]`` —
  the monthly report: every report (or the ones named) as one JSON document, or as CSV: each table under a
  ``# <report>/<table>`` line, a blank line between tables;
* ``gateway demo seed [--days 90] [--per-day 2000] [--seed 1]`` — fills the Redis of the configuration (``--redis-url``,
  ``$REDIS_URL``, else the embedded one under ``--data-dir``) with that much history (``handoff/reports/seed.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

import redis.asyncio as aioredis

from gateway.errors import BadRequest
from gateway.redisconn import deployment_client
from gateway.rkeys import Keys
from gateway.settings import Settings, SettingsError, add_cli_arguments, cli_settings
from handoff.reports import report, seed
from handoff.reports.config import ReportsConfigError, configure


def _report_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway report", description="Reports for a range of days")
    parser.add_argument("--from", dest="start", help="first day YYYY-MM-DD (default: 29 days before --to)")
    parser.add_argument("--to", dest="end", help="last day YYYY-MM-DD (default: today)")
    parser.add_argument("--format", choices=("json", "csv"), default="json")
    parser.add_argument("--report", action="append", choices=report.NAMES, help="only this report (repeatable)")
    parser.add_argument("--group-by", help="day|week|month|quarter (satisfaction also: channel, agent, skill, …)")
    add_cli_arguments(parser)
    return parser


def _seed_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway demo seed", description="Fill Redis with demo report history")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--per-day", type=int, default=2000, help="conversations on an ordinary weekday")
    parser.add_argument("--seed", type=int, default=1, help="random seed (the same seed gives the same history)")
    add_cli_arguments(parser)
    return parser


def _redis(settings: Settings) -> AbstractAsyncContextManager[aioredis.Redis]:
    """The deployment's Redis (``REDIS_URL``, else the embedded one), closed afterwards."""
    client = deployment_client(settings.redis.url, settings.data_dir, settings.redis.appendfsync)
    return client  # type: ignore[return-value]


async def _report(args: argparse.Namespace, settings: Settings) -> int:
    config = configure(settings.source)
    query = {k: v for k, v in {"from": args.start, "to": args.end}.items() if v}
    out: dict[str, object] = {}
    async with _redis(settings) as client:
        for name in args.report or report.NAMES:
            q = {**query, "group_by": args.group_by} if args.group_by and name != "staffing" else query
            out[name] = await report.build(name, client, Keys(settings.redis.key_prefix), config, q)
    if args.format == "json":
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    sections = []
    for name, body in out.items():
        for table, rows in report.tables(body).items():  # type: ignore[arg-type]
            sections.append(f"# {name}/{table}\r\n" + report.to_csv(rows).lstrip("\ufeff"))
    sys.stdout.write("\ufeff" + "\r\n".join(sections))
    return 0


async def _seed(args: argparse.Namespace, settings: Settings) -> int:
    if not 1 <= args.days <= 400 or not 1 <= args.per_day <= 100_000:
        print("gateway demo seed: --days must be 1–400 and --per-day 1–100000", file=sys.stderr)
        return 2
    config = configure(settings.source)
    started = time.perf_counter()
    now = time.time()
    history = seed.generate(config, args.days, args.per_day, now, args.seed)
    async with _redis(settings) as client:
        written = await seed.write(client, Keys(settings.redis.key_prefix), history, now, config.tz)
    print(f"seeded {args.days} days: {history.conversations} conversations, {len(history.inspections)} inspections "
          f"kept, {written} buckets, in {time.perf_counter() - started:.1f} s")  # fmt: skip
    return 0


def main(argv: Sequence[str]) -> int:
    """``argv`` after ``gateway``: ``report …`` or ``demo seed …``."""
    argv = list(argv)
    if argv[:1] == ["report"]:
        args, run = _report_parser().parse_args(argv[1:]), _report
    elif argv[:2] == ["demo", "seed"]:
        args, run = _seed_parser().parse_args(argv[2:]), _seed
    else:
        print("usage: gateway report … | gateway demo seed …", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(args, cli_settings(args)))
    except (SettingsError, ReportsConfigError) as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    except BadRequest as exc:
        print(f"gateway {argv[0]}: {exc}", file=sys.stderr)
        return 2
