"""The project's NLU beside Rasa 3.6.21 trained on the same data (nlu/data/*.yml, unchanged: complaint types as the
retrieval intent ``complaint/<type>``), both measured here, on this machine.

    python bench/rasa_compare.py [--epochs 5] [--model PATH] [--rounds 5]

* training time: ``python -m nlu train`` into an empty cache vs ``rasa train nlu`` (DIET + ResponseSelector, both
  ``--epochs``; Rasa needs ~90 s per epoch for this data on 2 cores, so the epochs are few: say which);
* accuracy on the held-out set (nlu/heldout/) as ``python -m nlu evaluate`` prints it (issue 15's table): the
  project's NLU; Rasa alone (its intent, its ``nlu_fallback``, its ``complaint/<type>``); and the project with
  Rasa as its back end (``nlu/remote.py``: Rasa's ranking, the project's thresholds and entities);
* ``POST /model/parse`` latency over HTTP (one client, keep-alive, the messages of bench/nlu_bench.py, the two servers
  alternated): the project's NLU in a minimal aiohttp server (the gateway's handler: ``NLU.parse(...).to_rasa()``)
  vs ``rasa run --enable-api``;
* resident memory of each server after the runs.

Rasa comes from ``$RASA_HOME/venv`` (default ~/.cache/rasa-3.6; scripts/rasa-interop.sh installs it). On a loaded
machine the figures are noisy: the ratio between the two, measured in the same run, is the figure to read.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.nlu_bench import MESSAGES, percentile  # noqa: E402
from nlu import NLU, NLUConfig  # noqa: E402
from nlu.data import load as load_examples  # noqa: E402
from nlu.evaluate import HELDOUT_DIR, real_table  # noqa: E402
from nlu.remote import read_parse  # noqa: E402

RASA_HOME = Path(os.environ.get("RASA_HOME") or Path.home() / ".cache" / "rasa-3.6")
RASA = RASA_HOME / "venv" / "bin" / "rasa"
ENV = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
CONFIG = """recipe: default.v1
language: zh
assistant_id: gateway-compare
pipeline:
  - name: JiebaTokenizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: {epochs}
    entity_recognition: false
    random_seed: 1
  - name: ResponseSelector
    retrieval_intent: complaint
    epochs: {epochs}
    random_seed: 1
  - name: FallbackClassifier
    threshold: 0.3
    ambiguity_threshold: 0.05
"""
SERVE_PROJECT = """
import sys; sys.path.insert(0, {root!r})
from pathlib import Path
from aiohttp import web
from nlu import NLU
nlu = NLU.from_dir(Path({folder!r}))
async def parse(request):
    return web.json_response(nlu.parse((await request.json())["text"]).to_rasa())
app = web.Application(); app.add_routes([web.post("/model/parse", parse), web.get("/", lambda r: web.Response(text="ok"))])
web.run_app(app, host="127.0.0.1", port={port}, print=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return (proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))) / 2**20


class Client:
    """``POST /model/parse`` over one keep-alive connection."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def parse(self, text: str) -> dict[str, Any]:
        self.conn.request("POST", "/model/parse", json.dumps({"text": text}), {"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"/model/parse: HTTP {resp.status}: {body[:200]!r}")
        return json.loads(body)


class RasaAlone:
    """Rasa's own answer, scored like the project's NLU: its intent (``nlu_fallback`` included), its complaint type."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def parse(self, text: str) -> SimpleNamespace:
        payload = self.client.parse(text)
        return SimpleNamespace(intent=payload["intent"]["name"].partition("/")[0],
                               complaint_type=read_parse(payload).complaint_type)  # fmt: skip


def wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 600) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                Client(port).parse("你好")
                return time.perf_counter() - started
        except (OSError, RuntimeError, http.client.HTTPException):
            time.sleep(0.5)
    raise RuntimeError("server did not start")


def train_project(work: Path) -> tuple[float, Path]:
    cache = work / "nlu-cache"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nlu", "--cache-dir", str(cache), "train"], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    seconds = time.perf_counter() - started
    folder = next(p.parent for p in cache.rglob("complaint_type.json"))
    return seconds, folder


