"""The durable per-channel outbox (``gateway/outbox.py``) against the real Redis.

The "provider" is an async function of the test that records each send attempt and fails as the
scenario needs; nothing in the outbox is mocked. Intervals are small so the file runs in seconds.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from gateway import redisconn
from gateway.metrics import Metrics
from gateway.outbox import Job, Outbox, OutboxPolicy, PermanentFailure, RetryLater, job_id
from gateway.rkeys import deployment_keys

CHANNEL = "tg"
TOL = 0.015  # clock/scheduling slack for "not before" checks


def policy(**overrides: float) -> OutboxPolicy:
    base = {"interval": 0.05, "backoff_base": 0.05, "backoff_max": 1.0, "lease": 0.3, "max_attempts": 5}
    return OutboxPolicy(**{**base, **overrides})


@dataclass(frozen=True, slots=True)
class Sent:
    at: float  # time.monotonic() when the send started
    to: str
    text: str
    wall: float = 0.0  # time.time() when the send started (the per-second cap counts by int(time.time()))
    attempts: int = 0
    last_error: str = ""
    by: str = ""


Behave = Callable[[Job, int], Awaitable[None]]  # (job, how many times this text was tried before) -> raise or not


def provider(behave: Behave | None = None, by: str = "") -> tuple[Callable[[Job], Awaitable[str]], list[Sent]]:
    """A stand-in for a provider's API: records every attempt, then lets ``behave`` raise or stall."""
    calls: list[Sent] = []

    async def send(job: Job) -> str:
        tried = sum(1 for c in calls if c.text == job.text)
        calls.append(Sent(time.monotonic(), job.to, job.text, time.time(), job.attempts, job.last_error, by))
        if behave is not None:
            await behave(job, tried)
        return f"pid-{job.text}"

    return send, calls


