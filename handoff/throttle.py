"""Agent sign-in throttling, shared by every gateway process through Redis.

Two counters: one per account name, one per client address. An attempt is counted when it starts (so
thirty attempts at once cannot all slip past the limit before the first failure is recorded); a
successful sign-in deletes the account's counter and takes its own count back from the address's. From
the ``limit``-th failure on, the counter is locked for ``lockout`` seconds, doubling with every further
failure up to ``MAX_LOCKOUT``; a locked counter refuses an attempt before its password is even checked
(429 with ``Retry-After``), which also keeps a guessing flood off the CPU. A counter is forgotten
``WINDOW`` seconds after its last attempt.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from gateway.rkeys import Keys

MAX_LOCKOUT = 900.0
WINDOW = 1800

# KEYS: account, address. ARGV: now, account limit, address limit, lockout, max lockout, window.
# Returns "0" (go ahead; counted) or the seconds still to wait (as text: Lua numbers become integers).
_BEGIN = """
local now = tonumber(ARGV[1])
local wait = 0
for i = 1, 2 do
  local locked = tonumber(redis.call('HGET', KEYS[i], 'until') or '0')
  if locked - now > wait then wait = locked - now end
end
if wait > 0 then return tostring(wait) end
for i = 1, 2 do
  local limit = tonumber(ARGV[i + 1])
  local n = redis.call('HINCRBY', KEYS[i], 'n', 1)
  if n >= limit then
    local lock = math.min(tonumber(ARGV[4]) * 2 ^ (n - limit), tonumber(ARGV[5]))
    redis.call('HSET', KEYS[i], 'until', tostring(now + lock))
  end
  redis.call('EXPIRE', KEYS[i], ARGV[6])
end
return '0'
"""

# A success: the account starts afresh; the address gives this attempt back (and is unlocked if that
# takes it under its limit). KEYS: account, address. ARGV: address limit.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
local n = redis.call('HINCRBY', KEYS[2], 'n', -1)
if n < tonumber(ARGV[1]) then redis.call('HDEL', KEYS[2], 'until') end
if n <= 0 then redis.call('DEL', KEYS[2]) end
return n
"""


@dataclass(frozen=True, slots=True)
class Policy:
    account_limit: int = 5
    address_limit: int = 20
    lockout: float = 15.0


class LoginThrottle:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._begin = redis.register_script(_BEGIN)
        self._succeeded = redis.register_script(_SUCCEEDED)

    def _keys(self, name: str, address: str) -> list[str]:
        return [self.keys.login_account(name), self.keys.login_address(address)]

    async def begin(self, name: str, address: str, policy: Policy) -> int:
        """0 when the attempt may go ahead (it is counted as a failure until ``succeeded``), else the whole
        seconds to wait before the next attempt."""
        args = [time.time(), max(policy.account_limit, 1), max(policy.address_limit, 1), policy.lockout,
                MAX_LOCKOUT, WINDOW]  # fmt: skip
        wait = float(await self._begin(keys=self._keys(name, address), args=args))
        return math.ceil(wait) if wait > 0 else 0

    async def succeeded(self, name: str, address: str, policy: Policy) -> None:
        await self._succeeded(keys=self._keys(name, address), args=[max(policy.address_limit, 1)])
