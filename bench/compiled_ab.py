"""The REST turn with its hot modules compiled by mypyc, against the same code interpreted, in one run: an
experiment, not how the gateway ships (README "Figures", seventh wave: the suite under compilation still fails).

    python bench/compiled_ab.py [--messages 8000] [--rounds 6] [--ref HEAD]

Checks out ``--ref`` twice (temporary git worktrees), compiles ``MODULES`` in one of them with mypyc (needs
``pip install mypy`` and a C compiler; about a minute on 2 cores), starts a gateway from each (``python -m gateway``,
an embedded Redis each) and drives them in alternating rounds with the REST bench's client (``rest_load.drive``: 500
senders, 50 in flight), printing each round's messages/s and server CPU a message (the gateway with its
redis-server) and the medians. ``bots/templates.py`` stays interpreted (Jinja's ``pass_context`` sets an attribute on
a function, which a compiled function cannot take). The type errors mypy reports in these modules come from redis-py's
annotations (``bytes | str`` replies) and are silenced for the build; mypyc still checks the annotated types at run
time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from rest_load import NEVER_THROTTLED, SECRET, drive, free_port, raise_fd_limit, tree_cpu, wait_healthy  # noqa: E402

MODULES = ["gateway/pipeline.py", "gateway/fastredis.py", "gateway/turnlog.py", "gateway/rkeys.py", "gateway/vault.py",
           "gateway/privacy.py", "gateway/edge.py", "bots/engine.py", "bots/context.py", "bots/state.py"]  # fmt: skip
MYPY_INI = """[mypy]
ignore_missing_imports = True
disable_error_code = arg-type, union-attr, assignment, attr-defined, import-untyped
"""


def _worktree(ref: str, into: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(into), ref], check=True)


def _compile(tree: Path) -> None:
    (tree / "mypyc.ini").write_text(MYPY_INI, encoding="utf-8")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "mypyc", "--config-file", "mypyc.ini", *MODULES], cwd=tree,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"mypyc failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    print(f"compiled {len(MODULES)} modules with mypyc in {time.monotonic() - started:.0f} s")


def _start(tree: Path, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["WEBCHAT_JWT_SECRET"] = SECRET
    env.update(NEVER_THROTTLED)
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "--port", str(port), "--data-dir", str(data),
                                "--log-level", "WARNING"], cwd=tree, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
    wait_healthy(f"http://127.0.0.1:{port}", gateway, 120)
    drive(url, 3000, 500, 50)  # warm-up, not counted
    return gateway, url


def _compiled_loaded(pid: int, tree: Path) -> list[str]:
    """The modules of ``tree`` the process has loaded as extension modules (from its memory map)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    names = {Path(line.split()[-1]).name.split(".")[0] for line in maps.splitlines()
             if str(tree) in line and line.endswith(".so")}  # fmt: skip
    return sorted("__mypyc" if name.endswith("__mypyc") else name for name in names)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--ref", default="HEAD", help="the git revision both gateways run")
    args = parser.parse_args()
    raise_fd_limit()
    folder = Path(tempfile.mkdtemp(prefix="gw-compiled-ab-"))
    trees = {"interpreted": folder / "interpreted", "compiled": folder / "compiled"}
    running: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for tree in trees.values():
            _worktree(args.ref, tree)
        _compile(trees["compiled"])
        running = {name: _start(tree, folder / f"data-{name}") for name, tree in trees.items()}
        loaded = _compiled_loaded(running["compiled"][0].pid, trees["compiled"])
        if "__mypyc" not in loaded or "pipeline" not in loaded:  # one that imported the .py files measures nothing
            raise SystemExit(f"the compiled gateway did not load the compiled modules (loaded: {loaded})")
        print(
            f"the compiled gateway runs the compiled modules ({', '.join(m for m in loaded if m != '__mypyc')} "
            "imported from outside their group; the others through it)"
        )
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for round_ in range(args.rounds):
            order = list(trees) if round_ % 2 == 0 else list(trees)[::-1]  # alternating: the drift falls on both
            for name in order:
                gateway, url = running[name]
                processes = [psutil.Process(gateway.pid)]
                before = tree_cpu(processes)
                out = drive(url, args.messages, 500, 50)
                cpu = (tree_cpu(processes) - before) / args.messages * 1e6
                results[name].append((out["rate"], cpu))  # type: ignore[arg-type]
                print(f"round {round_ + 1}: {name:12} {out['rate']:7.0f} msg/s  server CPU {cpu:5.0f} µs a message  "
                      f"p99 {out['p99']:.1f} ms  errors {out['errors']}", flush=True)  # fmt: skip
        rate = {n: statistics.median(r for r, _ in v) for n, v in results.items()}
        cpu = {n: statistics.median(c for _, c in v) for n, v in results.items()}
        print(f"medians: interpreted {rate['interpreted']:.0f} msg/s, {cpu['interpreted']:.0f} µs a message; "
              f"compiled {rate['compiled']:.0f} msg/s, {cpu['compiled']:.0f} µs a message "
              f"({cpu['compiled'] / cpu['interpreted'] - 1:+.1%} CPU, {rate['compiled'] / rate['interpreted'] - 1:+.1%} "
              "msg/s)")  # fmt: skip
    finally:
        for gateway, _ in running.values():
            gateway.terminate()
            gateway.wait()
        for tree in trees.values():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
