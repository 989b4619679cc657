"""Soak: a real gateway under steady mixed traffic on every channel for a long time; does its memory stay flat?

    python bench/soak.py [--minutes 30] [--rate 12] [--sample 10] [--customers 150] [--sockets 60]

Starts the gateway (``python -m gateway``, embedded Redis, a temporary data directory seeded with the tests' cached
NLU model) with SMS (generic HTTP provider), Telegram, WeChat and Weibo pointed at the tests' provider fakes, which
run in this process next to the load. For ``--minutes`` it sends ``--rate`` messages a second in all, each from a
customer picked at random who has nothing in flight, spread over the channels:

* REST (``POST /webhooks/rest/webhook``): answered in the response;
* web chat (``/ws/chat``): ``--sockets`` customers connected all the time, one of them leaving and a new visitor
  arriving every few seconds; answered by the bot's frame after the echo of the message;
* SMS (signed generic webhook), Telegram (webhook with the secret header), WeChat (signed XML push) and Weibo
  (signed JSON push): answered when the fake provider receives the reply (WeChat and Weibo: or the passive reply
  in the response).

A few texts go to the handoff ("转人工", no agent online: the callback offer), most are self-service questions and
small talk in zh and en. The outbox's rate limits stay as configured (the rate here is below them).

Every ``--sample`` seconds: the gateway process's RSS (not its Redis), the embedded Redis's ``used_memory`` and
key count. Errors: a webhook or REST call that is not 2xx or fails, a reply that has not come within 30 s, a web
chat socket closed by the server, an ERROR or Traceback in the gateway's log. At the end it prints the RSS growth
from the end of the warm-up (the first 20 % of the run, at least 30 s, at most 2 min; the medians of three samples
each) to the end, Redis's growth (and per message), and the errors; the exit code is 1 when RSS grew 5 % or more
or there was any error. A bench, not a test: it takes its time (30 minutes by default).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from channels_bench import SHORT_CODE, SMS_AUTH, SMS_SECRET, TG_SECRET, free_port, seed_nlu, stop  # noqa: E402

from tests.channels.fake_sms import FakeHttpSms  # noqa: E402
from tests.channels.fake_telegram import FakeTelegram  # noqa: E402
from tests.channels.fake_wechat import FakeWeChat  # noqa: E402
from tests.channels.fake_weibo import FakeWeibo  # noqa: E402

REPLY_WAIT = 30.0
TEXTS = ["你好", "查一下流量", "营业厅几点关门", "宽带坏了怎么办", "hello", "what plans do you have", "谢谢",
         "话费套餐有哪些", "我的话费还剩多少", "how do I pay my bill", "信号不好", "帮助", "5G套餐", "bye"]  # fmt: skip
HANDOFF_TEXT, HANDOFF_SHARE = "转人工", 0.03
WEIGHTS = {"rest": 3, "webchat": 3, "sms": 2, "telegram": 2, "wechat": 1, "weibo": 1}


# ---- replies at the providers' fakes ---------------------------------------------------------------------
class Replies:
    """Per recipient: replies counted as they reach a fake; a waiter asks for the next one after its send."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.waiters: dict[str, list[tuple[int, asyncio.Future[None]]]] = {}

    def arrived(self, key: str) -> None:
        self.counts[key] += 1
        pending = self.waiters.get(key, [])
        for threshold, future in list(pending):
            if self.counts[key] >= threshold and not future.done():
                future.set_result(None)
                pending.remove((threshold, future))

    def expect(self, key: str) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(key, []).append((self.counts[key] + 1, future))
        return future

    def forget(self, key: str, future: asyncio.Future[None]) -> None:
        self.waiters[key] = [(t, f) for t, f in self.waiters.get(key, []) if f is not future]


class Tap(list):  # type: ignore[type-arg]
    """A fake's record list that tells ``on`` of each item and keeps only the latest ones (a long run)."""

    def __init__(self, on: Callable[[Any], None]) -> None:
        super().__init__()
        self.on = on

    def append(self, item: Any) -> None:
        super().append(item)
        self.on(item)
        if len(self) > 400:
            del self[:200]


# ---- the run's tallies -----------------------------------------------------------------------------------
@dataclass
class Tally:
    sent: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # "<channel>: <what>" → count
    latencies: dict[str, list[float]] = field(default_factory=dict)

    def error(self, channel: str, what: str) -> None:
        self.errors[f"{channel}: {what}"] += 1

    def ok(self, channel: str, seconds: float) -> None:
        self.answered[channel] += 1
        self.latencies.setdefault(channel, []).append(seconds)


