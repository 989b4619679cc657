"""SMPP's inbound side: mobile-originated texts and delivery receipts, from the link's thread
(``gateway/channels/smpp.py``) through Redis to the SMS channel.

* A ``deliver_sm`` is only acknowledged (``ESME_ROK``) once it is in Redis: parts of a long message are
  collected per (sender, reference) until complete (``Keys.smpp_parts``), then the whole text goes into an
  inbound stream (``Keys.smpp_inbox``); a Redis failure answers ``ESME_RX_T_APPN`` so the SMSC delivers again.
* A consumer group reads the stream and hands each text to ``SmsChannel.receive``; entries of a process that
  died are claimed by another after a minute. SMPP gives no id to a customer's message: a redelivery is
  recognised by its content (sender, text) within two minutes (``Keys.smpp_seen``).
* Delivery receipts (``esm_class`` 0x04) update the send's record (``SmsChannel.receipt``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import os
import socket
import time
from collections.abc import Awaitable
from typing import Any, Protocol

import redis.asyncio as aioredis
import smpplib.consts as C

from gateway import tasks
from gateway.channels.smpp import MobileOriginated, SmppLink, SmppProvider, decode
from gateway.errors import BadRequest, TooManyRequests, warn_outage
from gateway.privacy import mask_phone
from gateway.rkeys import SMPP_INBOX_GROUP, SMPP_INBOX_MAXLEN, SMPP_PARTS_TTL, SMPP_SEEN_TTL, Keys

log = logging.getLogger(__name__)


class Receiver(Protocol):
    """Where an SMPP text and a delivery receipt go (the SMS channel)."""

    async def receive(self, raw_from: object, text: object, message_id: str, received_at: float | None = None,
                      provider: str = "") -> Any: ...  # fmt: skip

    async def receipt(self, provider_id: str, status: str, error: str = "") -> bool: ...


# Collect the parts of a long message; when all are there return them (and forget them).
# KEYS: parts hash. ARGV: seq, bytes, total, ttl.
_PARTS = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if redis.call('HLEN', KEYS[1]) < tonumber(ARGV[3]) then return nil end
local all = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return all
"""

