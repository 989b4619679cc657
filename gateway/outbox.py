"""A durable outbound queue per channel, kept in Redis: nothing accepted for sending is lost.

Channels that send through a provider's API (SMS, Telegram, later WeChat…) put every message
here instead of calling the provider in the request. Each process runs a worker that sends.

* **Per recipient, in order.** Each recipient has a FIFO list; a sorted set holds the time each
  recipient may next be sent to. The worker claims due recipients with a lease (their score moves
  ``lease`` seconds ahead), sends the head of each list, then pops it. A worker that dies
  mid-send leaves the lease to run out; another process sends the message again (at least once).
* **Rate limits.** After a send the recipient is next due ``interval`` seconds later (Telegram:
  one message a second per chat; SMS: a per-number limit). A per-second counter shared by all
  processes caps the whole channel (Telegram: 30/s).
* **Retries.** A provider that fails (outage, 5xx, 429) has its message retried with jittered
  exponential back-off, or after the provider's ``retry_after``; later messages to the same
  recipient wait behind it. A permanent failure (an invalid number, a user who blocked the bot),
  or ``max_attempts`` failures, moves the message to the channel's dead list, kept for operators.
* **Exactly-once enqueue.** A job id may be given (a reply's is derived from the provider's
  message id): enqueueing the same id twice is a no-op, so a redelivered inbound message whose
  first handling already queued its replies does not queue them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis

from gateway.metrics import Metrics
from gateway.privacy import mask_phone
from gateway.rkeys import OUTBOX_DEAD_KEPT, OUTBOX_ID_TTL, OUTBOX_SECOND_TTL, Keys

log = logging.getLogger(__name__)
_NUMBER = re.compile(r"\+?\d{7,15}")

# KEYS: due zset, recipient list, id marker, the recipient's next allowed send time.
# ARGV: job JSON, recipient, now, id ttl ('' = no id).
_ENQUEUE = """
if ARGV[4] ~= '' then
  if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[4]) then return 0 end
end
redis.call('RPUSH', KEYS[2], ARGV[1])
local at = math.max(tonumber(ARGV[3]), tonumber(redis.call('GET', KEYS[4]) or '0'))
redis.call('ZADD', KEYS[1], 'NX', at, ARGV[2])
return 1
"""

# Claim up to ARGV[3] due recipients. KEYS: due zset. ARGV: now, lease, batch, per-second cap (0 = none),
# key prefix of the recipient lists, key of this second's counter, that counter's TTL.
# Returns {capped (1 when this second's cap stopped the claim), recipient, head job, …}.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {0}
local cap = tonumber(ARGV[4])
for _, r in ipairs(due) do
  local head = redis.call('LINDEX', ARGV[5] .. r, 0)
  if not head then
    redis.call('ZREM', KEYS[1], r)
  else
    if cap > 0 then
      if tonumber(redis.call('GET', ARGV[6]) or '0') >= cap then out[1] = 1 break end
      if redis.call('INCR', ARGV[6]) == 1 then redis.call('EXPIRE', ARGV[6], ARGV[7]) end
    end
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), r)
    table.insert(out, r)
    table.insert(out, head)
  end
end
return out
"""

# Settle the head job. KEYS: due zset, recipient list, dead list, the recipient's next allowed send time.
# ARGV: recipient, head as claimed, outcome (done | retry | dead), next due time, replacement head (retry)
# or dead record (dead), milliseconds the next allowed time is kept (the interval), dead jobs kept.
_SETTLE = """
if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[2] then return 0 end
if ARGV[3] == 'retry' then
  redis.call('LSET', KEYS[2], 0, ARGV[5])
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
  return 1
end
redis.call('LPOP', KEYS[2])
if ARGV[3] == 'dead' then
  redis.call('RPUSH', KEYS[3], ARGV[5])
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[7]), -1)
end
if tonumber(ARGV[6]) > 0 then  -- a message queued after the list emptied still keeps the interval
  redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[6])
end
if redis.call('LLEN', KEYS[2]) > 0 then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1
"""