def train_rasa(epochs: int) -> tuple[float | None, Path]:
    out = RASA_HOME / "models"
    model = out / f"compare-e{epochs}.tar.gz"
    if model.exists():
        return None, model
    out.mkdir(parents=True, exist_ok=True)
    config = out / f"compare-e{epochs}.yml"
    config.write_text(CONFIG.format(epochs=epochs), encoding="utf-8")
    started = time.perf_counter()
    subprocess.run([str(RASA), "train", "nlu", "--config", str(config), "--nlu", str(ROOT / "nlu" / "data"), "--out",
                    str(out), "--fixed-model-name", model.name[:-7]], cwd=RASA_HOME, env=ENV, check=True,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - started, model


def latencies(clients: dict[str, Client], rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(rounds):
        for text in MESSAGES:
            for name, client in clients.items():  # alternated: both see the same load
                t0 = time.perf_counter()
                client.parse(text)
                samples[name].append((time.perf_counter() - t0) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="DIET and ResponseSelector epochs for Rasa")
    parser.add_argument("--model", type=Path, help="a trained Rasa model instead of training one")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the bench messages for latency")
    args = parser.parse_args()
    if not RASA.exists():
        print(f"no Rasa in {RASA_HOME}/venv: run scripts/rasa-interop.sh first", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="rasa-compare-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        project_train, folder = train_project(work)
        rasa_train, model = (None, args.model) if args.model else train_rasa(args.epochs)
        ports = {"project": free_port(), "rasa": free_port()}
        procs.append(subprocess.Popen([sys.executable, "-c", SERVE_PROJECT.format(root=str(ROOT), folder=str(folder),
                                                                                  port=ports["project"])]))  # fmt: skip
        procs.append(subprocess.Popen([str(RASA), "run", "--enable-api", "-m", str(model), "-i", "127.0.0.1", "-p",
                                       str(ports["rasa"])], cwd=RASA_HOME, env=ENV, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))  # fmt: skip
        start = {name: wait_up(ports[name], proc) for name, proc in zip(ports, procs, strict=True)}
        clients = {name: Client(port) for name, port in ports.items()}
        examples = load_examples([HELDOUT_DIR])
        project = NLU.from_dir(folder)
        rasa_url = f"http://127.0.0.1:{ports['rasa']}"
        backed = NLU(project._intents, project._types,
                     NLUConfig.from_dict({"backend": {"kind": "rasa", "url": rasa_url, "timeout": 60}}, "bench"))  # fmt: skip
        tables = {"project": real_table(project, examples), "rasa alone": real_table(RasaAlone(clients["rasa"]),
                  examples), "project + Rasa back end": real_table(backed, examples)}  # type: ignore[arg-type]  # fmt: skip
        samples = latencies(clients, args.rounds)
        memory = {name: rss_mb(proc.pid) for name, proc in zip(ports, procs, strict=True)}
        report(args, tables, samples, memory, start, project_train, rasa_train, model, len(examples))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(args: argparse.Namespace, tables: dict[str, Any], samples: dict[str, list[float]],
           memory: dict[str, float], start: dict[str, float], project_train: float, rasa_train: float | None,
           model: Path, count: int) -> None:  # fmt: skip
    names = list(tables)
    print(f"held-out set: {count} examples (nlu/heldout/); Rasa model {model.name}, {args.epochs} epochs\n")
    print("| | " + " | ".join(names) + " | target |")
    print("|---|" + "---|" * (len(names) + 1))
    for i, row in enumerate(tables["project"].rows):
        cells = [f"{t.rows[i].score:.2f} ({t.rows[i].hits}/{t.rows[i].count})" for t in tables.values()]
        print(f"| {row.name} | " + " | ".join(cells) + f" | ≥ {row.target:.2f} |")
    cells = [f"{t.false_complaints[0]}/{t.false_complaints[1]}" for t in tables.values()]
    print("| non-complaints taken for complaints | " + " | ".join(cells) + " | |\n")
    print("| | project NLU | Rasa 3.6.21 | ratio |")
    print("|---|---|---|---|")
    p, r = samples["project"], samples["rasa"]
    for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        a, b = percentile(p, q), percentile(r, q)
        print(f"| /model/parse {label} (ms, n={len(p)}) | {a:.2f} | {b:.2f} | ×{b / a:.1f} |")
    print(f"| /model/parse mean (ms) | {statistics.fmean(p):.2f} | {statistics.fmean(r):.2f} | |")
    print(
        f"| server RSS (MB) | {memory['project']:.0f} | {memory['rasa']:.0f} | ×{memory['rasa'] / memory['project']:.1f} |"
    )
    print(f"| server start to first answer (s) | {start['project']:.1f} | {start['rasa']:.1f} | |")
    trained = f"{rasa_train:.0f}" if rasa_train is not None else "(model given/reused)"
    print(f"| training time (s) | {project_train:.1f} | {trained} ({args.epochs} epochs) | |")


if __name__ == "__main__":
    sys.exit(main())