# Accept a whole message unless the same (sender, text) was accepted in the last two minutes.
# KEYS: seen marker, inbound stream. ARGV: window, the stream's length, fields…
_ACCEPT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
return 1
"""


class SmppInbound:
    """Mobile-originated texts: from the link's thread into Redis, then to the channel."""

    GROUP = SMPP_INBOX_GROUP
    WINDOW = SMPP_SEEN_TTL

    def __init__(self, redis: aioredis.Redis, keys: Keys, channel: Receiver) -> None:
        self.redis = redis
        self.channel = channel
        self.keys = keys
        self.stream = keys.smpp_inbox()
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self._parts = redis.register_script(_PARTS)
        self._accept = redis.register_script(_ACCEPT)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.link: SmppLink | None = None

    async def start(self, provider: SmppProvider) -> None:
        self._loop = asyncio.get_running_loop()
        with contextlib.suppress(aioredis.ResponseError):  # BUSYGROUP: it exists
            await self.redis.xgroup_create(self.stream, self.GROUP, id="0", mkstream=True)
        self.link = provider.link
        self.link.on_deliver = self._on_deliver
        self.link.on_receipt = self._on_receipt
        self.link.start()
        self._task = asyncio.create_task(self._consume(), name="smpp-inbox")

    async def stop(self) -> None:
        self._stopping = True
        await tasks.stop(self._task)
        if self._handling:
            await asyncio.wait(self._handling, timeout=10)

    # ---- called on the link's thread ---------------------------------------------------------------
    def _call(self, coro: Awaitable[int]) -> int:
        assert self._loop is not None
        future: concurrent.futures.Future[int] = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        try:
            return future.result(timeout=5)
        except Exception as exc:
            future.cancel()
            log.warning("SMPP: could not store an incoming message (%s); the SMSC will deliver it again",
                        type(exc).__name__)  # fmt: skip
            return C.SMPP_ESME_RX_T_APPN

    def _on_deliver(self, mo: MobileOriginated) -> int:
        return self._call(self._store(mo))

    def _on_receipt(self, message_id: str, status: str, error: str) -> int:
        async def record() -> int:
            await self.channel.receipt(message_id, status, error)
            return C.SMPP_ESME_ROK

        return self._call(record())

    # ---- asyncio side ------------------------------------------------------------------------------
    async def _store(self, mo: MobileOriginated) -> int:
        body, coding = mo.body, mo.data_coding
        if mo.concat and mo.concat[1] > 1:
            ref, total, seq = mo.concat
            key = self.keys.smpp_parts(mo.source, ref, total)
            got = await self._parts(keys=[key], args=[seq, bytes([coding]) + body, total, SMPP_PARTS_TTL])
            if got is None:
                return C.SMPP_ESME_ROK  # a part kept; the rest will come
            parts = {int(got[i]): got[i + 1] for i in range(0, len(got), 2)}
            coding = parts[min(parts)][0]
            body = b"".join(parts[i][1:] for i in sorted(parts))
        text = decode(body, coding)
        digest = hashlib.sha1(f"{mo.source}|{mo.dest}|{text}".encode()).hexdigest()[:20]
        await self._accept(
            keys=[self.keys.smpp_seen(digest), self.stream],
            args=[self.WINDOW, SMPP_INBOX_MAXLEN, "from", self.keys.seal(mo.source), "to", mo.dest,
                  "text", self.keys.seal(text),
                  "id", f"{digest}-{time.time():.3f}", "at", f"{time.time():.3f}"],
        )  # fmt: skip
        return C.SMPP_ESME_ROK

    async def _consume(self) -> None:
        last_claim = 0.0
        while not self._stopping:
            try:
                if time.monotonic() - last_claim > 30:  # entries of a process that died while handling them
                    last_claim = time.monotonic()
                    _, claimed, *_ = await self.redis.xautoclaim(self.stream, self.GROUP, self.consumer,
                                                                 min_idle_time=60_000, count=50)  # fmt: skip
                    for entry_id, fields in claimed:
                        self._spawn(entry_id, fields)
                batch = await self.redis.xreadgroup(self.GROUP, self.consumer, {self.stream: ">"}, count=20,
                                                    block=1000)  # fmt: skip
                for _, entries in batch or ():
                    for entry_id, fields in entries:
                        self._spawn(entry_id, fields)
            except asyncio.CancelledError:
                raise
            except (aioredis.RedisError, OSError) as exc:
                warn_outage("SMPP inbox", exc)
                await asyncio.sleep(1)

    def _spawn(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        task = asyncio.create_task(self._handle(entry_id, fields))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def _handle(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        f = {k.decode(): v.decode() for k, v in fields.items()}
        f["from"], f["text"] = self.keys.unseal(f.get("from", "")), self.keys.unseal(f.get("text", ""))  # sealed
        try:
            await self.channel.receive(f["from"], f["text"], f["id"], float(f.get("at", 0)) or None, provider="smpp")
        except Exception as exc:
            # a bad text (empty, too long) is dropped; anything else is retried by the claim after a minute — a
            # sender over its rate (counted in gateway_throttled_total) too, without a line for each
            if isinstance(exc, TooManyRequests):
                return
            if not isinstance(exc, BadRequest):
                log.warning("SMPP inbox: a message from %s failed (%s); it will be retried",
                            mask_phone(f.get("from", "")), type(exc).__name__)  # fmt: skip
                return
            log.info("SMPP inbox: a message from %s was dropped: %s", mask_phone(f.get("from", "")), exc)
        await self.redis.xack(self.stream, self.GROUP, entry_id)
        await self.redis.xdel(self.stream, entry_id)