async def until(cond: Callable[[], object], timeout: float = 3.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        ok = cond()
        if inspect.isawaitable(ok):
            ok = await ok
        if ok:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


async def stop(outbox: Outbox, timeout: float = 5.0) -> None:
    """``outbox.stop()`` (a stop that comes while the worker talks to Redis is seen at once: see
    test_stop_is_prompt_when_it_comes_while_the_worker_talks_to_redis)."""
    await outbox.stop(timeout)


def texts(calls: list[Sent], to: str | None = None) -> list[str]:
    return [c.text for c in calls if to is None or c.to == to]


def first(calls: list[Sent], text: str) -> Sent:
    return next(c for c in calls if c.text == text)


def sample(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name, {"channel": CHANNEL}) or 0.0


@pytest.fixture
async def new_redis(redis_url: str) -> AsyncIterator[Callable[[], aioredis.Redis]]:
    """A fresh client per call (one per simulated process), all closed afterwards."""
    made: list[aioredis.Redis] = []

    def make() -> aioredis.Redis:
        client = redisconn.client(redis_url)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
def make_outbox(new_redis: Callable[[], aioredis.Redis], key_prefix: str) -> Callable[..., Outbox]:
    def make(**overrides: float) -> Outbox:
        return Outbox(new_redis(), deployment_keys(key_prefix), CHANNEL, Metrics(), policy(**overrides))

    return make


# ---- 1. order per recipient, concurrency across recipients -----------------------------------------


async def test_in_order_per_recipient_and_a_slow_send_does_not_hold_others(make_outbox):
    finished: dict[str, float] = {}

    async def behave(job: Job, tried: int) -> None:
        if job.text == "a1":
            await asyncio.sleep(0.15)  # a slow provider call for alice (shorter than the lease)
        finished[job.text] = time.monotonic()

    send, calls = provider(behave)
    outbox = make_outbox()
    for text in ("a1", "a2", "a3"):
        assert await outbox.put(Job(to="alice", text=text))
    for text in ("b1", "b2"):
        assert await outbox.put(Job(to="bob", text=text))
    assert await outbox.depth() == 2
    outbox.start(send)
    try:
        await until(lambda: len(finished) == 5, what="all five sends")
    finally:
        await stop(outbox)
    assert texts(calls, "alice") == ["a1", "a2", "a3"]
    assert texts(calls, "bob") == ["b1", "b2"]
    assert len(calls) == 5  # no resends
    # bob's message went out (and was done) while alice's first send was still with the provider
    assert first(calls, "a1").at <= first(calls, "b1").at < finished["b1"] < finished["a1"]
    # alice's next message was not started before her previous one was done
    assert first(calls, "a2").at >= finished["a1"]
    assert first(calls, "a3").at >= finished["a2"]
    assert await outbox.depth() == 0
    assert await outbox.pending("alice") == []
    assert sample(outbox.metrics, "outbox_sent_total") == 5
    assert sample(outbox.metrics, "outbox_queued_total") == 5


# ---- 2. per-recipient interval ---------------------------------------------------------------------


async def test_interval_between_sends_to_one_recipient_not_across_recipients(make_outbox):
    interval = 0.25
    send, calls = provider()
    # a lease shorter than the interval: the gap must come from the interval, not from the lease
    outbox = make_outbox(interval=interval, lease=0.1)
    await outbox.put(Job(to="alice", text="a1"))
    await outbox.put(Job(to="alice", text="a2"))
    await outbox.put(Job(to="alice", text="a3"))
    await outbox.put(Job(to="bob", text="b1"))
    await outbox.put(Job(to="carol", text="c1"))
    outbox.start(send)
    try:
        await until(lambda: len(calls) == 5, what="five sends")
    finally:
        await stop(outbox)
    a1, a2, a3 = (first(calls, t) for t in ("a1", "a2", "a3"))
    assert a2.at - a1.at >= interval - TOL
    assert a3.at - a2.at >= interval - TOL
    # other recipients are not held by alice's interval: everyone's first message leaves together
    starts = [first(calls, t).at for t in ("a1", "b1", "c1")]
    assert max(starts) - min(starts) < interval / 2


async def test_interval_is_kept_when_the_next_message_arrives_after_the_queue_drained(make_outbox):
    interval = 0.3
    send, calls = provider()
    outbox = make_outbox(interval=interval)
    outbox.start(send)
    try:
        await outbox.put(Job(to="alice", text="a1"))
        await until(lambda: len(calls) == 1, what="the first send")
        await until(lambda: _drained(outbox, "alice"), what="a1 settled")
        await outbox.put(Job(to="alice", text="a2"))  # a reply a moment later, well inside the interval
        await until(lambda: len(calls) == 2, what="the second send")
    finally:
        await stop(outbox)
    assert calls[1].at - calls[0].at >= interval - TOL  # Telegram: at most one message a second per chat


@pytest.mark.parametrize("outcome", ["sent", "retry"])
async def test_the_next_attempt_is_not_held_back_by_the_lease(make_outbox, outcome):
    interval, lease = 0.05, 0.3

    async def behave(job: Job, tried: int) -> None:
        await asyncio.sleep(0.02)  # a provider's API takes a moment to answer
        if outcome == "retry" and tried == 0:
            raise RetryLater("429 Too Many Requests", after=interval)

    send, calls = provider(behave)
    outbox = make_outbox(interval=interval, lease=lease)
    await outbox.put(Job(to="alice", text="a1"))
    if outcome == "sent":
        await outbox.put(Job(to="alice", text="a2"))
    outbox.start(send)
    try:
        await until(lambda: len(calls) == 2, what="the second attempt")
    finally:
        await stop(outbox)
    # due `interval` (or retry_after) after the first attempt settled; observed: the lease, 0.3 s
    assert calls[1].at - calls[0].at < interval + 0.1


async def _drained(outbox: Outbox, recipient: str) -> bool:
    return not await outbox.pending(recipient)


# ---- 3. per-second cap for the whole channel ------------------------------------------------------


async def test_per_second_cap_counts_sends_per_wall_clock_second(make_outbox):
    cap, recipients = 5, 12
    send, calls = provider()
    outbox = make_outbox(per_second=cap)
    for i in range(recipients):
        await outbox.put(Job(to=f"r{i:02}", text=f"m{i:02}"))
    # start early in a second, so the first batch is claimed and sent within the same second
    frac = time.time() % 1
    if not 0.01 < frac < 0.85:
        await asyncio.sleep((1.02 - frac) % 1)
    outbox.start(send)
    try:
        await until(lambda: len(calls) == recipients, timeout=5, what="all twelve sends")
    finally:
        await stop(outbox)
    per_second = Counter(int(c.wall) for c in calls)
    assert max(per_second.values()) <= cap, per_second
    assert len(per_second) >= 3  # 12 sends at 5/s need three seconds
    assert sorted(texts(calls)) == [f"m{i:02}" for i in range(recipients)]
    # and the cap is a rate, not a stall: the first second is used in full
    assert per_second[min(per_second)] == cap


# ---- 4. retries ------------------------------------------------------------------------------------


async def test_retry_later_backs_off_keeps_order_and_records_attempts(make_outbox):
    base = 0.3

    async def behave(job: Job, tried: int) -> None:
        if job.text == "a1" and tried < 2:
            raise RetryLater(f"503 #{tried + 1}")

    send, calls = provider(behave)
    # sends are instant, so a short lease is safe; it keeps the worker's oversleep below the back-off
    outbox = make_outbox(backoff_base=base, interval=0.01, lease=0.1)
    await outbox.put(Job(to="alice", text="a1"))
    await outbox.put(Job(to="alice", text="a2"))
    await outbox.put(Job(to="bob", text="b1"))
    outbox.start(send)
    try:
        await until(lambda: len(texts(calls, "alice")) >= 1, what="the first attempt")
        await until(lambda: _head_attempts(outbox, "alice", 1), what="the failure recorded")
        head, behind = await outbox.pending("alice")
        assert (head.text, head.attempts, head.last_error) == ("a1", 1, "503 #1")
        assert behind.text == "a2" and behind.attempts == 0
        await until(lambda: len(calls) == 5, what="all sends")
    finally:
        await stop(outbox)
    assert texts(calls, "alice") == ["a1", "a1", "a1", "a2"]  # a2 waited behind the retried a1
    assert texts(calls, "bob") == ["b1"]
    tries = [c for c in calls if c.text == "a1"]
    assert [(c.attempts, c.last_error) for c in tries] == [(0, ""), (1, "503 #1"), (2, "503 #2")]
    # equal-jitter back-off: attempt n waits at least base*2^(n-1)/2 and at most base*2^(n-1) (plus slack)
    assert base / 2 - TOL <= tries[1].at - tries[0].at < 1.2
    assert base - TOL <= tries[2].at - tries[1].at < 1.2
    assert first(calls, "b1").at < tries[1].at  # bob was not held by alice's retries
    assert sample(outbox.metrics, "outbox_retries_total") == 2
    assert sample(outbox.metrics, "outbox_sent_total") == 3
    assert await outbox.dead() == []


async def _head_attempts(outbox: Outbox, recipient: str, attempts: int) -> bool:
    jobs = await outbox.pending(recipient)
    return bool(jobs) and jobs[0].attempts == attempts


async def test_retry_later_after_is_honoured(make_outbox):
    after = 0.4

    async def behave(job: Job, tried: int) -> None:
        if tried == 0:
            raise RetryLater("429 Too Many Requests", after=after)

    send, calls = provider(behave)
    # back-off alone would retry within 0.01 s (the worker waking at the 0.1 s lease): only the provider's
    # retry_after explains a later retry
    outbox = make_outbox(backoff_base=0.01, lease=0.1)
    await outbox.put(Job(to="alice", text="a1"))
    outbox.start(send)
    try:
        await until(lambda: len(calls) == 2, what="the retry")
    finally:
        await stop(outbox)
    gap = calls[1].at - calls[0].at
    assert after - TOL <= gap < 1.2
    assert (calls[1].attempts, calls[1].last_error) == (1, "429 Too Many Requests")


# ---- 5. dead letters -------------------------------------------------------------------------------


async def test_permanent_failure_goes_dead_and_the_next_job_is_sent(make_outbox):
    async def behave(job: Job, tried: int) -> None:
        if job.text == "a1":
            raise PermanentFailure("Forbidden: bot was blocked by the user")

    send, calls = provider(behave)
    outbox = make_outbox()
    await outbox.put(Job(to="alice", text="a1", kind="marketing", conversation_id="c-1"))
    await outbox.put(Job(to="alice", text="a2"))
    outbox.start(send)
    try:
        await until(lambda: len(calls) == 2, what="both sends")
        await until(lambda: _drained(outbox, "alice"), what="the queue drained")
    finally:
        await stop(outbox)
    assert texts(calls) == ["a1", "a2"]  # a1 tried once only
    (dead,) = await outbox.dead()
    assert dead["text"] == "a1" and dead["to"] == "alice"
    assert dead["last_error"] == "Forbidden: bot was blocked by the user"
    assert dead["kind"] == "marketing" and dead["conversation_id"] == "c-1"
    assert dead["failed_at"] >= dead["created"] > 0
    assert sample(outbox.metrics, "outbox_dead_total") == 1
    assert sample(outbox.metrics, "outbox_retries_total") == 0
    assert await outbox.depth() == 0


async def test_max_attempts_moves_a_job_to_dead_then_the_next_is_sent(make_outbox):
    async def behave(job: Job, tried: int) -> None:
        if job.text == "a1":
            raise RetryLater("provider down")

    send, calls = provider(behave)
    outbox = make_outbox(max_attempts=3, backoff_base=0.02)
    await outbox.put(Job(to="alice", text="a1"))
    await outbox.put(Job(to="alice", text="a2"))
    outbox.start(send)
    try:
        await until(lambda: "a2" in texts(calls), what="a2 sent after a1 gave up")
        await until(lambda: _drained(outbox, "alice"), what="the queue drained")
    finally:
        await stop(outbox)
    assert texts(calls) == ["a1", "a1", "a1", "a2"]  # max_attempts=3 means three tries in all
    (dead,) = await outbox.dead()
    assert (dead["text"], dead["attempts"], dead["last_error"]) == ("a1", 3, "provider down")
    assert sample(outbox.metrics, "outbox_retries_total") == 2
    assert sample(outbox.metrics, "outbox_dead_total") == 1
    assert sample(outbox.metrics, "outbox_sent_total") == 1


async def test_an_unexpected_exception_is_retried_not_dropped(make_outbox):
    async def behave(job: Job, tried: int) -> None:
        if tried == 0:
            raise ValueError("adapter bug")

    send, calls = provider(behave)
    outbox = make_outbox()
    await outbox.put(Job(to="alice", text="a1"))
    outbox.start(send)
    try:
        await until(lambda: len(calls) == 2, what="the retry")
        await until(lambda: _drained(outbox, "alice"), what="the queue drained")
    finally:
        await stop(outbox)
    assert texts(calls) == ["a1", "a1"]
    assert (calls[1].attempts, calls[1].last_error) == (1, "ValueError")
    assert await outbox.dead() == []
    assert sample(outbox.metrics, "outbox_retries_total") == 1


async def test_the_same_job_id_is_queued_once(make_outbox):
    send, calls = provider()
    outbox = make_outbox()
    jid = job_id(CHANNEL, "user-1", "provider-msg-42", "0")
    assert await outbox.put(Job(to="alice", text="reply", id=jid)) is True
    assert await outbox.put(Job(to="alice", text="reply (redelivered)", id=jid)) is False
    # jobs without an id are never deduplicated against each other
    assert await outbox.put(Job(to="alice", text="notice")) is True
    assert await outbox.put(Job(to="alice", text="notice")) is True
    assert [j.text for j in await outbox.pending("alice")] == ["reply", "notice", "notice"]
    outbox.start(send)
    try:
        await until(lambda: len(calls) == 3, what="three sends")
        assert await outbox.put(Job(to="alice", text="late redelivery", id=jid)) is False  # still known after sending
        await asyncio.sleep(0.15)  # room for a wrong extra send to show up
    finally:
        await stop(outbox)
    assert texts(calls) == ["reply", "notice", "notice"]
    assert sample(outbox.metrics, "outbox_queued_total") == 3


async def test_put_all_queues_jobs_once_with_a_string_set_in_the_same_step(make_outbox, key_prefix):
    """An SMS webhook's replies and its recorded answer go into Redis together (one script): the replies once per id,
    the answer whatever happened to the jobs."""
    send, calls = provider()
    outbox = make_outbox()
    keys = deployment_keys(key_prefix)
    answer_key = keys.webhook_seen(CHANNEL, "test-request")
    jobs = [Job(to="alice", text="r0", id=job_id(CHANNEL, "m-1", "0")), Job(to="bob", text="r1", id=job_id("m-1", "1"))]
    assert await outbox.put_all(jobs, (answer_key, b'{"replies": 2}', 60)) == [True, True]
    assert await outbox.redis.get(answer_key) == b'{"replies": 2}'
    assert 55 < await outbox.redis.ttl(answer_key) <= 60
    again = [Job(to="alice", text="r0 again", id=jobs[0].id), Job(to="alice", text="r2", id=job_id("m-1", "2"))]
    assert await outbox.put_all(again, (answer_key, b'{"replies": 3}', 60)) == [False, True]
    assert await outbox.redis.get(answer_key) == b'{"replies": 3}'
    assert await outbox.put_all([], (answer_key, b"{}", 60)) == []  # no replies: the answer alone
    assert await outbox.redis.get(answer_key) == b"{}"
    # stored sealed, like put's
    raw = await outbox.redis.lrange(outbox.queue_key("alice"), 0, -1)
    assert len(raw) == 2 and all(b'"r0"' not in r and b'"alice"' not in r for r in raw)  # no quote in base64
    outbox.start(send)
    try:
        await until(lambda: len(calls) == 3, what="three sends")
        await asyncio.sleep(0.15)  # room for a wrong extra send to show up
    finally:
        await stop(outbox)
    assert texts(calls, "alice") == ["r0", "r2"] and texts(calls, "bob") == ["r1"]
    assert sample(outbox.metrics, "outbox_queued_total") == 3


async def test_put_all_with_a_running_worker_claims_what_is_due_at_once(make_outbox):
    """The worker's process queues with put_all: a job due at once is claimed by the same script and sent without a
    claim of its own — once, in order per recipient, the interval and the per-second cap kept."""
    send, calls = provider()
    outbox = make_outbox(interval=0.2, per_second=3)
    outbox.start(send)
    try:
        jobs = [Job(to="alice", text="a1", id="a1"), Job(to="alice", text="a2", id="a2"), Job(to="bob", text="b1")]
        assert await outbox.put_all(jobs) == [True, True, True]
        await until(lambda: len(calls) == 3, what="three sends")
        assert texts(calls, "alice") == ["a1", "a2"] and texts(calls, "bob") == ["b1"]
        assert first(calls, "a2").at - first(calls, "a1").at >= 0.2 - TOL  # the interval, though queued together
        # alice was just sent to: her next job waits for the interval instead of being claimed at once
        before = time.monotonic()
        assert await outbox.put_all([Job(to="alice", text="a3")]) == [True]
        await until(lambda: len(calls) == 4, what="the fourth send")
        assert first(calls, "a3").at - first(calls, "a2").at >= 0.2 - TOL and first(calls, "a3").at > before
        # the per-second cap (3/s) counts these claims too
        many = [Job(to=f"r{i}", text=f"r{i}") for i in range(7)]
        assert await outbox.put_all(many) == [True] * 7
        await until(lambda: len(calls) == 11, what="seven more sends")
        await asyncio.sleep(0.15)  # room for a wrong extra send to show up
    finally:
        await stop(outbox)
    assert len(calls) == 11 and len({c.text for c in calls}) == 11
    per_second = Counter(int(c.wall) for c in calls if c.text.startswith("r"))
    assert max(per_second.values()) <= 3, per_second
    assert await outbox.depth() == 0


async def test_a_record_of_each_send_is_written_with_its_settle(make_outbox, key_prefix):
    """``start(send, record)``: what the channel keeps of a send (the SMS receipt record) is written with the settle,
    for sends settled together too; a send without a provider id records nothing."""
    keys = deployment_keys(key_prefix)

    async def send(job: Job) -> str | None:
        await asyncio.sleep(0.01 if job.text.endswith("0") else 0.02)
        return None if job.text == "no-id" else f"pid-{job.text}"

    def record(job: Job, provider_id: str) -> tuple[str, dict[str, str | int | float], int]:
        return keys.sms_receipt(provider_id), {"job": job.id, "status": "sent", "parts": 1}, 120

    outbox = make_outbox()
    names = [f"to-{i}" for i in range(40)]
    for name in names:
        assert await outbox.put(Job(to=name, text=f"{name}:0", id=f"j-{name}"))
        assert await outbox.put(Job(to=name, text=f"{name}:1"))
    assert await outbox.put(Job(to="other", text="no-id"))
    outbox.start(send, record)
    try:
        await until(lambda: sample(outbox.metrics, "outbox_sent_total") == 81, what="81 sends")

        async def drained() -> bool:
            return await outbox.depth() == 0

        await until(drained, what="every recipient settled")
    finally:
        await stop(outbox)
    assert await outbox.depth() == 0
    for name in names:
        assert await outbox.pending(name) == []
        saved = await outbox.redis.hgetall(keys.sms_receipt(f"pid-{name}:0"))
        assert saved == {b"job": f"j-{name}".encode(), b"status": b"sent", b"parts": b"1"}
        assert 100 < await outbox.redis.ttl(keys.sms_receipt(f"pid-{name}:0")) <= 120
        assert await outbox.redis.exists(keys.sms_receipt(f"pid-{name}:1"))
    assert not await outbox.redis.exists(keys.sms_receipt("pid-no-id"), keys.sms_receipt("None"))


# ---- 7. crash safety -------------------------------------------------------------------------------


async def test_a_claimed_job_is_sent_by_another_process_after_the_lease(make_outbox):
    lease = 0.3
    never = asyncio.Event()

    async def hang(job: Job, tried: int) -> None:
        await never.wait()  # the process dies mid-send: the provider call never returns

    send_a, calls_a = provider(hang, by="a")
    send_b, calls_b = provider(by="b")
    a = make_outbox(lease=lease)
    await a.put(Job(to="alice", text="a1"))
    await a.put(Job(to="alice", text="a2"))
    a.start(send_a)
    try:
        await until(lambda: len(calls_a) == 1, what="process A's send")
    finally:
        await stop(a, timeout=0.05)  # cuts the hung send off without settling it
    assert [j.text for j in await a.pending("alice")] == ["a1", "a2"]  # nothing lost
    b = make_outbox(lease=lease)  # a new process: own client, same Redis and prefix
    b.start(send_b)
    try:
        await until(lambda: len(calls_b) == 2, what="process B's sends")
        await until(lambda: _drained(b, "alice"), what="the queue drained")
    finally:
        await stop(b)
    assert texts(calls_a) == ["a1"]
    assert texts(calls_b) == ["a1", "a2"]
    assert calls_b[0].at - calls_a[0].at >= lease - TOL  # not before A's lease ran out
    assert await b.depth() == 0


async def test_a_send_that_outlives_its_lease_does_not_settle_the_next_job(make_outbox):
    lease, interval = 0.15, 0.4

    async def behave(job: Job, tried: int) -> None:
        if job.text == "a1" and tried == 0:
            await asyncio.sleep(2 * lease)  # the provider answers only after the lease ran out

    send, calls = provider(behave)
    outbox = make_outbox(lease=lease, interval=interval)
    await outbox.put(Job(to="alice", text="a1"))
    await outbox.put(Job(to="alice", text="a2"))
    outbox.start(send)
    try:
        # a1 is taken over and sent again at the lease's end (at least once); the first send then returns and
        # its settle must see a1 is no longer the head, instead of popping a2 unsent
        await until(lambda: "a2" in texts(calls), what="a2 sent")
        await until(lambda: _drained(outbox, "alice"), what="the queue drained")
    finally:
        await stop(outbox)
    assert texts(calls) == ["a1", "a1", "a2"]
    assert calls[1].at - calls[0].at >= lease - TOL


async def test_stop_lets_a_send_in_flight_finish_and_records_it(make_outbox):
    async def slow(job: Job, tried: int) -> None:
        await asyncio.sleep(0.1)

    send, calls = provider(slow)
    outbox = make_outbox()
    await outbox.put(Job(to="alice", text="a1"))
    outbox.start(send)
    try:
        await until(lambda: len(calls) == 1, what="the send")
    finally:
        await stop(outbox, timeout=2)
    assert await outbox.pending("alice") == []  # settled, so no other process will send it again
    assert await outbox.depth() == 0
    assert sample(outbox.metrics, "outbox_sent_total") == 1


async def test_jobs_put_while_no_worker_runs_are_sent_when_one_starts(make_outbox):
    producer = make_outbox()  # e.g. the web process queues replies while the sender is down
    for i in range(3):
        await producer.put(Job(to="alice", text=f"a{i}"))
    for i in range(2):
        await producer.put(Job(to="bob", text=f"b{i}"))
    assert await producer.depth() == 2
    send, calls = provider()
    worker = make_outbox()  # the restarted process
    worker.start(send)
    try:
        await until(lambda: len(calls) == 5, what="the backlog sent")
        await until(lambda: _drained(worker, "alice"), what="alice drained")
    finally:
        await stop(worker)
    assert texts(calls, "alice") == ["a0", "a1", "a2"]
    assert texts(calls, "bob") == ["b0", "b1"]
    assert await worker.depth() == 0


# ---- 8. two workers --------------------------------------------------------------------------------


async def test_two_workers_send_each_job_exactly_once_in_order(make_outbox):
    async def work(job: Job, tried: int) -> None:
        await asyncio.sleep(0.01)

    send_a, calls_a = provider(work, by="a")
    send_b, calls_b = provider(work, by="b")
    a = make_outbox(interval=0.02, concurrency=4)
    b = make_outbox(interval=0.02, concurrency=4)
    a.start(send_a)
    b.start(send_b)
    expected = {f"r{r}": [f"r{r}-{n}" for n in range(5)] for r in range(10)}
    try:
        for i in range(50):
            r, n = i % 10, i // 10
            assert await (a if i % 2 else b).put(Job(to=f"r{r}", text=f"r{r}-{n}"))
        await until(lambda: len(calls_a) + len(calls_b) >= 50, timeout=5, what="fifty sends")
        await asyncio.sleep(0.2)  # room for a duplicate to show up
    finally:
        await stop(a)
        await stop(b)
    calls = sorted(calls_a + calls_b, key=lambda c: c.at)
    assert len(calls) == 50
    assert Counter(texts(calls)).most_common(1)[0][1] == 1  # exactly once
    for to, wanted in expected.items():
        assert texts(calls, to) == wanted
    assert calls_a and calls_b  # both workers took part
    assert await a.depth() == 0


# ---- shutdown --------------------------------------------------------------------------------------


async def test_stop_returns_when_every_slot_is_held_by_a_hung_send(make_outbox):
    never = asyncio.Event()

    async def hang(job: Job, tried: int) -> None:
        await never.wait()

    send, calls = provider(hang)
    outbox = make_outbox(concurrency=1)
    await outbox.put(Job(to="alice", text="a1"))
    outbox.start(send)
    try:
        await until(lambda: len(calls) == 1, what="the send")
        await outbox.stop(timeout=0.1)
        assert outbox._task is not None and outbox._task.done()
    finally:
        # clean up what the failing stop() left behind, so the event loop closes quietly
        if outbox._task is not None and not outbox._task.done():
            outbox._task.cancel()
        for task in list(outbox._inflight):
            task.cancel()
        await asyncio.sleep(0.01)


async def test_stop_is_prompt_when_it_comes_while_the_worker_talks_to_redis(make_outbox):
    outbox = make_outbox(lease=30.0)  # a production-like lease: the worker's idle sleep is capped at 1 s
    stopping: list[asyncio.Task[None]] = []

    async def behave(job: Job, tried: int) -> None:
        # a shutdown signal arrives just as a send starts, i.e. while the worker's next claim is on the wire
        stopping.append(asyncio.create_task(outbox.stop()))

    send, calls = provider(behave)
    await outbox.put(Job(to="alice", text="a1"))
    outbox.start(send)
    try:
        await until(lambda: stopping, what="the send")
        started = time.monotonic()
        await stopping[0]
        took = time.monotonic() - started
    finally:
        await outbox.stop()
    assert texts(calls) == ["a1"]
    assert took < 0.3  # nothing is in flight worth waiting for; observed: 1 s


async def test_a_providers_error_that_echoes_the_number_is_masked_in_logs_and_the_dead_list(make_outbox, caplog):
    async def behave(job: Job, tried: int) -> None:
        raise PermanentFailure("invalid recipient: +8613800138000")

    send, calls = provider(behave)
    outbox = make_outbox()
    await outbox.put(Job(to="13800138000", text="x"))
    outbox.start(send)
    try:
        await until(lambda: calls, what="the send")
        await until(outbox.dead, what="the dead record")
    finally:
        await stop(outbox)
    (dead,) = await outbox.dead()
    assert dead["last_error"] == "invalid recipient: 138****8000"
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "138****8000" in logged and "13800138000" not in logged
