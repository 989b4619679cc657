"""SMS and Telegram end to end: provider webhook in → reply at the provider's send API, against a bare
aiohttp baseline measured in the same run.

    python bench/channels_bench.py [--messages 1000] [--senders 200] [--concurrency 50] [--rounds 3]
                                   [--dup-rate 0.05] [--quick] [--channels sms,telegram] [--py-spy DIR]

Starts the gateway (``python -m gateway``, embedded Redis, a temporary data directory seeded with the
tests' cached NLU model so it does not train) with the SMS channel on the generic HTTP provider and the
Telegram channel, both pointed at the tests' provider fakes (``FakeHttpSms``, ``FakeTelegram``), which run
in this process on their own ports next to the load client. The baseline is a bare aiohttp app in its own
process whose webhooks do the minimum any gateway must: check the same HMAC / secret header, drop a
repeated id (an in-memory set), POST a reply to the same fake provider, then answer 200.

Per message it measures the webhook latency (POST → 200) and the end-to-end latency (POST sent → the fake
provider receives the reply's send request). One message per number (chat) is in flight at a time and a
client slot is held until the reply has arrived, so ``--concurrency`` is messages in flight end to end and
msg/s is messages / (first POST → last reply). With ``--dup-rate`` that share of webhooks is posted twice
at the same moment with the same id (a redelivery racing the original): each message must still be
answered exactly once.

The gateway's outbox normally enforces Telegram's 1 msg/s per chat and 30/s overall and the SMS provider's
50/s; those limits are lifted here (and the run says so), otherwise it would measure the policy, not the
gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.channels.fake_sms import FakeHttpSms  # noqa: E402
from tests.channels.fake_telegram import FakeTelegram  # noqa: E402

NLU_CACHE = ROOT / "var" / "test-nlu"  # the tests' trained model, keyed like the gateway's cache
SMS_SECRET = "bench-sms-webhook-secret"
SMS_AUTH = "Authorization: Bearer bench-sms-key"
TG_SECRET = "bench-tg-webhook-secret"
SHORT_CODE = "10658000"
TEXTS = ["YE", "LL", "帮助", "我的流量还剩多少", "营业厅几点开门", "这个月话费多少"]
REPLY_WAIT = 30.0  # seconds a message's reply may take before it counts as lost
LIFTED = {  # the outbox's rate limits, lifted for the benchmark (see the module docstring)
    "GATEWAY_SMS_PER_NUMBER_INTERVAL": "0.05", "GATEWAY_SMS_MAX_PER_SECOND": "100000",
    "GATEWAY_TELEGRAM_PER_CHAT_INTERVAL": "0.05", "GATEWAY_TELEGRAM_MAX_PER_SECOND": "100000",
    # and a sender's inbound rate (pipeline.sender_rate): so high that it never refuses, its bookkeeping still runs
    "GATEWAY_PIPELINE_SENDER_RATE": "1000000", "GATEWAY_PIPELINE_SENDER_BURST": "1000000",
}  # fmt: skip

BASELINE = r"""
import asyncio, hashlib, hmac, json, os, sys
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
try:
    import uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # same loop as the gateway
except ImportError:
    pass
SMS_KEY = os.environ["SMS_WEBHOOK_SECRET"].encode()
AUTH_NAME, _, AUTH_VALUE = os.environ["SMS_HTTP_AUTH_HEADER"].partition(":")
SMS_URL, TG_URL, TG_SECRET = os.environ["BASE_SMS_URL"], os.environ["BASE_TG_URL"], os.environ["TELEGRAM_WEBHOOK_SECRET"]
PORT = int(sys.argv[1])
REPLY = "您好，已收到您的短信。话费、流量、账单可直接回复关键字查询，回复BZ获取帮助。"
seen = set()

