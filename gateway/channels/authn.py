"""Webhook authenticity, shared by the provider channels: constant-time comparisons that never raise,
signed timestamps within five minutes of now, and a record in Redis of the signed requests already seen.

Two kinds of platform:

* **The signature covers the body** (our generic SMS webhook, Twilio, Discourse): a replay is the very same
  request. Its answer is recorded after it was handled (``recorded``/``record``) and a replay gets that answer
  without being handled again — also after the pipeline's dedupe window. Recording *after* handling means a
  delivery whose first handling died is handled again by the provider's retry, never answered empty.
* **The signature covers only the timestamp and nonce** (WeChat, Weibo): a captured signature could carry
  another body. ``once`` remembers each (timestamp, nonce) with a hash of its body for as long as the
  timestamp is accepted (``REPLAY_TTL`` > 2 × ``MAX_SKEW``): the same body again is the platform's re-delivery
  (handled by the channel's own duplicate handling), another body is refused (403).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time

import redis.asyncio as aioredis

from gateway.errors import Forbidden
from gateway.rkeys import WEBHOOK_LONG_TTL, WEBHOOK_REPLAY_TTL, Keys

MAX_SKEW = 300  # seconds a signed timestamp may be away from now (the platforms retry within ~15 s)
REPLAY_TTL = WEBHOOK_REPLAY_TTL  # a timestamp accepted at any moment of its window stays remembered until it expires
LONG_TTL = WEBHOOK_LONG_TTL  # requests that carry no timestamp (Twilio, Discourse): remembered a week
_DIGITS = re.compile(r"[0-9]{1,20}")
# SET NX, or the value already there, in one step (SET … NX GET needs Redis 7; the embedded server is 6.2)
_ONCE = """local previous = redis.call('GET', KEYS[1])
if previous then return previous end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false"""


def as_bytes(value: str | bytes) -> bytes:
    """Header and query values as bytes, whatever they hold (a lone surrogate too), for ``compare_digest``."""
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def same(sent: str | bytes, expected: str | bytes) -> bool:
    """Constant-time equality of a sent secret or signature and the expected one; False, never an error, for
    non-ASCII or non-UTF-8 input."""
    return hmac.compare_digest(as_bytes(sent), as_bytes(expected))


def hmac_sha256(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def digest(*parts: str | bytes) -> str:
    """A short, fixed-size name for request parts chosen by the sender (key names stay small)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(as_bytes(part))
        h.update(b"\x00")
    return h.hexdigest()[:40]


def signed_time(value: object, name: str = "timestamp", max_skew: float = MAX_SKEW) -> float:
    """A signed timestamp — Unix seconds, or milliseconds when over 1e11 (Weibo) — as a number, digits only
    when it is text; 403 when it is missing, malformed, or more than ``max_skew`` seconds from now."""
    number: float
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        number = float(value)
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        number = float(int(value))
    else:
        raise Forbidden(f"'{name}' is missing or not a Unix time", zh="请求时间戳缺失或格式错误", field=name)
    if number > 1e11:
        number /= 1000
    if abs(time.time() - number) > max_skew:
        raise Forbidden(f"'{name}' is more than {max_skew / 60:g} minutes away from now (a replayed or delayed "
                        "request)", zh="请求时间戳已过期或来自未来（疑似重放的请求）", field=name)  # fmt: skip
    return number


class Replays:
    """The signed requests of one channel already seen (``Keys.webhook_seen``)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, channel: str) -> None:
        self.redis = redis
        self.keys = keys
        self.channel = channel

    def _key(self, request_id: str | bytes) -> str:
        return self.keys.webhook_seen(self.channel, digest(request_id))

    async def once(self, request_id: str, body: str | bytes, ttl: int = REPLAY_TTL) -> bool:
        """True the first time ``request_id`` (e.g. timestamp + nonce) is seen; False when it comes again with
        the same body (the platform delivering the same push again); 403 when it comes with another body."""
        body_hash = digest(body)
        previous = await self.redis.eval(_ONCE, 1, self._key(request_id), body_hash, ttl)
        if previous is None:
            return True
        if hmac.compare_digest(as_bytes(previous), body_hash.encode()):
            return False
        raise Forbidden("this signature (timestamp and nonce) was already used with another body: a replayed "
                        "or forged request", zh="该签名已被用于另一请求（疑似重放或伪造的请求）")  # fmt: skip

    async def recorded(self, request_id: str | bytes) -> bytes | None:
        """The answer given to this exact signed request, when it was handled before."""
        value = await self.redis.get(self._key(request_id))
        return bytes(value) if value is not None else None

    async def record(self, request_id: str | bytes, answer: str | bytes, ttl: int) -> None:
        await self.redis.set(self._key(request_id), answer, ex=ttl)
