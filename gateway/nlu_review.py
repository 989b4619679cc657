"""The NLU learning loop, collection: what the bot was unsure of, and what agents say it got wrong.

* ``Collector.offer`` is called by the pipeline after each parse (``Pipeline.observe``). It does no I/O: a
  message is kept only when the bot fell back or its top confidence is below ``nlu.review_threshold``, masked
  (``gateway.privacy.mask_text``: no phone, ID-card or card number at rest) and put in a small buffer; a
  background task writes the buffer with one script call every ``FLUSH_DELAY`` — the message path never waits
  for Redis, and a confident turn costs one comparison.
* An agent's re-label ("the bot misunderstood: it was X") is written at once (``Collector.label``).
* Samples are deduplicated by their masked text (lower case, spaces collapsed): a repeat adds to the count.
  At most ``nlu.review_max`` wait (the least recently seen make room); one not seen for ``nlu.review_ttl_days``
  is dropped; a decided one is not collected again for as long.
* ``ReviewStore`` lists them for ``/nlu/review`` and takes one out when a supervisor decides (atomically: two
  supervisors cannot decide the same sample twice).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from gateway import tasks
from gateway.privacy import mask_text
from gateway.rkeys import Keys
from gateway.settings import NLUSettings, Settings
from nlu import NLU, ParseResult
from nlu.data import DATA_DIR, data_files
from nlu.engine import FALLBACK_INTENT
from nlu.normalize import normalise

log = logging.getLogger(__name__)
FLUSH_DELAY = 0.25  # seconds: the samples of this long go to Redis in one call
BUFFER_MAX = 2000  # samples waiting for the flush at most (a Redis outage drops the rest, counted)
TEXT_MAX = 500  # characters of a sample kept

_COLLECT = """
local now, ttl, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local s = cjson.decode(ARGV[i + 1])
  local labelled = s.agent_label ~= nil
  if labelled or not redis.call('ZSCORE', KEYS[3], id) then
    if labelled then redis.call('ZREM', KEYS[3], id) end
    local old = redis.call('HGET', KEYS[1], id)
    if old then
      local o = cjson.decode(old)
      o.count = (o.count or 1) + 1
      o.last_at = s.last_at
      o.guess, o.confidence = s.guess, s.confidence
      if labelled then o.agent_label, o.labelled_by, o.source = s.agent_label, s.labelled_by, s.source end
      s = o
    end
    redis.call('HSET', KEYS[1], id, cjson.encode(s))
    redis.call('ZADD', KEYS[2], now, id)
  end