class RetryLater(Exception):
    """The provider could not take the message now (outage, 5xx, throttling): try again later."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


class PermanentFailure(Exception):
    """The provider refused the message for good (invalid number, blocked bot): do not retry."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Job:
    to: str
    text: str
    id: str = ""
    buttons: list[list[str]] = field(default_factory=list)  # [[title, payload], …]
    kind: str = "message"  # message | agent | notice | otp | marketing
    conversation_id: str = ""
    attempts: int = 0
    created: float = 0.0
    last_error: str = ""

    def dumps(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def loads(cls, raw: bytes | str) -> Job:
        return cls(**json.loads(raw))


Sender = Callable[[Job], Awaitable[str | None]]  # returns the provider's message id, if any
Observer = Callable[[Job, str], Awaitable[None]]  # a job's final outcome: "done" (sent) or "dead" (given up)


@dataclass(frozen=True, slots=True)
class OutboxPolicy:
    interval: float = 1.0  # seconds between two messages to one recipient
    per_second: int = 0  # cap for the whole channel, all processes (0 = none)
    max_attempts: int = 8
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    lease: float = 30.0  # seconds a claimed recipient stays with its worker (longer than a send may take)
    concurrency: int = 16  # sends in flight per process


class Outbox:
    def __init__(self, redis: aioredis.Redis, keys: Keys, channel: str, metrics: Metrics,
                 policy: OutboxPolicy = OutboxPolicy()) -> None:  # fmt: skip
        self.redis = redis
        self.keys = keys
        self.channel = channel
        self.policy = policy
        self.metrics = metrics
        self.due_key, self.dead_key = keys.outbox_due(channel), keys.outbox_dead(channel)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._claim = redis.register_script(_CLAIM)
        self._settle = redis.register_script(_SETTLE)
        self._send: Sender | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(policy.concurrency)
        self.observers: list[Observer] = []  # told each job's final outcome (e.g. an incident broadcast's progress)

    # A recipient (a phone number, a chat id) is known in Redis only by its keyed hash (``Keys.cid``): in the due set
    # and the key names. The job itself, which carries the address and the text, is stored encrypted.
    def queue_key(self, recipient: str) -> str:
        return self.keys.outbox_queue(self.channel, self.keys.cid(recipient))

    def next_key(self, recipient: str) -> str:
        return self.keys.outbox_next(self.channel, self.keys.cid(recipient))

    # ---- enqueue -------------------------------------------------------------------------------
    async def put(self, job: Job, id_ttl: int = OUTBOX_ID_TTL) -> bool:
        """Queue ``job``; False when a job with the same id was already queued."""
        job.created = job.created or time.time()
        marker = self.keys.outbox_id(self.channel, job.id or "-")
        rid = self.keys.cid(job.to)
        queue, later = self.keys.outbox_queue(self.channel, rid), self.keys.outbox_next(self.channel, rid)
        added = await self._enqueue(
            keys=[self.due_key, queue, marker, later],
            args=[self.keys.seal(job.dumps()), rid, time.time(), id_ttl if job.id else ""],
        )  # fmt: skip
        if added:
            self.metrics.outbox_queued.labels(self.channel).inc()
            self._wake.set()
        return bool(added)

    async def depth(self) -> int:
        """Recipients with something waiting (a cheap view of the backlog)."""
        return int(await self.redis.zcard(self.due_key))

    async def pending(self, recipient: str) -> list[Job]:
        return [Job.loads(self.keys.unseal(raw)) for raw in await self.redis.lrange(self.queue_key(recipient), 0, -1)]

    async def dead(self) -> list[dict[str, Any]]:
        return [json.loads(self.keys.unseal(raw)) for raw in await self.redis.lrange(self.dead_key, 0, -1)]

    # ---- the worker ----------------------------------------------------------------------------
    def start(self, send: Sender) -> None:
        self._send = send
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"outbox-{self.channel}")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming; let sends in flight finish (those cut off are re-sent after their lease)."""
        self._stopping = True
        self._wake.set()
        if self._task:
            done, _ = await asyncio.wait({self._task}, timeout=timeout)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=timeout)
        for task in list(self._inflight):  # cut off: re-sent by any process once their lease runs out
            task.cancel()

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            self._wake.clear()  # before claiming: a put, a settled send or stop() from now on wakes the idle wait
            try:
                claimed, capped = await self._claim_batch()
                backoff = 0.1
            except (aioredis.RedisError, OSError) as exc:
                log.warning("outbox %s: Redis unavailable (%s); retrying", self.channel, type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if claimed:
                continue
            await self._idle(capped)

    async def _claim_batch(self) -> tuple[int, bool]:
        free = self.policy.concurrency - len(self._inflight)
        if free <= 0:  # every slot busy: until one frees, or stop()
            await self._sleep(1.0)
            return 0, False
        now = time.time()
        got = await self._claim(
            keys=[self.due_key],
            args=[now, self.policy.lease, free, self.policy.per_second, self.keys.outbox_queue(self.channel, ""),
                  self.keys.outbox_second(self.channel, int(now)), OUTBOX_SECOND_TTL],
        )  # fmt: skip
        for i in range(1, len(got), 2):
            recipient, head = got[i].decode(), got[i + 1]
            task = asyncio.create_task(self._deliver(recipient, head))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            task.add_done_callback(lambda _: self._wake.set())  # a slot is free again
        return len(got) // 2, bool(got[0])

    async def _idle(self, capped: bool) -> None:
        """Sleep until the earliest recipient is due (at most 1 s) — or, when this second's cap was reached,
        until the next second — unless something is queued, a send settles, or the outbox stops."""
        if capped:
            await self._sleep(1.0 - time.time() % 1.0 + 0.001)
            return
        first = await self.redis.zrange(self.due_key, 0, 0, withscores=True)
        wait = 1.0
        if first:
            wait = min(max(first[0][1] - time.time(), 0.001), 1.0)
        await self._sleep(wait)

    async def _sleep(self, seconds: float) -> None:
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _deliver(self, recipient: str, head: bytes) -> None:
        assert self._send is not None
        job = Job.loads(self.keys.unseal(head))
        started = time.perf_counter()
        outcome, error, after = "done", "", None
        async with self._slots:
            try:
                await self._send(job)
            except RetryLater as exc:
                outcome, error, after = "retry", exc.reason, exc.after
            except PermanentFailure as exc:
                outcome, error = "dead", exc.reason
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an adapter bug or an unexpected library error: retry, say what it was
                outcome, error = "retry", type(exc).__name__
                log.warning("outbox %s: send raised %s", self.channel, type(exc).__name__, exc_info=True)
        now = time.time()
        labels = self.channel
        if outcome != "done":
            job.attempts += 1  # tries made
            error = _NUMBER.sub(lambda m: mask_phone(m.group()), error)  # a provider may echo the number
            job.last_error = error[:200]
        if outcome == "retry":
            if job.attempts >= self.policy.max_attempts:
                outcome = "dead"
            else:
                delay = after if after is not None else self._backoff(job.attempts)
                self.metrics.outbox_retries.labels(labels).inc()
                log.info("outbox %s: send failed (%s); try %d in %.1f s", self.channel, error, job.attempts + 1,
                         delay)  # fmt: skip
                await self._settle_safely(recipient, head, "retry", now + delay, self.keys.seal(job.dumps()))
                return
        if outcome == "dead":
            record = self.keys.seal(json.dumps({**asdict(job), "failed_at": now}, ensure_ascii=False))
            self.metrics.outbox_dead.labels(labels).inc()
            log.warning("outbox %s: message dropped after %d tr%s: %s", self.channel, job.attempts,
                        "y" if job.attempts == 1 else "ies", error)  # fmt: skip
            await self._settle_safely(recipient, head, "dead", now, record)
            await self._observe(job, "dead")
            return
        self.metrics.outbox_sent.labels(labels).inc()
        self.metrics.outbox_send_seconds.labels(labels).observe(time.perf_counter() - started)
        await self._settle_safely(recipient, head, "done", now + self.policy.interval, "")
        await self._observe(job, "done")

    async def _observe(self, job: Job, outcome: str) -> None:
        for observer in self.observers:
            try:
                await observer(job, outcome)
            except Exception as exc:  # an observer's failure never touches the send
                log.warning("outbox %s: an observer failed (%s)", self.channel, type(exc).__name__)

    async def _settle_safely(self, recipient: str, head: bytes, outcome: str, due: float, data: str) -> None:
        for attempt in range(5):
            try:
                keep_ms = int(self.policy.interval * 1000) if outcome == "done" else 0
                await self._settle(keys=[self.due_key, self.keys.outbox_queue(self.channel, recipient), self.dead_key,
                                         self.keys.outbox_next(self.channel, recipient)],
                                   args=[recipient, head, outcome, due, data, keep_ms,
                                         OUTBOX_DEAD_KEPT])  # fmt: skip
                self._wake.set()  # the recipient's next time is set: the worker re-plans its sleep
                return
            except (aioredis.RedisError, OSError):
                await asyncio.sleep(0.2 * (attempt + 1))
        # Redis stayed away: the lease runs out and the message is handled again (at least once)
        log.warning("outbox %s: could not record a send's outcome; it will be retried", self.channel)

    def _backoff(self, attempts: int) -> float:
        p = self.policy
        ceiling = min(p.backoff_max, p.backoff_base * 2 ** (attempts - 1))
        return ceiling / 2 + random.random() * ceiling / 2  # "equal jitter"


def job_id(*parts: str) -> str:
    """A stable id for a job derived from what caused it (channel, sender, provider message id, index)."""
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:20]


def random_id() -> str:
    return os.urandom(10).hex()
