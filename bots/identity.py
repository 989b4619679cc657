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
            sealed = self.keys.seal(phone)  # the script copies it, still sealed, to the binding
            pipe.hset(key, mapping={"phone": sealed, "salt": salt, "digest": digest, "attempts": 0})
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
        bound = self.keys.unseal(phone) if phone and status == b"ok" else None
        if bound:  # the number's accounts, for broadcasts and data-subject requests (a separate key: another slot)
            account = bind_as or sender
            index = self.keys.phone_accounts(bound)
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(index, self.keys.cid(f"{channel}:{account}"), self.keys.seal(f"{channel}\x1f{account}"))
                pipe.expire(index, self.binding_ttl)
                await pipe.execute()
        return Verification(status.decode(), int(left), bound)

    async def unbind(self, channel: str, sender: str) -> bool:
        bound = await self.redis.get(self.keys.binding(channel, sender))
        if bound:
            await self.redis.hdel(
                self.keys.phone_accounts(self.keys.unseal(bound)), self.keys.cid(f"{channel}:{sender}")
            )
        return bool(await self.redis.delete(self.keys.binding(channel, sender)))

    async def accounts(self, phone: str) -> list[tuple[str, str]]:
        """The (channel, sender) accounts bound to ``phone`` whose binding still holds."""
        return (await accounts_of(self.redis, self.keys, [phone])).get(phone, [])


async def accounts_of(redis: aioredis.Redis, keys: Keys, phones: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Each number's bound (channel, sender) accounts whose binding still names it (one pipelined round trip per
    500 numbers; a binding since removed or moved to another number is left out)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for start in range(0, len(phones), 500):
        chunk = phones[start : start + 500]
        async with redis.pipeline(transaction=False) as pipe:
            for phone in chunk:
                pipe.hvals(keys.phone_accounts(phone))
            rows = await pipe.execute()
        candidates = [(phone, *keys.unseal(v).split("\x1f", 1)) for phone, vals in zip(chunk, rows, strict=True)
                      for v in vals]  # fmt: skip
        async with redis.pipeline(transaction=False) as pipe:
            for _, channel, sender in candidates:
                pipe.get(keys.binding(channel, sender))
            current = await pipe.execute()
        for (phone, channel, sender), bound in zip(candidates, current, strict=True):
            if bound is not None and keys.unseal(bound) == phone:
                out.setdefault(phone, []).append((channel, sender))
    return out