class Soak:
    def __init__(self, args: argparse.Namespace, base: str) -> None:
        self.args, self.base = args, base
        self.tally = Tally()
        self.replies = Replies()
        self.busy: set[str] = set()
        self.not_before: dict[str, float] = {}
        self.ids = iter(range(1, 10**12))
        self.sms = FakeHttpSms(auth_header=SMS_AUTH, webhook_secret=SMS_SECRET)
        self.tg, self.wx, self.wb = FakeTelegram(), FakeWeChat(), FakeWeibo()
        self.sockets: dict[str, Socket] = {}
        self.session: aiohttp.ClientSession | None = None

    async def start_fakes(self) -> None:
        for fake in (self.sms, self.tg, self.wx, self.wb):
            await fake.start()
        self.sms.messages = Tap(lambda m: self.replies.arrived("sms:" + m["to"]))
        self.tg.results = Tap(self._telegram_result)
        self.tg.calls = Tap(lambda _c: None)
        self.wx.sent = Tap(lambda body: self.replies.arrived("wx:" + body.get("touser", "")))
        self.wx.calls = Tap(lambda _c: None)
        self.wb.sent = Tap(lambda s: self.replies.arrived(f"wb:{s['receiver_id']}"))
        self.wb.calls = Tap(lambda _c: None)

    def _telegram_result(self, result: tuple[str, dict[str, Any], bool]) -> None:
        method, params, ok = result
        if ok and method == "sendMessage":
            self.replies.arrived(f"tg:{params['chat_id']}")

    async def stop_fakes(self) -> None:
        for fake in (self.sms, self.tg, self.wx, self.wb):
            await fake.stop()

    def env(self) -> dict[str, str]:
        return {"SMS_WEBHOOK_SECRET": SMS_SECRET, "SMS_HTTP_AUTH_HEADER": SMS_AUTH, "GATEWAY_SMS_PROVIDER": "http",
                "GATEWAY_SMS_HTTP_URL": f"{self.sms.base_url}/send", "TELEGRAM_BOT_TOKEN": self.tg.token,
                "TELEGRAM_WEBHOOK_SECRET": TG_SECRET, "GATEWAY_TELEGRAM_API_BASE_URL": self.tg.base_url,
                "WECHAT_TOKEN": self.wx.token, "WECHAT_APP_SECRET": self.wx.secret, "GATEWAY_WECHAT_APPID": self.wx.appid,
                "GATEWAY_WECHAT_API_BASE_URL": self.wx.api_base, "WEIBO_APP_SECRET": self.wb.app_secret,
                "WEIBO_ACCESS_TOKEN": self.wb.access_token, "GATEWAY_WEIBO_UID": str(self.wb.uid),
                "GATEWAY_WEIBO_API_BASE_URL": self.wb.api_base}  # fmt: skip

    # ---- one message per channel ----------------------------------------------------------------------
    async def _await_reply(self, channel: str, key: str, future: asyncio.Future[None], t0: float) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(future), REPLY_WAIT)
            self.tally.ok(channel, time.perf_counter() - t0)
        except TimeoutError:
            self.replies.forget(key, future)
            self.tally.error(channel, "no reply within 30 s")

    async def _post(self, channel: str, url: str, **kw: Any) -> tuple[int, str] | None:
        assert self.session is not None
        try:
            async with self.session.post(self.base + url, **kw) as resp:
                body = await resp.text()
                if resp.status >= 300:
                    self.tally.error(channel, f"HTTP {resp.status}")
                    return None
                return resp.status, body
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.tally.error(channel, type(exc).__name__)
            return None

    async def rest(self, who: int, text: str) -> None:
        t0 = time.perf_counter()
        got = await self._post("rest", "/webhooks/rest/webhook", json={"sender": f"soak-rest-{who}", "message": text})
        if got is not None:
            if json.loads(got[1]):
                self.tally.ok("rest", time.perf_counter() - t0)
            else:
                self.tally.error("rest", "empty answer")

    async def provider(self, channel: str, who: int, text: str) -> None:
        """SMS, Telegram, WeChat, Weibo: the push in, the reply at the fake (or passive, in the response)."""
        n = next(self.ids)
        if channel == "sms":
            number = f"+86139{who:08d}"
            body, headers = self.sms.inbound_body(number, SHORT_CODE, text, f"soak-{n}")
            key, url, kw = "sms:" + number, "/channels/sms/webhook", {"data": body, "headers": headers}
        elif channel == "telegram":
            chat = 700_000_000 + who
            body = json.dumps(self.tg.text_update(n, chat, text), ensure_ascii=False).encode()
            headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
            key, url, kw = f"tg:{chat}", "/channels/telegram/webhook", {"data": body, "headers": headers}
        elif channel == "wechat":
            openid = f"oSoak{who:023d}"
            params, body = self.wx.push(self.wx.text_xml(openid, text))
            key, url, kw = "wx:" + openid, "/channels/wechat", {"params": params, "data": body}
        else:
            uid = 5_000_000_000 + who
            payload = json.dumps(self.wb.text_push(uid, text), ensure_ascii=False).encode()
            key, url = f"wb:{uid}", "/channels/weibo"
            kw = {"params": self.wb.signed_query(), "data": payload, "headers": {"Content-Type": "application/json"}}
        future = self.replies.expect(key)
        t0 = time.perf_counter()
        got = await self._post(channel, url, **kw)
        if got is None:
            self.replies.forget(key, future)
            return
        if channel in ("wechat", "weibo") and self._passive(channel, got[1]):
            self.replies.forget(key, future)
            self.tally.ok(channel, time.perf_counter() - t0)
            return
        await self._await_reply(channel, key, future, t0)

    def _passive(self, channel: str, body: str) -> bool:
        try:
            return bool(self.wx.reply_text(body) if channel == "wechat" else self.wb.parse_passive(body))
        except AssertionError:
            return False

    async def one(self, channel: str, who: int) -> None:
        name = f"{channel}:{who}"
        if name in self.busy or time.monotonic() < self.not_before.get(name, 0.0):
            return
        self.busy.add(name)
        text = HANDOFF_TEXT if random.random() < HANDOFF_SHARE else random.choice(TEXTS)
        self.tally.sent[channel] += 1
        try:
            if channel == "rest":
                await self.rest(who, text)
            elif channel == "webchat":
                socket = self.sockets.get(f"ws{who}")
                if socket is None or socket.closed:
                    self.tally.sent[channel] -= 1  # between a leave and a new visitor
                    return
                await socket.say(text, self.tally)
            else:
                await self.provider(channel, who, text)
        finally:
            self.busy.discard(name)
            if channel == "weibo":  # Weibo's pushes have no id: a second one within the same second is a repeat
                self.not_before[name] = time.monotonic() + 1.1


