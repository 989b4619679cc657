"""Instructions per turn of the message pipeline, counted by valgrind's callgrind: a figure that does not drift.

    python bench/turn_instructions.py [--turns 1200] [--text 你好] [--against REF]

On a shared machine the speed drifts by up to 2× within minutes, so a change of a few percent in the REST turn cannot
be seen in messages/s or CPU time. Instructions can: the same code, inputs and environment give the same count (to
within about 1 % here, whatever else the machine is doing). This runs the turn the REST channel runs — the core
pipeline (``Pipeline.handle``: accept script, NLU, bot flows and demo back end, handoff, sealing, finish script)
inside one process, 20 turns in flight, on the lean connection to a real Redis — under callgrind with the counting
switched on for the measured turns only (not the start-up, not a warm-up of the same number of turns), and prints
thousands of instructions per turn.

``--against REF`` measures a git revision (checked out in a temporary worktree) in the same run, before this tree:
the baseline. The bench's texts are ``rest_load.py``'s twelve (every other sender signed in as a demo customer is
not part of this harness: the turns are anonymous unless the text binds); ``--text`` measures one text alone.

Not the HTTP edge (aiohttp, the middlewares, JSON in and out: about a quarter of a REST turn's instructions and
more of its time — system calls are not instructions). Instructions are not time either: simple C loops (AES,
base64) run many instructions a nanosecond, the interpreter fewer; use it to compare two versions of the same code.
Needs ``valgrind`` (Debian's package) and ``redis-server`` (or ``REDIS_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from rest_load import TEXTS  # noqa: E402  (the same texts as the REST bench)


def _child(turns: int, texts: list[str], redis_url: str, prefix: str) -> None:
    """Runs inside callgrind, in the tree under test (its path first on sys.path)."""
    import uvloop
    from aiohttp import web

    from gateway.app import PIPELINE, create_app
    from gateway.models import InboundMessage
    from gateway.settings import load_settings

    async def main() -> None:
        data = tempfile.mkdtemp(prefix="gw-instr-")
        settings = load_settings(None, server={"data_dir": data, "port": 0},
                                 redis={"url": redis_url, "key_prefix": prefix})  # fmt: skip
        runner = web.AppRunner(create_app(settings))
        await runner.setup()
        pipeline = runner.app[PIPELINE]

        async def drive(run: str) -> None:
            numbers = iter(range(turns))

            async def worker() -> None:
                for i in numbers:
                    sender = f"load-{i % 500}"
                    await pipeline.handle(InboundMessage("rest", sender, sender, texts[i % len(texts)], f"{run}-{i}",
                                                         time.time(), {}))  # fmt: skip

            await asyncio.gather(*(worker() for _ in range(20)))

        await drive("warm")
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], stdout=subprocess.DEVNULL, check=True)
        await asyncio.sleep(1.0)  # callgrind takes the command up between two blocks of work
        await drive("measured")
        subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], stdout=subprocess.DEVNULL, check=True)
        await asyncio.sleep(1.0)
        await runner.cleanup()
        shutil.rmtree(data, ignore_errors=True)

    uvloop.install()
    asyncio.run(main())


def measure(tree: Path, turns: int, texts: list[str], redis_url: str) -> float:
    """Thousands of instructions per turn of ``tree``'s pipeline."""
    with tempfile.TemporaryDirectory(prefix="gw-callgrind-") as folder:
        out = Path(folder) / "callgrind.out"
        prefix = f"bench:{uuid.uuid4().hex[:8]}:"
        code = (f"import sys; sys.path.insert(0, {str(tree)!r}); sys.path.insert(1, {str(ROOT / 'bench')!r}); "
                f"import turn_instructions as t; t._child({turns}, {texts!r}, {redis_url!r}, {prefix!r})")  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PYTHONPATH")}
        proc = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                               sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True)  # fmt: skip
        _delete(redis_url, prefix)
        totals = [int(line.split()[1]) for line in out.read_text().splitlines() if line.startswith("totals:")] \
            if out.exists() else []  # fmt: skip
        if proc.returncode != 0 or not totals:
            raise RuntimeError(f"callgrind run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return max(totals) / turns / 1000


def _delete(url: str, prefix: str) -> None:
    sys.path.insert(0, str(ROOT))
    from gateway.redisconn import delete_prefixed

    delete_prefixed(url, prefix)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=1200)
    parser.add_argument("--text", help="one text instead of the REST bench's twelve")
    parser.add_argument("--against", help="a git revision measured first, in the same run (the baseline)")
    args = parser.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        raise SystemExit("turn_instructions: valgrind is not installed (Debian: apt-get install valgrind)")
    texts = [args.text] if args.text else TEXTS
    with tempfile.TemporaryDirectory(prefix="gw-instr-redis-") as folder:
        redis_url, server = os.environ.get("REDIS_URL", ""), None
        if not redis_url:
            sys.path.insert(0, str(ROOT))
            from gateway.embedded import redis_server_binary

            sock = Path(folder) / "r.sock"
            server = subprocess.Popen([redis_server_binary(), "--port", "0", "--unixsocket", str(sock), "--dir", folder,
                                       "--save", ""], stdout=subprocess.DEVNULL)  # fmt: skip
            while not sock.exists():
                time.sleep(0.05)
            redis_url = f"unix://{sock}"
        try:
            what = f"{args.turns} turns, {'one text' if args.text else f'{len(texts)} texts'}, 20 in flight"
            print(f"pipeline instructions per turn (callgrind; {what})")
            if args.against:
                with tempfile.TemporaryDirectory(prefix="gw-base-") as base:
                    subprocess.run(["git", "worktree", "add", "--detach", "-q", base, args.against], cwd=ROOT,
                                   check=True)  # fmt: skip
                    try:
                        print(f"  {args.against:>12}: {measure(Path(base), args.turns, texts, redis_url):8.1f} k")
                    finally:
                        subprocess.run(["git", "worktree", "remove", "--force", base], cwd=ROOT, check=False)
            print(f"  {'this tree':>12}: {measure(ROOT, args.turns, texts, redis_url):8.1f} k")
        finally:
            if server is not None:
                server.terminate()
                server.wait(10)


if __name__ == "__main__":
    main()
