"""``gateway privacy export|delete|purge|consent``: data-subject requests and retention from the command line.

* ``export PHONE [--out FILE]`` — a JSON file (mode 0600) of everything held about the customer, decrypted
  (``gateway/subject.py``); without ``--out``, printed.
* ``delete PHONE [--yes]`` — erase it (cases anonymised, reports' aggregates kept); asks first unless ``--yes``.
* ``purge [--dry-run]`` — remove what is older than the retention settings (``gateway/retention.py``), or count it.
* ``consent PHONE [--channel C --grant|--withdraw]`` — read or record a marketing consent (``gateway/consent.py``).

Each export and deletion is written to the audit trail (who: ``cli:<user>``). The number never reaches a log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway import audit, consent, retention, subject
from gateway.privacy import mask_phone
from gateway.redisconn import deployment_client
from gateway.rkeys import Keys, deployment_keys
from gateway.settings import Settings, SettingsError, add_cli_arguments, cli_settings
from gateway.vault import KeyringError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway privacy", description="Data-subject requests and retention")
    add_cli_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="everything held about a customer, as JSON (decrypted)")
    export.add_argument("phone")
    export.add_argument("--out", type=Path, help="write the JSON here (mode 0600) instead of printing it")
    delete = sub.add_parser("delete", help="erase a customer's data (cases anonymised)")
    delete.add_argument("phone")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge = sub.add_parser("purge", help="remove what is older than the retention settings")
    purge.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    who = sub.add_parser("consent", help="read or record a customer's marketing consent")
    who.add_argument("phone")
    who.add_argument("--channel", default=consent.ALL, choices=consent.CHANNELS)
    choice = who.add_mutually_exclusive_group()
    choice.add_argument("--grant", action="store_true")
    choice.add_argument("--withdraw", action="store_true")
    return parser


async def _export(args: argparse.Namespace, redis: Any, keys: Keys, settings: Settings) -> int:
    secret = await subject.server_secret(redis, keys, settings.server.secret_key)
    finder, hits = await subject.gather(redis, keys, args.phone, settings.sms.country_code, secret)
    document = subject.export_document(finder.phone, hits)
    text = json.dumps(document, ensure_ascii=False, indent=2)
    await audit.record(redis, keys, audit.cli_operator(), "export", finder.phone, "cli", keys_found=len(hits))
    if args.out:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
        print(f"{len(hits)} key(s) about {mask_phone(finder.phone)} written to {args.out}: "
              + ", ".join(f"{k} {v}" for k, v in document["counts"].items()))  # fmt: skip
    else:
        print(text)
    return 0


async def _delete(args: argparse.Namespace, redis: Any, keys: Keys, settings: Settings) -> int:
    secret = await subject.server_secret(redis, keys, settings.server.secret_key)
    finder, hits = await subject.gather(redis, keys, args.phone, settings.sms.country_code, secret)
    masked = mask_phone(finder.phone)
    if not hits:
        print(f"nothing held about {masked}")
    if hits and not args.yes:
        families = ", ".join(sorted({h.family for h in hits}))
        answer = input(f"erase {len(hits)} key(s) about {masked} ({families})? type 'yes': ")
        if answer.strip().lower() != "yes":
            print("nothing erased")
            return 1
    counts = await subject.delete(redis, keys, finder, hits, embedded=not settings.redis.url)
    await audit.record(redis, keys, audit.cli_operator(), "deletion", finder.phone, "cli",
                       keys_deleted=counts["keys_deleted"], entries_removed=counts["entries_removed"],
                       cases_anonymised=counts["cases_anonymised"])  # fmt: skip
    print(
        f"erased {masked}: {counts['keys_deleted']} key(s) deleted, {counts['entries_removed']} entr(ies) removed "
        f"from shared keys, {counts['cases_anonymised']} case(s) anonymised; persistence: {counts['persistence']}"
    )
    return 0


async def _purge(args: argparse.Namespace, redis: Any, keys: Keys, settings: Settings) -> int:
    counts = await retention.purge(redis, keys, settings.privacy, dry_run=args.dry_run)
    days = {kind: getattr(settings.privacy, f"{kind}_days") for kind in retention.KINDS}
    print("would remove" if args.dry_run else "removed")
    for kind, count in counts.items():
        print(f"  {kind:<14} {count:>8}   (older than {days[kind]} days)")
    if not args.dry_run:
        await audit.record(redis, keys, audit.cli_operator(), "retention_purge", None, "cli", **counts)
    return 0


async def _consent(args: argparse.Namespace, redis: Any, keys: Keys, settings: Settings) -> int:
    phone = subject.national(args.phone, settings.sms.country_code)
    if args.grant or args.withdraw:
        await consent.record(redis, keys, phone, args.channel, bool(args.grant), "console", audit.cli_operator())
        await audit.record(redis, keys, audit.cli_operator(), "consent_change", phone, "cli", channel=args.channel,
                           granted=bool(args.grant))  # fmt: skip
    records = await consent.read(redis, keys, phone)
    for channel in consent.CHANNELS:
        allowed = await consent.may_market(redis, keys, phone, channel, settings.privacy.marketing_default)
        mark = records.get(channel)
        how = f" ({mark['source']} at {mark['at']:.0f})" if mark else ""
        print(f"{channel:<9} {'allowed' if allowed else 'withdrawn'}{how}")
    return 0


COMMANDS = {"export": _export, "delete": _delete, "purge": _purge, "consent": _consent}


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    keys = deployment_keys(settings.redis.key_prefix, settings.privacy.key_file, settings.data_dir,
                           settings.server.production)  # fmt: skip
    async with deployment_client(settings.redis.url, settings.data_dir, settings.redis.appendfsync) as redis:
        return await COMMANDS[args.command](args, redis, keys, settings)


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = cli_settings(args)
        return asyncio.run(_run(args, settings))
    except SettingsError as exc:
        print(f"gateway privacy: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyringError as exc:
        print(f"gateway privacy: data keys: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # not a phone number
        print(f"gateway privacy: {exc}", file=sys.stderr)
        return 2