class Socket:
    """One web chat customer: a WebSocket; a message is answered by the bot's frame after the message's echo."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.closed = False
        self.leaving = False
        self.n = 0
        self.waiting: tuple[str, asyncio.Future[None]] | None = None
        self.echoed = False
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if self.waiting is None:
                continue
            client_id, future = self.waiting
            if frame.get("from") == "customer" and frame.get("client_id") == client_id:
                self.echoed = True
            elif frame.get("from") == "bot" and self.echoed and not future.done():
                future.set_result(None)
        self.closed = True

    async def say(self, text: str, tally: Tally) -> None:
        self.n += 1
        client_id = f"m{self.n}"
        future = asyncio.get_running_loop().create_future()
        self.waiting, self.echoed = (client_id, future), False
        t0 = time.perf_counter()
        try:
            await self.ws.send_json({"type": "message", "text": text, "client_id": client_id})
            await asyncio.wait_for(future, REPLY_WAIT)
            tally.ok("webchat", time.perf_counter() - t0)
        except TimeoutError:
            tally.error("webchat", "closed by the server" if self.closed and not self.leaving else "no reply in 30 s")
        except (ConnectionError, aiohttp.ClientError) as exc:
            tally.error("webchat", type(exc).__name__)
        finally:
            self.waiting = None

    async def leave(self) -> None:
        self.leaving = True
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


async def connect(soak: Soak, name: str) -> None:
    assert soak.session is not None
    try:
        ws = await soak.session.ws_connect(f"{soak.base}/ws/chat?lang={random.choice(['zh', 'en'])}", heartbeat=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        soak.tally.error("webchat", f"connect: {type(exc).__name__}")
        return
    soak.sockets[name] = Socket(ws)


async def churn(soak: Soak, every: float, stop_at: float) -> None:
    """One customer leaves and a new visitor (no cookie: a new visitor id) takes the slot, every ``every`` s."""
    while time.monotonic() < stop_at:
        await asyncio.sleep(every)
        idle = [name for name, s in soak.sockets.items() if s.waiting is None and not s.closed]
        if idle:
            name = random.choice(idle)
            await soak.sockets[name].leave()
            await connect(soak, name)


# ---- sampling --------------------------------------------------------------------------------------------
@dataclass
class Sample:
    t: float
    rss: int
    redis_used: int
    redis_keys: int
    sent: int


async def sampler(soak: Soak, proc: psutil.Process, redis: aioredis.Redis, every: float, started: float,
                  out: list[Sample], stop_at: float) -> None:  # fmt: skip
    last_print = 0.0
    while True:
        info = await redis.info("memory")
        sample = Sample(time.monotonic() - started, proc.memory_info().rss, int(info["used_memory"]),
                        int(await redis.dbsize()), sum(soak.tally.sent.values()))  # fmt: skip
        out.append(sample)
        if sample.t - last_print >= 60 or time.monotonic() >= stop_at:
            last_print = sample.t
            errors = sum(soak.tally.errors.values())
            print(f"{sample.t / 60:5.1f} min  sent {sample.sent:7d}  answered {sum(soak.tally.answered.values()):7d}  "
                  f"errors {errors:4d}  gateway RSS {sample.rss / 2**20:6.1f} MB  Redis {sample.redis_used / 2**20:6.1f} "
                  f"MB, {sample.redis_keys} keys", flush=True)  # fmt: skip
        if time.monotonic() >= stop_at:
            return
        await asyncio.sleep(every)


def growth(samples: list[Sample], warmup: float) -> tuple[float, float, Sample, Sample]:
    """RSS at the end of the warm-up and at the end (medians of three samples each), and the growth between."""
    after = [s for s in samples if s.t >= warmup]
    start, end = after[:3], after[-3:]
    rss0 = statistics.median(s.rss for s in start)
    rss1 = statistics.median(s.rss for s in end)
    return rss0, rss1, start[len(start) // 2], end[len(end) // 2]


# ---- main ------------------------------------------------------------------------------------------------
async def load(soak: Soak, args: argparse.Namespace, stop_at: float) -> None:
    channels = list(WEIGHTS)
    weights = list(WEIGHTS.values())
    tasks: set[asyncio.Task[None]] = set()
    interval = 1.0 / args.rate
    next_at = time.monotonic()
    while time.monotonic() < stop_at:
        channel = random.choices(channels, weights)[0]
        who = random.randrange(args.sockets if channel == "webchat" else args.customers)
        task = asyncio.create_task(soak.one(channel, who))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    if tasks:
        await asyncio.wait(tasks, timeout=REPLY_WAIT + 15)


async def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    channels: dict[str, Any] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                async with session.get(f"{base}/healthz") as resp:
                    channels = (await resp.json()).get("channels", {})
                    if all(
                        str(channels.get(c, "")).startswith("ready") for c in ("sms", "telegram", "wechat", "weibo")
                    ):
                        return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start (exit code {proc.poll()}; channels {channels})")
            await asyncio.sleep(0.3)


async def run(args: argparse.Namespace) -> int:
    from gateway.settings import load_settings

    data_dir = Path(tempfile.mkdtemp(prefix="gw-soak-"))
    log = tempfile.NamedTemporaryFile("w+", prefix="gw-soak-", suffix=".log", delete=False)  # noqa: SIM115
    seeded = seed_nlu(data_dir, load_settings())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    soak = Soak(args, base)
    await soak.start_fakes()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(soak.env())
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "--port", str(port), "--data-dir", str(data_dir),
                                "--log-level", "WARNING"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    redis: aioredis.Redis | None = None
    try:
        await wait_ready(base, gateway)
        redis = aioredis.Redis(unix_socket_path=str(data_dir / "redis" / "redis.sock"))
        duration = args.minutes * 60
        warmup = min(max(30.0, duration * 0.2), 120.0)
        print(f"soak: {args.minutes:g} min, {args.rate:g} messages/s over REST, web chat ({args.sockets} sockets, one "
              f"replaced every {args.churn:g} s), SMS, Telegram, WeChat, Weibo ({args.customers} customers each); "
              f"samples every {args.sample:g} s; warm-up {warmup:.0f} s ({seeded})", flush=True)  # fmt: skip
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                         timeout=aiohttp.ClientTimeout(total=60)) as session:  # fmt: skip
            soak.session = session
            await asyncio.gather(*(connect(soak, f"ws{i}") for i in range(args.sockets)))
            started = time.monotonic()
            stop_at = started + duration
            samples: list[Sample] = []
            await asyncio.gather(
                load(soak, args, stop_at),
                churn(soak, args.churn, stop_at),
                sampler(soak, psutil.Process(gateway.pid), redis, args.sample, started, samples, stop_at),
            )
            for socket in list(soak.sockets.values()):
                await socket.leave()
        return report(soak, samples, warmup, log, args)
    finally:
        if redis is not None:
            await redis.aclose()
        await asyncio.to_thread(stop, gateway)
        await soak.stop_fakes()
        shutil.rmtree(data_dir, ignore_errors=True)


def report(soak: Soak, samples: list[Sample], warmup: float, log: Any, args: argparse.Namespace) -> int:
    tally = soak.tally
    log.flush()
    log.seek(0)
    lines = log.read().splitlines()
    bad = [line for line in lines if " ERROR " in line or "Traceback" in line]
    warnings = [line for line in lines if " WARNING " in line]
    if bad:
        tally.errors["gateway log: ERROR/Traceback lines"] += len(bad)
    rss0, rss1, s0, s1 = growth(samples, warmup)
    rss_growth = (rss1 - rss0) / rss0
    messages = max(s1.sent - s0.sent, 1)
    redis_growth = s1.redis_used - s0.redis_used
    print("\nper channel: sent / answered, reply latency p50 / p99 (ms)")
    for channel in WEIGHTS:
        lat = sorted(tally.latencies.get(channel, []))
        p50 = lat[len(lat) // 2] * 1000 if lat else float("nan")
        p99 = lat[min(int(len(lat) * 0.99), len(lat) - 1)] * 1000 if lat else float("nan")
        print(f"  {channel:9} {tally.sent[channel]:7d} / {tally.answered[channel]:<7d} {p50:8.1f} / {p99:8.1f}")
    print(f"gateway RSS: {rss0 / 2**20:.1f} MB at {s0.t / 60:.1f} min (end of warm-up) → {rss1 / 2**20:.1f} MB at "
          f"{s1.t / 60:.1f} min: {rss_growth:+.1%} (limit +5 %); peak {max(s.rss for s in samples) / 2**20:.1f} MB")  # fmt: skip
    print(f"Redis used_memory: {s0.redis_used / 2**20:.1f} → {s1.redis_used / 2**20:.1f} MB ({redis_growth / 2**20:+.1f} "
          f"MB, {redis_growth / messages:.0f} bytes per message over {messages} messages; keys {s0.redis_keys} → "
          f"{s1.redis_keys}): conversations, logs and dedupe marks are kept for their retention times, so this grows "
          f"with traffic until the first of them expire")  # fmt: skip
    errors = sum(tally.errors.values())
    print(
        f"errors: {errors}" + (": " + "; ".join(f"{k} × {v}" for k, v in tally.errors.most_common()) if errors else "")
    )
    if warnings:  # by logger and the message's first words (numbers and ids vary)
        kinds = Counter(re.sub(r"\d+", "#", line.split(" WARNING ", 1)[1])[:90] for line in warnings)
        print(
            f"gateway log: {len(warnings)} WARNING line(s): "
            + "; ".join(f"{k!r} × {v}" for k, v in kinds.most_common(4))
        )
    if bad:
        print(f"gateway log: first ERROR lines: {bad[:3]} (full log {log.name})")
    else:
        os.unlink(log.name)
    failed = rss_growth >= 0.05 or errors > 0
    print("soak: " + ("FAILED" if failed else "passed") + f" (RSS growth {rss_growth:+.1%}, {errors} errors)")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the traffic runs (default 30)")
    parser.add_argument("--rate", type=float, default=12.0, help="messages a second, all channels together")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between memory samples")
    parser.add_argument("--customers", type=int, default=150, help="customers per webhook channel and REST")
    parser.add_argument("--sockets", type=int, default=60, help="web chat customers connected at a time")
    parser.add_argument("--churn", type=float, default=5.0, help="seconds between a web chat customer leaving and "
                        "a new one arriving")  # fmt: skip
    args = parser.parse_args()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
