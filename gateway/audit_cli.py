"""``gateway audit``: read the audit trail (gateway/audit.py) from the command line, newest first.

    gateway audit [--since 2026-12-01] [--until 2026-12-06] [--who agent1] [--what reveal]
                  [--customer 13800138000] [--limit 200] [--json]

``--customer`` takes the number and looks for its keyed hash (the trail holds no number), so the deployment's
index key must be at hand (the same key file or environment the server uses). The read is itself recorded
(``audit_export``, by ``cli:<user>``).
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from gateway import audit
from gateway.redisconn import deployment_client
from gateway.rkeys import deployment_keys
from gateway.settings import Settings, SettingsError, add_cli_arguments, cli_settings
from gateway.vault import KeyringError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway audit", description="Read the audit trail, newest first")
    add_cli_arguments(parser)
    parser.add_argument("--since", help="from this day (YYYY-MM-DD, UTC) or epoch seconds")
    parser.add_argument("--until", help="up to this day, inclusive (YYYY-MM-DD, UTC) or epoch seconds")
    parser.add_argument("--who", default="", help="an agent's sign-in name, system or cli:<user>")
    parser.add_argument("--what", default="", help="an event kind: " + ", ".join(audit.KINDS))
    parser.add_argument("--customer", default="", metavar="PHONE", help="the customer's phone number")
    parser.add_argument("--limit", type=int, default=200, help="at most this many entries (default 200)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def _when(value: str | None, end: bool) -> float | None:
    if not value:
        return None
    try:
        if value.replace(".", "", 1).isdigit():
            when = float(value)
        else:
            day = calendar.timegm(time.strptime(value, "%Y-%m-%d"))
            when = day + 86399.999 if end else float(day)
    except (ValueError, OverflowError):
        when = float("inf")
    if when > 4_102_444_800:  # 2100-01-01
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or epoch seconds before 2100")
    return when


def _line(e: dict[str, Any]) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"]))
    details = json.dumps(e["details"], ensure_ascii=False) if e["details"] else ""
    parts = [stamp, f"{e['who']:<16}", f"{e['what']:<15}", f"{e['customer'] or '-':<24}", f"{e['where'] or '-':<15}"]
    return "  ".join(parts) + (f"  reason: {e['reason']}" if e["reason"] else "") + (f"  {details}" if details else "")


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    keys = deployment_keys(settings.redis.key_prefix, settings.privacy.key_file, settings.data_dir,
                           settings.server.production)  # fmt: skip
    query = audit.Query(args.who.strip(), args.what.strip(),
                        audit.customer_ref(keys, args.customer) if args.customer.strip() else "",
                        _when(args.since, False), _when(args.until, True))  # fmt: skip
    async with deployment_client(settings.redis.url, settings.data_dir, settings.redis.appendfsync) as client:
        redis: Any = client  # a server or a cluster: the same stream commands
        entries = await audit.collect(redis, keys, query, args.limit)
        filters = {k: v for k, v in (("who", args.who), ("what", args.what), ("since", args.since),
                                     ("until", args.until)) if v}  # fmt: skip
        await audit.record(redis, keys, audit.cli_operator(), "audit_export", args.customer.strip() or None, via="cli",
                           format="json" if args.json else "text", entries=len(entries), filters=filters)  # fmt: skip
    if args.json:
        for e in entries:
            print(json.dumps(e, ensure_ascii=False))
    else:
        print(f"{'time (UTC)':<19}  {'who':<16}  {'what':<15}  {'customer':<24}  {'where':<15}")
        for e in entries:
            print(_line(e))
    return 0


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    if args.what and not audit.WHAT.fullmatch(args.what):
        print(f"gateway audit: --what {args.what!r} is not an event kind", file=sys.stderr)
        return 2
    if not 1 <= args.limit <= audit.EXPORT_MAX:
        print(f"gateway audit: --limit must be between 1 and {audit.EXPORT_MAX}", file=sys.stderr)
        return 2
    try:
        settings = cli_settings(args)
        return asyncio.run(_run(args, settings))
    except (SettingsError, ValueError) as exc:  # a bad file or date, or the keys (KeyringError is a ValueError)
        kind = "data keys" if isinstance(exc, KeyringError) else "error"
        print(f"gateway audit: {kind}: {exc}", file=sys.stderr)
        return 2
