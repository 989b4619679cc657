"""``gateway keys new|status|rotate|reencrypt``: the data keys that encrypt customer data at rest.

* ``new [PATH]`` — write a key file (one data key, the index key; mode 600). Keep a copy apart from the data backups:
  data sealed under a lost key is lost.
* ``status`` — where the keys come from, the active key id, and how many stored values each key id sealed.
* ``rotate`` — a new active key at the head of the key file; the running gateways take it within a second (they
  follow the file), then every value is re-sealed under it in the background (``gateway/rekey.py``), without downtime.
  Keys from ``GATEWAY_DATA_KEYS`` cannot be changed by the tool: put the new key first in that variable, restart the
  processes one by one, then run ``reencrypt``.
* ``reencrypt`` — the re-sealing pass alone (repeated until no value is left under an old key, at most 5 passes).

An old key may leave the file once ``status`` counts no value under it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from gateway import audit, rekey
from gateway.redisconn import deployment_client
from gateway.rkeys import Keys
from gateway.settings import Settings, SettingsError, add_cli_arguments, cli_settings
from gateway.vault import KeyringError, add_key, default_key_file, deployment_keyring, new_key_file

FOLLOW_WAIT = 3.0  # seconds for every running process to re-read the key file (they look every second)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway keys", description="The data keys (encryption at rest)")
    add_cli_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="write a new key file")
    new.add_argument("path", nargs="?", type=Path, help="default: privacy.key_file, else ~/.config/gateway/keys")
    sub.add_parser("status", help="the active key and the values each key sealed")
    sub.add_parser("rotate", help="a new active key, then every value re-sealed under it")
    sub.add_parser("reencrypt", help="re-seal every value under the active key")
    return parser


async def _reencrypt(settings: Settings, keys: Keys, rotated_to: str = "") -> int:
    async with deployment_client(settings.redis.url, settings.data_dir, settings.redis.appendfsync) as redis:
        if rotated_to:  # in the audit trail before the long part: who rotated, to which key
            await audit.record(redis, keys, audit.cli_operator(), "key_rotation", new_key=rotated_to)  # type: ignore[arg-type]
        for n in range(1, 6):
            started = time.monotonic()
            done = await rekey.reencrypt(redis, keys)  # type: ignore[arg-type]
            print(f"pass {n}: {done.keys_seen} keys, {done.resealed} values re-sealed, {done.changed_meanwhile} "
                  f"changed meanwhile, {sum(done.kept.values())} kept ({dict(done.kept)}) in "
                  f"{time.monotonic() - started:.1f} s", flush=True)  # fmt: skip
            if not done.changed_meanwhile:
                break
        counts = await rekey.census(redis, keys)  # type: ignore[arg-type]
    assert keys.vault is not None
    old = {kid: n for kid, n in counts.items() if kid != keys.vault.active}
    print(f"values by key: {dict(counts)}; active {keys.vault.active}")
    print("no value left under an old key: old keys may leave the key file" if not old
          else f"still under old keys: {old}")  # fmt: skip
    return 0


async def _status(settings: Settings, keys: Keys, source: str) -> int:
    assert keys.vault is not None
    print(f"keys from {source}; active key {keys.vault.active}; keys in the ring: {', '.join(keys.vault.key_ids)}")
    async with deployment_client(settings.redis.url, settings.data_dir, settings.redis.appendfsync) as redis:
        counts = await rekey.census(redis, keys)  # type: ignore[arg-type]
    for kid in keys.vault.key_ids:
        print(f"  {kid}: {counts.get(kid, 0)} values{' (active)' if kid == keys.vault.active else ''}")
    unknown = {k: n for k, n in counts.items() if k not in keys.vault.key_ids}
    if unknown:
        print(f"  values under keys not in the ring (they cannot be read): {unknown}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = cli_settings(args)
    except SettingsError as exc:
        print(f"gateway keys: configuration error: {exc}", file=sys.stderr)
        return 2
    path = Path(os.environ.get("GATEWAY_KEY_FILE") or settings.privacy.key_file or default_key_file(os.environ))
    try:
        if args.command == "new":
            target = (args.path or path).expanduser()
            new_key_file(target)
            print(f"wrote {target} (mode 600): keep a copy apart from the data backups")
            return 0
        ring, source = deployment_keyring(settings.privacy.key_file, settings.data_dir, settings.server.production)
        keys = Keys(settings.redis.key_prefix, ring)
        if args.command == "status":
            return asyncio.run(_status(settings, keys, source))
        kid = ""
        if args.command == "rotate":
            if ring.path is None:
                print("gateway keys: the keys come from GATEWAY_DATA_KEYS: put a new key first in it, restart the "
                      "processes one by one, then run 'gateway keys reencrypt'", file=sys.stderr)  # fmt: skip
                return 2
            kid = add_key(ring.path)
            ring.refresh()
            print(
                f"new active key {kid} in {ring.path}; waiting {FOLLOW_WAIT:g} s for the running gateways to take it",
                flush=True,
            )
            time.sleep(FOLLOW_WAIT)
        return asyncio.run(_reencrypt(settings, keys, kid if args.command == "rotate" else ""))
    except (KeyringError, FileExistsError) as exc:
        print(f"gateway keys: {exc}", file=sys.stderr)
        return 2
