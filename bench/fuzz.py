"""The long fuzz run: thousands of malformed requests per inbound endpoint against real gateway processes.

    python bench/fuzz.py [--cases 2000] [--seconds 1200] [--concurrency 4] [--hang 5] [--only rest,telegram]
                         [--examples 12] [--keep]

Starts what ``tests/security/test_fuzz.py`` starts (``tests/security/harness.py``): the providers' fakes on
loopback, then two gateway processes (``python -m gateway``) with every channel secret set — ``main`` (WeChat
in safe mode) and ``plain`` (WeChat in plaintext mode) — on ``REDIS_URL`` under a key prefix of the run's own
(deleted afterwards), or on their embedded Redis when ``REDIS_URL`` is not set. Loopback only.

Then, endpoint after endpoint, up to ``--cases`` cases drawn by the generators of ``tests/security/fuzzcases.py``
(hypothesis), ``--concurrency`` in flight, each endpoint within its share of ``--seconds``. Per endpoint it
prints the cases sent, the answers by class (2xx, 4xx, 5xx), hangs (no answer within ``--hang`` seconds),
abnormal WebSocket closes (1006/1011), other WebSocket failures (a bad frame left without an error frame, a
close after a protocol-valid frame), 4xx answers that are not JSON, and the classes of the exceptions the
gateways logged meanwhile (each traceback's last line); then, for each endpoint that failed, the input classes
behind the failures with an example. Exit status 1 when anything failed (a 5xx, a hang, a WebSocket failure or
an unexpected exception in the log), else 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.security.fuzzcases import BY_NAME, ENDPOINTS  # noqa: E402
from tests.security.harness import Harness, Tally, nlu_cached, run_endpoint  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/fuzz.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000, help="cases per endpoint (default 2000)")
    parser.add_argument("--seconds", type=float, default=1200, help="time for the whole run, shared by the endpoints")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    parser.add_argument("--hang", type=float, default=5.0, help="seconds without an answer that count as a hang")
    parser.add_argument("--only", default="", help="comma-separated endpoint names (default: all)")
    parser.add_argument("--examples", type=int, default=3, help="failure classes shown per failing endpoint")
    parser.add_argument("--keep", action="store_true", help="keep the gateways' data directories and logs")
    parser.add_argument("--list", action="store_true", help="list the endpoints and exit")
    return parser.parse_args(argv)


def table(tallies: list[Tally]) -> str:
    head = (f"{'endpoint':<20} {'cases':>6} {'2xx':>6} {'4xx':>6} {'5xx':>5} {'hangs':>5} {'ws-abn':>6} {'ws-other':>8} "
            f"{'4xx-not-json':>12} {'slowest':>8}  exceptions in the gateways' log")  # fmt: skip
    rows = [head, "-" * len(head)]
    for t in tallies:
        ws_other = sum(1 for f in t.failures if f.failure.startswith("ws ") and not f.failure.startswith("ws abnormal"))
        kinds = ", ".join(f"{k} ×{n}" for k, n in t.exception_kinds().most_common(4)) or "-"
        rows.append(f"{t.endpoint:<20} {t.cases:>6} {t.buckets['2xx'] + t.buckets['101']:>6} {t.buckets['4xx']:>6} "
                    f"{t.server_errors:>5} {t.hangs:>5} {t.ws_abnormal:>6} {ws_other:>8} {t.not_json:>12} "
                    f"{t.slowest:>7.2f}s  {kinds}{t.stopped}")  # fmt: skip
    total = Counter[str]()
    for t in tallies:
        total.update({"cases": t.cases, "5xx": t.server_errors, "hangs": t.hangs, "ws": t.ws_abnormal,
                      "failed": len(t.failures), "logged": len(t.errors), "aiohttp": t.client_errors_logged})  # fmt: skip
    rows.append("-" * len(head))
    rows.append(f"{'total':<20} {total['cases']:>6} cases over {len(tallies)} endpoints: {total['5xx']} 5xx, "
                f"{total['hangs']} hangs, {total['ws']} abnormal WebSocket closes, {total['failed']} failed cases in "
                f"all, {total['logged']} unexpected exceptions logged ({total['aiohttp']} malformed requests logged "
                "by aiohttp's parser, answered 400)")  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for e in ENDPOINTS:
            print(f"{e.name:<20} {e.what}")
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()] or [e.name for e in ENDPOINTS]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        print(f"unknown endpoint(s): {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    if not nlu_cached():
        print("note: no cached NLU model in var/test-nlu; the gateways train it first (a minute or two)")
    redis_url = os.environ.get("REDIS_URL") or None
    harness = Harness(redis_url=redis_url, hang=args.hang, servers=("main", "plain") if "wechat-plain" in names
                      else ("main",))  # fmt: skip
    started = time.monotonic()
    tallies: list[Tally] = []
    try:
        harness.start()
        print(f"fuzz: {len(names)} endpoints, up to {args.cases} cases each, {args.concurrency} in flight, hang = "
              f"{args.hang:g} s, {args.seconds:g} s in all; gateways ready in {time.monotonic() - started:.1f} s "
              f"({'REDIS_URL' if redis_url else 'embedded Redis'}; logs in {harness.folder})", flush=True)  # fmt: skip
        budget = args.seconds / len(names)
        for i, name in enumerate(names):
            endpoint = BY_NAME[name]
            # an endpoint left early (its cases ran out) leaves its time to the ones after it
            left = args.seconds - (time.monotonic() - started)
            share = max(budget, left / (len(names) - i)) if left > 0 else 1.0
            tally = run_endpoint(harness, endpoint, args.cases, share, concurrency=args.concurrency)
            tallies.append(tally)
            print(f"  {name:<20} {tally.cases:>6} cases in {tally.seconds:6.1f} s: {dict(tally.buckets)}"
                  f"{' FAILED ' + str(len(tally.failures)) if tally.failures else ''}"
                  f"{' (' + str(len(tally.errors)) + ' logged)' if tally.errors else ''}", flush=True)  # fmt: skip
        health = harness.healthz()
    finally:
        harness.stop()
    print()
    print(table(tallies))
    print(f"/healthz afterwards: {health}; {time.monotonic() - started:.0f} s in all")
    plain = Counter[str]()
    for t in tallies:
        plain.update(t.not_json_kinds)
    if plain:
        print("4xx answered without a JSON body (status, Content-Type): "
              + ", ".join(f"{k} ×{n}" for k, n in plain.most_common(6)))  # fmt: skip
    failing = [t for t in tallies if t.failures or t.errors]
    for t in failing:
        print()
        print(t.describe(args.examples))
    if not args.keep:
        shutil.rmtree(harness.folder, ignore_errors=True)
    ok = not failing and set(health.values()) == {200}
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
