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
* **Few round trips** (one Redis server; a Cluster takes the plain path). ``put_all`` queues several jobs and
  sets a string with them in one script (the SMS webhook's recorded answer), and claims a job that makes its
  recipient due at once for this process's worker when a send slot is free (the worker sends it without a
  claim of its own; ``put`` does the same once the lean connection is known); the claim script says when
  the next recipient is due (the worker's sleep); sends that finish in the same turn of the event loop are
  settled by one script call, which also writes what the channel records of each send (the SMS receipt
  record, ``start(send, record)``).
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
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from gateway import redisconn, tasks
from gateway.errors import warn_outage
from gateway.fastredis import FastRedis, FastRedisError
from gateway.metrics import Metrics
from gateway.privacy import mask_phone
from gateway.rkeys import OUTBOX_DEAD_KEPT, OUTBOX_ID_TTL, OUTBOX_SECOND_TTL, Keys

log = logging.getLogger(__name__)
_NUMBER = re.compile(r"\+?\d{7,15}")
LOCAL_JOBS = 4096  # jobs queued by this process kept in memory until it sends them (Outbox._local)

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

# Several jobs queued as _ENQUEUE does, and a string set with them (an inbound request's recorded answer: the
# request and its replies are recorded together). Only on one server (the string lives in another Cluster slot).
# A job that makes its recipient due at once is also claimed, as _CLAIM would (up to ARGV[4] of them, the queueing
# process's free send slots; this second's cap counted): its worker sends it without a claim of its own.
# KEYS: due zset. ARGV: the string's key ('' for none), value, TTL, claims allowed, lease, per-second cap (0 =
# none), key of this second's counter, that counter's TTL, now, the key prefixes of the id markers, the recipient
# lists and their next allowed send times, the id markers' TTL; then per job: job, recipient, its id ('' = none).
# Returns per job: queued (1/0), claimed (1/0).
_ENQUEUE_ALL = """
local out = {}
local claims, cap, now = tonumber(ARGV[4]), tonumber(ARGV[6]), tonumber(ARGV[9])
for i = 14, #ARGV, 3 do
  local r, added, claimed = ARGV[i + 1], 1, 0
  local queue = ARGV[11] .. r
  if ARGV[i + 2] ~= '' and not redis.call('SET', ARGV[10] .. ARGV[i + 2], '1', 'NX', 'EX', ARGV[13]) then
    added = 0
  end
  if added == 1 then
    redis.call('RPUSH', queue, ARGV[i])
    local at = math.max(now, tonumber(redis.call('GET', ARGV[12] .. r) or '0'))
    if redis.call('ZADD', KEYS[1], 'NX', at, r) == 1 and at <= now and claims > 0 and redis.call('LLEN', queue) == 1
        and (cap == 0 or tonumber(redis.call('GET', ARGV[7]) or '0') < cap) then
      if cap > 0 and redis.call('INCR', ARGV[7]) == 1 then redis.call('EXPIRE', ARGV[7], ARGV[8]) end
      redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), r)
      claims = claims - 1
      claimed = 1
    end
  end
  table.insert(out, added)
  table.insert(out, claimed)
end
if ARGV[1] ~= '' then redis.call('SET', ARGV[1], ARGV[2], 'EX', ARGV[3]) end
return out
"""

# Claim up to ARGV[3] due recipients. KEYS: due zset. ARGV: now, lease, batch, per-second cap (0 = none),
# key prefix of the recipient lists, key of this second's counter, that counter's TTL.
# Returns {capped (1 when this second's cap stopped the claim), when the earliest recipient left is due ('' for
# none: the worker's idle wait, without another round trip), recipient, head job, …}.
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
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
table.insert(out, 2, first[2] or '')
return out
"""

# Settle head jobs, several at once (the sends that finished while the previous settle was on its way).
# KEYS: due zset, dead list. ARGV: key prefix of the recipient lists, key prefix of their next allowed send
# times, dead jobs kept; then per job: recipient, head as claimed, outcome (done | retry | dead), next due time,
# replacement head (retry) or dead record (dead), milliseconds the next allowed time is kept (the interval), n,
# and n more: a hash to record with the send (key, TTL, field, value, …; n = 0 for none, and always 0 on a
# Cluster, where that key lives in another slot). Returns per job 2 when its recipient is due again (a retry, or
# more jobs waiting: the worker re-plans its sleep), 1 when its list emptied, 0 when the head is no longer the
# one claimed (its lease ran out and another process took it).
_SETTLE = """
local out = {}
local i = 4
while i <= #ARGV do
  local r, head, outcome, due, data, keep = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local n = tonumber(ARGV[i + 6])
  if n > 0 then
    redis.call('HSET', ARGV[i + 7], unpack(ARGV, i + 9, i + 6 + n))
    redis.call('EXPIRE', ARGV[i + 7], ARGV[i + 8])
  end
  i = i + 7 + n
  local queue, later = ARGV[1] .. r, ARGV[2] .. r
  if redis.call('LINDEX', queue, 0) ~= head then
    table.insert(out, 0)
  elseif outcome == 'retry' then
    redis.call('LSET', queue, 0, data)
    redis.call('ZADD', KEYS[1], due, r)
    table.insert(out, 2)
  else
    redis.call('LPOP', queue)
    if outcome == 'dead' then
      redis.call('RPUSH', KEYS[2], data)
      redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
    end
    if tonumber(keep) > 0 then  -- a message queued after the list emptied still keeps the interval
      redis.call('SET', later, due, 'PX', keep)
    end
    if redis.call('LLEN', queue) > 0 then
      redis.call('ZADD', KEYS[1], due, r)
      table.insert(out, 2)
    else
      redis.call('ZREM', KEYS[1], r)
      table.insert(out, 1)
    end
  end
end
return out
"""
SETTLE_BATCH = 64  # jobs settled by one script call at most


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
        return _JSON.encode({f: getattr(self, f) for f in _JOB_FIELDS}).decode()

    def copy(self) -> Job:
        return replace(self, buttons=[list(b) for b in self.buttons])

    @classmethod
    def loads(cls, raw: bytes | str) -> Job:
        return cls(**json.loads(raw))


_JOB_FIELDS = tuple(f.name for f in fields(Job))
_JSON = msgspec.json.Encoder()

Sender = Callable[[Job], Awaitable[str | None]]  # returns the provider's message id, if any
# What to record of a job sent (a hash: key, fields, TTL in seconds) given the provider's id, written with the
# settle in the same script (on a Cluster, where the key lives in another slot, right after the send)
Recorder = Callable[[Job, str], tuple[str, dict[str, str | int | float], int] | None]
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
        self._enqueue_all = redis.register_script(_ENQUEUE_ALL)
        self._claim = redis.register_script(_CLAIM)
        self._settle = redis.register_script(_SETTLE)
        self._send: Sender | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(policy.concurrency)
        self.observers: list[Observer] = []  # told each job's final outcome (e.g. an incident broadcast's progress)
        self._record: Recorder | None = None
        self.fast: FastRedis | None = None  # the lean connection, once a channel's put_all was given it
        # one server: a send's record is written by the settle script; a Cluster keeps it in another slot
        self._one_server = not isinstance(redis, aioredis.RedisCluster)
        # settles waiting for the next script call, and the task making those calls (one at a time: the sends that
        # finish while one call is on its way are settled together by the next)
        self._settles: list[tuple[list[Any], asyncio.Future[int]]] = []
        self._settlers: set[asyncio.Task[None]] = set()
        self._slot_wait = False  # the worker waits for a send to finish (every slot busy)
        self._sending = 0  # sends started and not finished (a send's slot is free again before its settle)
        # jobs this process queued, by their sealed form: sent without decrypting and parsing them again (a job
        # another process queued, or one pushed out of this bounded memo, is read from Redis as before)
        self._local: dict[bytes, Job] = {}
        self._queued = metrics.outbox_queued.labels(channel)
        self._sent = metrics.outbox_sent.labels(channel)
        self._send_seconds = metrics.outbox_send_seconds.labels(channel)

    # A recipient (a phone number, a chat id) is known in Redis only by its keyed hash (``Keys.cid``): in the due set
    # and the key names. The job itself, which carries the address and the text, is stored encrypted.
    def queue_key(self, recipient: str) -> str:
        return self.keys.outbox_queue(self.channel, self.keys.cid(recipient))

    def next_key(self, recipient: str) -> str:
        return self.keys.outbox_next(self.channel, self.keys.cid(recipient))

    # ---- enqueue -------------------------------------------------------------------------------
    async def put(self, job: Job, id_ttl: int = OUTBOX_ID_TTL) -> bool:
        """Queue ``job``; False when a job with the same id was already queued."""
        if self._one_server and self.fast is not None:  # as put_all, on the lean connection (the SMS outbox: one-time
            # codes, broadcasts); through redis-py, its longer argument list costs more than the claim it saves
            return (await self.put_all([job], fast=self.fast, id_ttl=id_ttl))[0]
        job.created = job.created or time.time()
        marker = self.keys.outbox_id(self.channel, job.id or "-")
        rid = self.keys.cid(job.to)
        queue, later = self.keys.outbox_queue(self.channel, rid), self.keys.outbox_next(self.channel, rid)
        text = job.dumps()
        sealed = self.keys.seal(text)
        added = await redisconn.durable_evalsha(  # on a cluster, queued once the replicas have it (redis.wait_replicas)
            self.redis, self._enqueue, [self.due_key, queue, marker, later],
            [sealed, rid, time.time(), id_ttl if job.id else ""],
        )  # fmt: skip
        if added:
            self._queued.inc()
            self._remember(sealed, job)
            self._wake.set()
        return bool(added)

    async def put_all(self, jobs: list[Job], then_set: tuple[str, bytes, int] | None = None,
                      fast: FastRedis | None = None, id_ttl: int = OUTBOX_ID_TTL) -> list[bool]:  # fmt: skip
        """Queue ``jobs`` (each as ``put`` does) and set ``then_set`` (key, value, TTL in seconds) with them, in one
        script on one server (on ``fast``, the lean connection, when given). On a Cluster the string lives in another
        slot: the jobs are put one by one, then the string is set."""
        if not self._one_server:
            added = [await self.put(job, id_ttl) for job in jobs]
            if then_set is not None:
                await self.redis.set(then_set[0], then_set[1], ex=then_set[2])
            return added
        now = time.time()
        # this process's worker runs and has free slots: a job due at once is claimed for it by the same script (the
        # slots are held from now, or puts at the same moment would claim the same ones; those not used are given back)
        free = 0 if self._task is None or self._stopping else self.policy.concurrency - self._sending
        claims = max(min(free, len(jobs)), 0)
        self._sending += claims
        args: list[Any] = [*(then_set or ("", "", "")), claims, self.policy.lease, self.policy.per_second,
                           self.keys.outbox_second(self.channel, int(now)), OUTBOX_SECOND_TTL, now,
                           self.keys.outbox_id(self.channel, ""), self.keys.outbox_queue(self.channel, ""),
                           self.keys.outbox_next(self.channel, ""), id_ttl]  # fmt: skip
        kept = []
        for job in jobs:
            job.created = job.created or now
            rid = self.keys.cid(job.to)
            text = job.dumps()
            sealed = self.keys.seal(text)
            kept.append((rid, sealed, job))
            args += [sealed, rid, job.id]
        try:
            got = await self._run_enqueue_all(args, fast)
        finally:
            self._sending -= claims  # _start_delivery takes a slot for each job claimed
            if claims and self._slot_wait:  # slots held for this call may be free again
                self._wake.set()
        queued = got[0::2]
        for (rid, sealed, job), added, claimed in zip(kept, queued, got[1::2], strict=True):
            if claimed:  # the head of its list (the recipient was not due before): sent from here, no claim needed
                self._queued.inc()
                self._start_delivery(rid, sealed.encode(), job.copy())
            elif added:
                self._queued.inc()
                self._remember(sealed, job)
                self._wake.set()
        return [bool(added) for added in queued]

    async def _run_enqueue_all(self, args: list[Any], fast: FastRedis | None) -> list[int]:
        if fast is None:
            return list(await self._enqueue_all(keys=[self.due_key], args=args))
        self.fast = self.fast or fast  # the worker's settles use the lean connection too
        return list(await self._on_fast(fast, self._enqueue_all, [self.due_key], args))

    async def _on_fast(self, fast: FastRedis, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """A registered script run on the lean connection (loaded again if Redis forgot it)."""
        try:
            return await fast.evalsha(script.sha, keys, args)
        except FastRedisError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            await self.redis.script_load(script.script)  # Redis restarted and forgot it
            return await fast.evalsha(script.sha, keys, args)

    def _remember(self, sealed: str, job: Job) -> None:
        """A job just queued, kept for this process's worker (which will most likely be the one to send it)."""
        if self._task is None:
            return
        if len(self._local) >= LOCAL_JOBS:
            del self._local[next(iter(self._local))]  # the oldest (sent by another process, or stuck)
        self._local[sealed.encode()] = job.copy()

    async def depth(self) -> int:
        """Recipients with something waiting (a cheap view of the backlog)."""
        return int(await self.redis.zcard(self.due_key))

    async def pending(self, recipient: str) -> list[Job]:
        return [Job.loads(self.keys.unseal(raw)) for raw in await self.redis.lrange(self.queue_key(recipient), 0, -1)]

    async def dead(self) -> list[dict[str, Any]]:
        return [json.loads(self.keys.unseal(raw)) for raw in await self.redis.lrange(self.dead_key, 0, -1)]

    # ---- the worker ----------------------------------------------------------------------------
    def start(self, send: Sender, record: Recorder | None = None) -> None:
        """Send with ``send``; ``record`` names what to keep of each job sent (a channel's receipt record)."""
        self._send = send
        self._record = record
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"outbox-{self.channel}")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming; let sends in flight finish (those cut off are re-sent after their lease)."""
        self._stopping = True
        self._wake.set()
        if self._task:
            done, _ = await asyncio.wait({self._task}, timeout=timeout)
            if not done:
                await tasks.stop(self._task)
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=timeout)
        for task in list(self._inflight):  # cut off: re-sent by any process once their lease runs out
            task.cancel()
        if self._settlers:  # the settles of sends that finished
            await asyncio.wait(self._settlers, timeout=timeout)

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            self._wake.clear()  # before claiming: a put, a settled send or stop() from now on wakes the idle wait
            try:
                free = self.policy.concurrency - self._sending
                if free <= 0:  # every slot busy: until one frees, or stop()
                    self._slot_wait = True
                    await self._sleep(1.0)
                    self._slot_wait = False
                    continue
                claimed, capped, first = await self._claim_batch(free)
                backoff = 0.1
            except (aioredis.RedisError, OSError) as exc:
                warn_outage(f"outbox {self.channel} (retrying)", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if claimed >= free:  # a full batch: more may be due at once
                continue
            await self._idle(capped, first)

    async def _claim_batch(self, free: int) -> tuple[int, bool, float | None]:
        """Up to ``free`` due recipients claimed and their sends started: how many, whether this second's cap
        stopped the claim, and when the earliest recipient left is due (None: none is waiting)."""
        now = time.time()
        got = await self._claim(
            keys=[self.due_key],
            args=[now, self.policy.lease, free, self.policy.per_second, self.keys.outbox_queue(self.channel, ""),
                  self.keys.outbox_second(self.channel, int(now)), OUTBOX_SECOND_TTL],
        )  # fmt: skip
        for i in range(2, len(got), 2):
            self._start_delivery(got[i].decode(), got[i + 1])
        return (len(got) - 2) // 2, bool(got[0]), float(got[1]) if got[1] else None

    def _start_delivery(self, recipient: str, head: bytes, job: Job | None = None) -> None:
        """A claimed recipient's head sent by a task of its own (``job``: the head in clear, when known here)."""
        self._sending += 1
        task = asyncio.create_task(self._deliver(recipient, head, job))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _idle(self, capped: bool, first: float | None) -> None:
        """Sleep until the earliest recipient is due (``first``; at most 1 s) — or, when this second's cap was
        reached, until the next second — unless something is queued, a send settles, or the outbox stops."""
        if capped:
            await self._sleep(1.0 - time.time() % 1.0 + 0.001)
            return
        await self._sleep(1.0 if first is None else min(max(first - time.time(), 0.001), 1.0))

    async def _sleep(self, seconds: float) -> None:
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _deliver(self, recipient: str, head: bytes, job: Job | None = None) -> None:
        try:
            job, outcome, error, after, record, started = await self._sent_job(recipient, head, job)
        finally:  # the send's slot is free (its settle does not hold it)
            self._sending -= 1
            if self._slot_wait:  # the worker waits for a slot
                self._wake.set()
        await self._settle_sent(recipient, head, job, outcome, error, after, record, started)

    async def _sent_job(self, recipient: str, head: bytes, job: Job | None
                        ) -> tuple[Job, str, str, float | None, list[Any], float]:  # fmt: skip
        """The claimed head sent: the job, the outcome (done | retry | dead), the error, the provider's retry-after,
        the send's record for the settle, when the send started."""
        assert self._send is not None
        job = job or self._local.pop(head, None) or Job.loads(self.keys.unseal(head))
        started = time.perf_counter()
        outcome, error, after = "done", "", None
        record: list[Any] = []
        async with self._slots:
            try:
                provider_id = await self._send(job)
                kept = self._record(job, provider_id) if self._record is not None and provider_id else None
                if kept is not None:
                    key, fields, ttl = kept
                    if self._one_server:  # written by the settle script, with it
                        record = [2 + 2 * len(fields), key, ttl, *(x for kv in fields.items() for x in kv)]
                    else:
                        async with self.redis.pipeline(transaction=False) as pipe:
                            pipe.hset(key, mapping=fields)
                            pipe.expire(key, ttl)
                            await pipe.execute()
            except RetryLater as exc:
                outcome, error, after = "retry", exc.reason, exc.after
            except PermanentFailure as exc:
                outcome, error = "dead", exc.reason
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an adapter bug or an unexpected library error: retry, say what it was
                outcome, error = "retry", type(exc).__name__
                log.warning("outbox %s: send raised %s", self.channel, type(exc).__name__, exc_info=True)
        return job, outcome, error, after, record, started

    async def _settle_sent(self, recipient: str, head: bytes, job: Job, outcome: str, error: str, after: float | None,
                           record: list[Any], started: float) -> None:  # fmt: skip
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
        self._sent.inc()
        self._send_seconds.observe(time.perf_counter() - started)
        await self._settle_safely(recipient, head, "done", now + self.policy.interval, "", record)
        await self._observe(job, "done")

    async def _observe(self, job: Job, outcome: str) -> None:
        for observer in self.observers:
            try:
                await observer(job, outcome)
            except Exception as exc:  # an observer's failure never touches the send
                log.warning("outbox %s: an observer failed (%s)", self.channel, type(exc).__name__)

    async def _settle_safely(self, recipient: str, head: bytes, outcome: str, due: float, data: str,
                             record: list[Any] | None = None) -> None:  # fmt: skip
        keep_ms = int(self.policy.interval * 1000) if outcome == "done" else 0
        item = [recipient, head, outcome, due, data, keep_ms, *(record or [0])]
        for attempt in range(5):
            try:
                if await self._settled(item) == 2:
                    self._wake.set()  # the recipient is due again: the worker re-plans its sleep
                return
            except (aioredis.RedisError, OSError, FastRedisError):
                await asyncio.sleep(0.2 * (attempt + 1))
        # Redis stayed away: the lease runs out and the message is handled again (at least once)
        log.warning("outbox %s: could not record a send's outcome; it will be retried", self.channel)

    async def _settled(self, item: list[Any]) -> int:
        """``item`` settled by the next settle script call, with the others waiting then (1, or 0 when the head is
        no longer the one claimed)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        if not self._settles:  # the first of this moment: the settles made until the loop's next turn go with it
            loop.call_soon(self._settle_waiting)
        self._settles.append((item, future))
        return await future

    def _settle_waiting(self) -> None:
        waiting, self._settles = self._settles, []
        for i in range(0, len(waiting), SETTLE_BATCH):
            task = asyncio.create_task(self._settle_batch(waiting[i : i + SETTLE_BATCH]))
            self._settlers.add(task)
            task.add_done_callback(self._settlers.discard)

    async def _settle_batch(self, batch: list[tuple[list[Any], asyncio.Future[int]]]) -> None:
        args: list[Any] = [self.keys.outbox_queue(self.channel, ""), self.keys.outbox_next(self.channel, ""),
                           OUTBOX_DEAD_KEPT]  # fmt: skip
        for item, _ in batch:
            args += item
        try:
            if self.fast is not None:
                done = await self._on_fast(self.fast, self._settle, [self.due_key, self.dead_key], args)
            else:
                done = await self._settle(keys=[self.due_key, self.dead_key], args=args)
        except Exception as exc:  # each waiting send retries (or gives up) on its own
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, done, strict=True):
            if not future.done():  # its send was cancelled (stop): the settle was made all the same
                future.set_result(int(result))

    def _backoff(self, attempts: int) -> float:
        p = self.policy
        ceiling = min(p.backoff_max, p.backoff_base * 2 ** (attempts - 1))
        return ceiling / 2 + random.random() * ceiling / 2  # "equal jitter"


def job_id(*parts: str) -> str:
    """A stable id for a job derived from what caused it (channel, sender, provider message id, index)."""
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:20]


def random_id() -> str:
    return os.urandom(10).hex()
