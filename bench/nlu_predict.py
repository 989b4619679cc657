"""Marginal cost per message of ``python -m nlu predict`` (JSON lines in, JSON lines out).

    python bench/nlu_predict.py [--messages 10000] [--cache-dir DIR]

Feeds N messages (the held-out sets' texts and the speed benchmark's messages, repeated) to one
``python -m nlu predict`` process and, separately, one message to another; the marginal cost per
message is (time for N − time for 1) / (N − 1), in wall time and in the process's CPU time (which a
loaded machine disturbs far less). The p99 is taken over the gaps between output lines (each line
is flushed as it is written), so it includes the JSON encoding and the pipe.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def corpus(count: int) -> list[str]:
    from bench.nlu_bench import MESSAGES

    texts = list(MESSAGES)
    for folder in (ROOT / "nlu" / "heldout", ROOT / "tests" / "data"):
        for path in sorted(folder.glob("*.jsonl")) if folder.exists() else []:
            texts += [
                json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
            ]
    return [texts[i % len(texts)] for i in range(count)]


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(texts: list[str], cache_dir: str | None) -> tuple[float, float, list[float]]:
    """Wall time, CPU time of the predict process, and the gaps between its output lines (µs)."""
    cpu = _child_cpu()
    command = [sys.executable, "-m", "nlu"] + (["--cache-dir", cache_dir] if cache_dir else []) + ["predict"]
    payload = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts).encode()
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    assert proc.stdin is not None and proc.stdout is not None
    writer = threading.Thread(target=lambda: (proc.stdin.write(payload), proc.stdin.close()))  # type: ignore[union-attr]
    writer.start()
    stamps = [time.perf_counter() for _ in iter(proc.stdout.readline, b"")]
    proc.wait()
    writer.join()
    if proc.returncode or len(stamps) != len(texts):
        raise SystemExit(f"predict failed: rc={proc.returncode}, {len(stamps)} lines for {len(texts)} messages")
    wall = time.perf_counter() - started
    return wall, _child_cpu() - cpu, [(b - a) * 1e6 for a, b in pairwise(stamps)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--cache-dir")
    args = parser.parse_args()
    texts = corpus(args.messages)
    run(texts[:1], args.cache_dir)  # trains the model if there is none, warms the disk cache
    one, one_cpu, _ = run(texts[:1], args.cache_dir)
    many, many_cpu, gaps = run(texts, args.cache_dir)
    gaps.sort()
    per = 1e6 / (len(texts) - 1)
    p50, p99 = gaps[len(gaps) // 2], gaps[int(len(gaps) * 0.99)]
    print(f"{len(texts)} messages: {many:.2f} s; start-up (1 message) {one:.2f} s")
    print(
        f"marginal cost per message: {(many - one) * per:.0f} µs wall, {(many_cpu - one_cpu) * per:.0f} µs CPU "
        f"average; gaps between lines p50 {p50:.0f} µs, p99 {p99:.0f} µs"
    )


if __name__ == "__main__":
    main()