end
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
local over = redis.call('ZCARD', KEYS[2]) - #gone - cap
if over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], #gone, #gone + over - 1)) do table.insert(gone, id) end
end
for i = 1, #gone, 500 do
  local chunk = {unpack(gone, i, math.min(i + 499, #gone))}
  redis.call('HDEL', KEYS[1], unpack(chunk))
  redis.call('ZREM', KEYS[2], unpack(chunk))
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - ttl)
for _, k in ipairs(KEYS) do redis.call('EXPIRE', k, ttl) end
return redis.call('ZCARD', KEYS[2])
"""

_CLAIM = """
local s = redis.call('HGET', KEYS[1], ARGV[1])
if not s then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[3])
return s
"""

_RESTORE = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""


def review_dir(settings: Settings) -> Path:
    """The review file and the retrain's work folder: ``nlu.review_dir``, else ``<data_dir>/nlu-review``."""
    return Path(settings.nlu.review_dir) if settings.nlu.review_dir else settings.data_dir / "nlu-review"


def retrain_base(settings: Settings) -> list[Path]:
    """What retraining starts from: ``nlu.retrain_data``, else what the gateway's model was trained on."""
    return data_files(settings.nlu.retrain_data or (DATA_DIR, *settings.nlu.data))


def sample_id(text: str) -> str:
    """Samples are the same when their masked texts are, ignoring case and spacing."""
    return hashlib.sha1(" ".join(text.casefold().split()).encode()).hexdigest()[:16]


def guess_of(nlu: NLU, result: ParseResult) -> str:
    """The model's best real intent as a review label (``complaint/<type>`` for a complaint)."""
    top = result.top_intent
    if top != "complaint":
        return top
    ctype = result.complaint_type or nlu.complaint_type(normalise(result.text).model)[0]
    return f"complaint/{ctype}"


class Collector:
    def __init__(self, redis: aioredis.Redis, keys: Keys, settings: NLUSettings) -> None:
        self.redis = redis
        self.keys = keys
        self.threshold = settings.review_threshold
        self.cap = settings.review_max
        self.ttl = settings.review_ttl_days * 86400
        self._script = redis.register_script(_COLLECT)
        self._buffer: list[tuple[str, dict[str, Any]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0  # samples lost to a full buffer or a failed write

    def offer(self, nlu: NLU, result: ParseResult) -> None:
        """After a parse, on the message path: nothing unless the bot was unsure; never any I/O."""
        if result.intent != FALLBACK_INTENT and result.confidence >= self.threshold:
            return
        if len(self._buffer) >= BUFFER_MAX:
            self.dropped += 1
            return
        text = mask_text(result.text, result.entities).strip()[:TEXT_MAX]
        if not text or text.startswith("/"):  # a button's payload is no customer's words
            return
        now = time.time()
        source = "fallback" if result.intent == FALLBACK_INTENT else "low_confidence"
        sample = {"text": text, "lang": result.lang, "guess": guess_of(nlu, result),
                  "confidence": round(result.confidence, 4), "count": 1, "first_at": now, "last_at": now,
                  "source": source}  # fmt: skip
        self._buffer.append((sample_id(text), sample))
        self._wake.set()

    async def label(self, text: str, lang: str, guess: str | None, confidence: float | None, label: str,
                    agent: str) -> dict[str, Any]:  # fmt: skip
        """An agent's re-label of a customer's message (already masked in the log; masked again): written now."""
        text = mask_text(text).strip()[:TEXT_MAX]
        now = time.time()
        sample = {"text": text, "lang": lang, "guess": guess or label, "confidence": confidence, "count": 1,
                  "first_at": now, "last_at": now, "source": "agent", "agent_label": label,
                  "labelled_by": agent}  # fmt: skip
        ident = sample_id(text)
        await self.write([(ident, sample)])
        return {"id": ident, **sample}

    async def write(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        args: list[Any] = [time.time(), self.ttl, self.cap]
        for ident, sample in batch:
            args += [ident, json.dumps(sample, ensure_ascii=False)]
        k = self.keys
        await self._script(keys=[k.nlu_review_items(), k.nlu_review_recent(), k.nlu_review_done()], args=args)

    async def flush(self) -> None:
        batch, self._buffer = self._buffer, []
        if not batch:
            return
        try:
            await self.write(batch)
        except (aioredis.RedisError, OSError) as exc:
            self.dropped += len(batch)
            log.warning("NLU review: %d sample(s) not collected (%s)", len(batch), type(exc).__name__)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(FLUSH_DELAY)
            self._wake.clear()
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        await tasks.stop(self._task)
        await self.flush()


class ReviewStore:
    """The samples waiting for review, and taking one out to decide on it."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, settings: NLUSettings) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = settings.review_ttl_days * 86400
        self._claim = redis.register_script(_CLAIM)
        self._restore = redis.register_script(_RESTORE)

    def _keys(self) -> list[str]:
        return [self.keys.nlu_review_items(), self.keys.nlu_review_recent(), self.keys.nlu_review_done()]

    async def pending(self, lang: str | None = None) -> list[dict[str, Any]]:
        """Agents' re-labels first, then the most frequent, then the newest."""
        raw = await self.redis.hgetall(self.keys.nlu_review_items())
        out = []
        for ident, value in raw.items():
            sample = json.loads(value)
            if lang is None or sample.get("lang") == lang:
                out.append({"id": ident.decode(), **sample})
        out.sort(key=lambda s: (not s.get("agent_label"), -int(s.get("count", 1)), -float(s.get("last_at", 0))))
        return out

    async def claim(self, ident: str) -> dict[str, Any] | None:
        """Take a sample out of the review (None when it is gone: decided by someone else, or dropped)."""
        raw = await self._claim(keys=self._keys(), args=[ident, time.time(), self.ttl])
        return {"id": ident, **json.loads(raw)} if raw else None

    async def restore(self, sample: dict[str, Any]) -> None:
        """Put a claimed sample back (its decision could not be saved)."""
        body = {k: v for k, v in sample.items() if k != "id"}
        await self._restore(keys=self._keys(), args=[sample["id"], json.dumps(body, ensure_ascii=False), time.time()])