async def sms(request):
    body = await request.read()
    expected = "sha256=" + hmac.new(SMS_KEY, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(request.headers.get("X-Signature", "").strip().lower(), expected):
        return web.json_response({"error": "bad signature"}, status=403)
    data = json.loads(body)
    if ("sms", data["id"]) in seen:
        return web.json_response({"status": "accepted", "duplicate": True, "replies": 0})
    seen.add(("sms", data["id"]))
    sender = data["from"] if data["from"].startswith("+") else "+86" + data["from"]
    reply = {"to": sender, "from": data["to"], "text": REPLY, "reference": str(data["id"]),
             "callback_url": f"http://127.0.0.1:{PORT}/channels/sms/status"}
    async with request.app["client"].post(SMS_URL, json=reply, headers={AUTH_NAME.strip(): AUTH_VALUE.strip()}) as r:
        await r.read()
        if r.status != 200:
            return web.json_response({"error": f"provider {r.status}"}, status=502)
    return web.json_response({"status": "accepted", "duplicate": False, "replies": 1})

async def telegram(request):
    if not hmac.compare_digest(request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode(), TG_SECRET.encode()):
        return web.json_response({"error": "bad secret"}, status=403)
    update = json.loads(await request.read())
    if ("tg", update["update_id"]) in seen:
        return web.json_response({"ok": True})
    seen.add(("tg", update["update_id"]))
    form = {"chat_id": str(update["message"]["chat"]["id"]), "text": REPLY}
    async with request.app["client"].post(TG_URL, data=form) as r:
        await r.read()
        if r.status != 200:
            return web.json_response({"error": f"telegram {r.status}"}, status=502)
    return web.json_response({"ok": True})

async def client(app):
    app["client"] = ClientSession(connector=TCPConnector(limit=100), timeout=ClientTimeout(total=10))
    yield
    await app["client"].close()

app = web.Application()
app.cleanup_ctx.append(client)
app.add_routes([web.post("/channels/sms/webhook", sms), web.post("/channels/telegram/webhook", telegram)])
web.run_app(app, host="127.0.0.1", port=PORT, print=lambda *_: print("ready", flush=True), access_log=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(int(len(values) * p), len(values) - 1)] * 1000 if values else float("nan")


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def metric_values(text: str, name: str) -> dict[str, float]:
    """``{channel: value}`` of a labelled counter off /metrics."""
    return {m[0]: float(m[1]) for m in re.findall(rf'^{name}{{channel="([^"]+)"}} ([0-9.e+]+)$', text, re.M)}


# ---- the providers' fakes, recording when each reply arrives --------------------------------------------
class Arrivals:
    """Per recipient: who waits for the next reply, and how many replies came."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.counts: Counter[str] = Counter()
        self.stray = 0  # replies nobody waited for (a second answer to one message)

    def expect(self, key: str) -> asyncio.Future[float]:
        future = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        return future

    def arrived(self, key: str, at: float) -> None:
        self.counts[key] += 1
        future = self.waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(at)
        else:
            self.stray += 1


class TimedSms(FakeHttpSms):
    arrivals: Arrivals

    async def _send(self, request: web.Request) -> web.Response:
        at = time.perf_counter()
        resp = await super()._send(request)
        if resp.status == 200:  # no await between the fake storing the message and returning
            self.arrivals.arrived(self.messages[-1]["to"], at)
        return resp


class TimedTelegram(FakeTelegram):
    arrivals: Arrivals

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.perf_counter()
        resp = await super()._handle(request)
        method, params, ok = self.results[-1] if self.results else ("", {}, False)
        if resp.status == 200 and ok and method == "sendMessage":
            self.arrivals.arrived(str(params.get("chat_id")), at)
        return resp


# ---- the load --------------------------------------------------------------------------------------------
@dataclass
class Message:
    key: str  # the recipient of the reply, as the fake sees it
    body: bytes
    headers: dict[str, str]
    dup: bool = False


@dataclass
class Result:
    webhook: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    errors: int = 0
    lost: int = 0
    elapsed: float = 0.0
    sent: Counter[str] = field(default_factory=Counter)  # originals per recipient
    received: int = 0
    replies: Counter[str] = field(default_factory=Counter)  # replies per recipient
    stray: int = 0
    dups: int = 0
    cpu: float = 0.0  # seconds of the target's CPU per message (its own process, not the embedded Redis)

    @property
    def rate(self) -> float:
        return len(self.e2e) / self.elapsed if self.elapsed else 0.0


def numbers(count: int) -> tuple[list[str], int]:
    """The demo customers first (config/demo_bss.yml), then unknown 1380013xxxx numbers; and how many are demo."""
    import yaml

    demo = list(yaml.safe_load((ROOT / "config" / "demo_bss.yml").read_text(encoding="utf-8"))["subscribers"])
    out = demo[:count]
    n = 0
    while len(out) < count:
        candidate = f"1380013{n:04d}"
        n += 1
        if candidate not in demo:
            out.append(candidate)
    return out, min(len(demo), count)


class Load:
    def __init__(self, sms: TimedSms, tg: TimedTelegram, args: argparse.Namespace) -> None:
        self.sms, self.tg, self.args = sms, tg, args
        self.numbers, self.demo = numbers(args.senders)
        self.chats = [str(910_000_000 + i) for i in range(args.senders)]
        self.update_ids = iter(range(1, 10**9))
        self.ids = iter(range(10**9))

    def build(self, channel: str, count: int, run: str, seed: str, senders: list[str] | None = None) -> list[Message]:
        """``count`` signed webhooks with message ids ``<run>-<n>``; which ones are posted twice depends on
        ``seed`` only, so baseline and gateway get the same duplicates in a round."""
        rng = random.Random(f"{seed}-{channel}")
        out = []
        for i in range(count):
            text = TEXTS[i % len(TEXTS)]
            if channel == "sms":
                number = (senders or self.numbers)[i % len(senders or self.numbers)]
                body, headers = self.sms.inbound_body("+86" + number, SHORT_CODE, text, f"{run}-{next(self.ids)}")
                key = "+86" + number
            else:
                chat = (senders or self.chats)[i % len(senders or self.chats)]
                update = self.tg.text_update(next(self.update_ids), int(chat), text)
                body = json.dumps(update, ensure_ascii=False).encode()
                headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
                key = chat
            out.append(Message(key, body, headers, dup=rng.random() < self.args.dup_rate))
        return out

    async def drive(self, url: str, messages: list[Message]) -> Result:
        arrivals = Arrivals()
        self.sms.arrivals = self.tg.arrivals = arrivals
        result = Result()
        locks: dict[str, asyncio.Lock] = {}
        queue = list(reversed(messages))

        async def post(session: aiohttp.ClientSession, msg: Message) -> tuple[int, float]:
            async with session.post(url, data=msg.body, headers=msg.headers) as resp:
                await resp.read()
                return resp.status, time.perf_counter()

        async def one(session: aiohttp.ClientSession, msg: Message) -> None:
            async with locks.setdefault(msg.key, asyncio.Lock()):  # one message per recipient in flight
                result.sent[msg.key] += 1
                reply = arrivals.expect(msg.key)
                t0 = time.perf_counter()
                posts = [post(session, msg)] + ([post(session, msg)] if msg.dup else [])
                outcomes = await asyncio.gather(*posts, return_exceptions=True)
                result.dups += msg.dup
                first = outcomes[0]
                if isinstance(first, BaseException) or first[0] != 200:
                    result.errors += 1
                    arrivals.waiting.pop(msg.key, None)
                    return
                result.errors += sum(1 for o in outcomes[1:] if isinstance(o, BaseException) or o[0] != 200)
                result.webhook.append(first[1] - t0)
                try:
                    at = await asyncio.wait_for(reply, REPLY_WAIT)
                except TimeoutError:
                    result.lost += 1
                    arrivals.waiting.pop(msg.key, None)
                    return
                result.e2e.append(at - t0)

        async def worker(session: aiohttp.ClientSession) -> None:
            while queue:
                await one(session, queue.pop())

        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            started = time.perf_counter()
            await asyncio.gather(*(worker(session) for _ in range(min(self.args.concurrency, len(messages)))))
            result.elapsed = time.perf_counter() - started
            await asyncio.sleep(0.5)  # a second answer to a message would show up here
        result.replies = Counter({k: arrivals.counts[k] for k in result.sent})
        result.received = sum(result.replies.values())
        result.stray = arrivals.stray
        return result

    async def warm(self, url: str, channel: str) -> None:
        """20 messages from other senders, not counted (first NLU parses, connection pools)."""
        senders = [f"1370000{i:04d}" for i in range(20)] if channel == "sms" else [str(800_000 + i) for i in range(20)]
        await self.drive(url, self.build(channel, 20, f"warm-{os.urandom(3).hex()}", "warm", senders))


# ---- processes -------------------------------------------------------------------------------------------
class PeakRSS(threading.Thread):
    """Peak RSS of a process, and separately of its children (the gateway's embedded Redis)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = self.children_peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
                kids = sum(c.memory_info().rss for c in self.process.children(recursive=True))
                self.children_peak = max(self.children_peak, kids)
            except psutil.Error:
                return
            time.sleep(0.05)


def seed_nlu(data_dir: Path, settings: Any) -> str:
    """Copy the tests' cached model to where the gateway looks (``<data_dir>/nlu/<artifact key>``)."""
    from nlu import NLUConfig
    from nlu.data import DATA_DIR, data_files
    from nlu.engine import artifact_key

    data = [DATA_DIR, *settings.nlu.data] if settings.nlu.data else None
    key = artifact_key(data_files(data), NLUConfig.load(settings.nlu.config or None))
    cached = NLU_CACHE / key
    if (cached / "complaint_type.json").exists():
        shutil.copytree(cached, data_dir / "nlu" / key)
        return f"NLU model copied from {cached.relative_to(ROOT)}"
    return f"no cached NLU model {key} in {NLU_CACHE.relative_to(ROOT)}: the gateway trains it (a minute or two)"


async def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    """Until /healthz lists SMS (http) and Telegram (getMe answered by the fake) as ready."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                async with session.get(f"{base}/healthz") as resp:
                    channels = (await resp.json()).get("channels", {})
                    if channels.get("sms", "").startswith("ready") and channels.get("telegram") == "ready":
                        return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start (exit code {proc.poll()})")
            await asyncio.sleep(0.2)


async def wait_line(proc: subprocess.Popen[str], word: str, timeout: float = 30) -> None:
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
    if word not in line:
        raise RuntimeError(f"baseline did not start: {line!r}")


def stop(proc: subprocess.Popen[Any], timeout: float = 20, sig: int = signal.SIGTERM) -> None:
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def profiler(args: argparse.Namespace, pid: int, channel: str, round_: int) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of the gateway for one run (stopped with SIGINT after it), or None without --py-spy."""
    if not args.py_spy:
        return None
    spy = shutil.which("py-spy")
    if spy is None:
        print("--py-spy: py-spy is not installed (pip install py-spy); not profiling")
        args.py_spy = None
        return None
    out = Path(args.py_spy) / f"{channel}-{round_}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([spy, "record", "-p", str(pid), "-r", "250", "-f", "raw", "-o", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(0.5)  # attached before the load starts
    return proc


async def gateway_metrics(base: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as resp:
        return await resp.text()


# ---- main ------------------------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> None:
    sms = TimedSms(auth_header=SMS_AUTH, webhook_secret=SMS_SECRET)
    tg = TimedTelegram()
    await sms.start()
    await tg.start()
    data_dir = Path(tempfile.mkdtemp(prefix="gw-channels-bench-"))
    log_file = tempfile.NamedTemporaryFile("w+", prefix="gw-channels-bench-", suffix=".log", delete=False)  # noqa: SIM115
    from gateway.settings import load_settings

    configured = load_settings()  # config/gateway.yml and the environment, before the bench lifts the limits
    seeded = seed_nlu(data_dir, configured)
    gw_port, base_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({"SMS_WEBHOOK_SECRET": SMS_SECRET, "SMS_HTTP_AUTH_HEADER": SMS_AUTH, "TELEGRAM_BOT_TOKEN": tg.token,
                "TELEGRAM_WEBHOOK_SECRET": TG_SECRET, "GATEWAY_SMS_PROVIDER": "http",
                "GATEWAY_SMS_HTTP_URL": f"{sms.base_url}/send", "GATEWAY_TELEGRAM_API_BASE_URL": tg.base_url,
                "GATEWAY_SMS_BACKOFF_BASE": "0.2", "GATEWAY_TELEGRAM_BACKOFF_BASE": "0.2", **LIFTED})  # fmt: skip
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--port", str(gw_port), "--data-dir", str(data_dir), "--log-level", "WARNING"],
        cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base_env = {**env, "BASE_SMS_URL": f"{sms.base_url}/send", "BASE_TG_URL": f"{tg.base_url}{tg.token}/sendMessage"}
    baseline = subprocess.Popen([sys.executable, "-c", BASELINE, str(base_port)], env=base_env, stdout=subprocess.PIPE,
                                text=True)  # fmt: skip
    peak: PeakRSS | None = None
    try:
        started = time.monotonic()
        await wait_line(baseline, "ready")
        gw = f"http://127.0.0.1:{gw_port}"
        await wait_healthy(gw, gateway)
        peak = PeakRSS(gateway.pid)
        peak.start()
        load = Load(sms, tg, args)
        targets = {"baseline": f"http://127.0.0.1:{base_port}", "gateway": gw}
        procs = {"baseline": psutil.Process(baseline.pid), "gateway": psutil.Process(gateway.pid)}
        path = {"sms": "/channels/sms/webhook", "telegram": "/channels/telegram/webhook"}
        for channel in args.channels:
            for target in targets.values():
                await load.warm(target + path[channel], channel)
        before = await gateway_metrics(gw)

        print(f"channels bench: {args.messages} messages per run from {min(args.senders, args.messages)} senders "
              f"({load.demo} demo customers, the others unknown numbers), {args.concurrency} in flight end to end "
              f"(at most one per sender at a time), {args.rounds} alternating round(s); gateway ready in "
              f"{time.monotonic() - started:.1f} s ({seeded})")  # fmt: skip
        t, m = configured.telegram, configured.sms
        print(f"NOTE: outbox rate limits lifted, or this would measure the providers' policies, not the gateway: "
              f"Telegram {LIFTED['GATEWAY_TELEGRAM_MAX_PER_SECOND']}/s overall and "
              f"{LIFTED['GATEWAY_TELEGRAM_PER_CHAT_INTERVAL']} s per chat (configured, = Telegram's limits: "
              f"{t.max_per_second}/s, {t.per_chat_interval:g} s per chat); SMS {LIFTED['GATEWAY_SMS_MAX_PER_SECOND']}/s "
              f"and {LIFTED['GATEWAY_SMS_PER_NUMBER_INTERVAL']} s per number (configured: {m.max_per_second}/s, "
              f"{m.per_number_interval:g} s)")  # fmt: skip
        dup_note = (f"{args.dup_rate:.0%} of webhooks posted twice at once with the same id" if args.dup_rate
                    else "no duplicate deliveries (--dup-rate 0)")  # fmt: skip
        print(f"baseline: bare aiohttp, own process: check HMAC/secret, in-memory dedupe, POST the reply to the fake "
              f"provider, then 200; {dup_note}")  # fmt: skip
        print("webhook = POST → 200; e2e = POST sent → the fake provider receives the reply's send request")
        head = (f"{'':22} {'msg/s':>7} {'webhook p50':>11} {'p99':>7} {'e2e p50':>8} {'p99':>7} {'CPU/msg':>7} {'errors':>6} "
                f"{'received':>9}")  # fmt: skip
        print(head + "  (ms)")
        totals: dict[tuple[str, str], list[Result]] = {}
        titles = [(c, "SMS" if c == "sms" else "Telegram") for c in args.channels]
        for round_ in range(1, args.rounds + 1):
            for channel in args.channels:
                for name, target in targets.items():
                    spy = profiler(args, gateway.pid, channel, round_) if name == "gateway" else None
                    messages = load.build(
                        channel, args.messages, f"r{round_}-{name}-{os.urandom(3).hex()}", seed=f"r{round_}"
                    )
                    cpu0 = cpu_seconds(procs[name])
                    r = await load.drive(target + path[channel], messages)
                    r.cpu = (cpu_seconds(procs[name]) - cpu0) / max(len(messages), 1)
                    if spy is not None:
                        await asyncio.to_thread(stop, spy, 30, signal.SIGINT)  # py-spy writes its file on SIGINT
                    totals.setdefault((channel, name), []).append(r)
                    label = f"{round_}: {'SMS' if channel == 'sms' else 'Telegram'} {name}"
                    print(f"{label:22} {r.rate:7.0f} {pct(r.webhook, 0.5):11.1f} {pct(r.webhook, 0.99):7.1f} "
                          f"{pct(r.e2e, 0.5):8.1f} {pct(r.e2e, 0.99):7.1f} {r.cpu * 1000:7.2f} {r.errors + r.lost:6d} "
                          f"{f'{r.received}/{sum(r.sent.values())}':>9}")  # fmt: skip
        await asyncio.sleep(1.0)  # late second answers
        peak.running = False
        after = await gateway_metrics(gw)

        for channel, title in titles:
            ratios = [g.rate / b.rate for g, b in zip(totals[(channel, "gateway")], totals[(channel, "baseline")],
                                                      strict=True) if b.rate]  # fmt: skip
            median = statistics.median(ratios) if ratios else float("nan")
            gws = totals[(channel, "gateway")]
            e2e = [x for r in gws for x in r.e2e]
            cpu_gw = statistics.median(r.cpu for r in gws) * 1000
            cpu_base = statistics.median(r.cpu for r in totals[(channel, "baseline")]) * 1000
            print(f"{title}: gateway/baseline msg/s, median of rounds {median:.0%} (rounds: "
                  f"{', '.join(f'{x:.0%}' for x in ratios)}); gateway e2e over all rounds p50 {pct(e2e, 0.5):.1f} ms, "
                  f"p99 {pct(e2e, 0.99):.1f} ms; CPU per message (median of rounds) gateway {cpu_gw:.2f} ms, "
                  f"baseline {cpu_base:.2f} ms ({cpu_base / cpu_gw:.0%}: steadier than msg/s on a busy machine)")  # fmt: skip
        print(f"gateway peak RSS {peak.peak / 2**20:.1f} MB (its embedded Redis, a child process: "
              f"{peak.children_peak / 2**20:.1f} MB)")  # fmt: skip

        # nothing lost, answered once: each recipient got as many replies as it sent messages, no webhook failed
        once = {name: True for name in targets}
        for channel, title in titles:
            parts = []
            for name in targets:
                runs = totals[(channel, name)]
                sent = sum(sum(r.sent.values()) for r in runs)
                got = sum(r.received for r in runs)
                dups, stray, failed = sum(r.dups for r in runs), sum(r.stray for r in runs), sum(r.errors + r.lost for r in runs)  # fmt: skip
                per_recipient = all(r.replies == r.sent and r.stray == 0 for r in runs)
                once[name] &= per_recipient and got == sent and failed == 0
                parts.append(f"{name} {got}/{sent} (duplicates posted {dups}, extra replies {stray})")
            print(f"{title} provider received: {'; '.join(parts)}")
        deltas = {m: {c: metric_values(after, m).get(c, 0) - metric_values(before, m).get(c, 0) for c in args.channels}
                  for m in ("outbox_queued_total", "outbox_sent_total", "outbox_retries_total", "outbox_dead_total",
                            "gateway_duplicates_total", "gateway_deadline_misses_total")}  # fmt: skip
        print("gateway /metrics during the runs: " + "; ".join(
            f"{c}: queued {deltas['outbox_queued_total'][c]:.0f}, sent {deltas['outbox_sent_total'][c]:.0f}, "
            f"retries {deltas['outbox_retries_total'][c]:.0f}, dead {deltas['outbox_dead_total'][c]:.0f}, "
            f"duplicates seen {deltas['gateway_duplicates_total'][c]:.0f}, "
            f"deadline misses {deltas['gateway_deadline_misses_total'][c]:.0f}" for c in args.channels))  # fmt: skip
        print(f"answered once: {'yes' if once['gateway'] else 'no'} (gateway; criterion: each number/chat got "
              f"exactly as many replies as it sent messages, no webhook error, no reply missing; "
              f"baseline: {'yes' if once['baseline'] else 'no'})")  # fmt: skip
    finally:
        if peak:
            peak.running = False
        await asyncio.to_thread(stop, baseline)
        await asyncio.to_thread(stop, gateway)  # the fakes keep answering while it drains
        await sms.stop()
        await tg.stop()
        log_file.seek(0)
        warnings = [
            line.rstrip() for line in log_file if " WARNING " in line or " ERROR " in line or "Traceback" in line
        ]
        log_file.close()
        if warnings:
            print(
                f"gateway log: {len(warnings)} warning/error line(s), first: {warnings[:3]} (full log {log_file.name})"
            )
        else:
            os.unlink(log_file.name)
        if args.keep_data:
            print(json.dumps({"data_dir": str(data_dir)}))
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages per channel, per target, per round")
    parser.add_argument("--senders", type=int, default=200, help="distinct numbers (SMS) and chats (Telegram)")
    parser.add_argument("--concurrency", type=int, default=50, help="messages in flight end to end")
    parser.add_argument("--rounds", type=int, default=3, help="alternating baseline/gateway rounds")
    parser.add_argument("--dup-rate", type=float, default=0.05, help="share of webhooks posted twice (same id)")
    parser.add_argument("--quick", action="store_true", help="100 messages, one round (under a minute)")
    parser.add_argument("--channels", default="sms,telegram", help="comma-separated: sms, telegram (default both)")
    parser.add_argument("--py-spy", metavar="DIR", help="profile the gateway with py-spy (if installed) during each "
                        "gateway run: DIR/<channel>-<round>.txt, raw collapsed stacks")  # fmt: skip
    parser.add_argument("--keep-data", action="store_true", help="keep the gateway's data directory")
    args = parser.parse_args()
    args.channels = [c for c in ("sms", "telegram") if c in args.channels.split(",")]
    if not args.channels:
        parser.error("--channels: name sms and/or telegram")
    if args.quick:
        args.messages, args.rounds = 100, 1
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop  # the client and the fakes: the same fast loop for both targets

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
