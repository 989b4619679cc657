"""Binding a social or forum account to a phone number with a one-time code.

The customer gives a number; a 6-digit code goes to it by SMS; the code is checked (5 attempts,
5-minute expiry; stored only as a salted SHA-1 digest, which Lua in Redis can check); then the account is bound for
``binding_ttl`` seconds. One code per number per ``resend_after`` seconds.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

from gateway.rkeys import Keys

# KEYS: otp hash, binding key. ARGV: code, binding ttl, max attempts.
# Returns {status, attempts left}: ok | wrong | locked | expired.
_VERIFY = """
local otp = redis.call('HMGET', KEYS[1], 'phone', 'salt', 'digest', 'attempts')
if not otp[1] then return {'expired', 0} end
local attempts = tonumber(otp[4] or '0')
local max = tonumber(ARGV[3])
if attempts >= max then return {'locked', 0} end
if redis.sha1hex(otp[2] .. ARGV[1]) == otp[3] then
  redis.call('SET', KEYS[2], otp[1], 'EX', ARGV[2])
  redis.call('DEL', KEYS[1])
  return {'ok', max - attempts}
end
attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if attempts >= max then return {'locked', 0} end
return {'wrong', max - attempts}
"""


@dataclass(frozen=True, slots=True)
class Verification:
    status: str  # ok | wrong | locked | expired
    attempts_left: int
    phone: str | None = None


class Binder:
    def __init__(
        self, redis: aioredis.Redis, keys: Keys, *, code_ttl: int = 300, max_attempts: int = 5,
        resend_after: int = 60, binding_ttl: int = 180 * 86400,
    ) -> None:  # fmt: skip
        self.redis = redis
        self.keys = keys
        self.code_ttl = code_ttl
        self.max_attempts = max_attempts
        self.resend_after = resend_after
        self.binding_ttl = binding_ttl
        self._verify = redis.register_script(_VERIFY)

    async def issue(self, channel: str, sender: str, phone: str) -> str | None:
        """A fresh code for ``phone`` (the caller texts it), or None when one was sent too recently."""
        if not await self.redis.set(self.keys.otp_rate(phone), "1", nx=True, ex=self.resend_after):
            return None
        code = f"{secrets.randbelow(10**6):06d}"
        salt = os.urandom(8).hex()
        digest = hashlib.sha1((salt + code).encode()).hexdigest()  # matches redis.sha1hex in the script
        key = self.keys.otp(channel, sender)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={"phone": phone, "salt": salt, "digest": digest, "attempts": 0})
            pipe.expire(key, self.code_ttl)
            await pipe.execute()
        return code

    async def verify(self, channel: str, sender: str, code: str, bind_as: str | None = None) -> Verification:
        """Check ``code``; on success bind ``bind_as`` (default: the sender itself) to the number."""
        phone = await self.redis.hget(self.keys.otp(channel, sender), "phone")
        status, left = await self._verify(
            keys=[self.keys.otp(channel, sender), self.keys.binding(channel, bind_as or sender)],
            args=[code, self.binding_ttl, self.max_attempts],
        )  # fmt: skip
        return Verification(status.decode(), int(left), phone.decode() if phone and status == b"ok" else None)

    async def unbind(self, channel: str, sender: str) -> bool:
        return bool(await self.redis.delete(self.keys.binding(channel, sender)))
