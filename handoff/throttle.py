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

from gateway.rkeys import LOGIN_TTL, Keys

MAX_LOCKOUT = 900.0
WINDOW = LOGIN_TTL

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

# An attempt that was not a failure is given back: each counter is decremented (and unlocked if that takes it
# under its limit). A success first deletes the account's counter: it starts afresh.
# KEYS: account, address. ARGV: account limit, address limit, "1" for a success.
_GIVE_BACK = """
if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
for i = 1, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local n = redis.call('HINCRBY', KEYS[i], 'n', -1)
    if n < tonumber(ARGV[i]) then redis.call('HDEL', KEYS[i], 'until') end
    if n <= 0 then redis.call('DEL', KEYS[i]) end
  end
end
return 1
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
        self._give_back = redis.register_script(_GIVE_BACK)

    def _keys(self, name: str, address: str) -> list[str]:
        return [self.keys.login_account(name), self.keys.login_address(address)]

    async def begin(self, name: str, address: str, policy: Policy) -> int:
        """0 when the attempt may go ahead (it is counted as a failure until ``succeeded``), else the whole
        seconds to wait before the next attempt."""
        args = [time.time(), *self._limits(policy), policy.lockout, MAX_LOCKOUT, WINDOW]
        wait = float(await self._begin(keys=self._keys(name, address), args=args))
        return math.ceil(wait) if wait > 0 else 0

    async def succeeded(self, name: str, address: str, policy: Policy) -> None:
        """The right password: the account's counter goes, the address gets this attempt back."""
        await self._give_back(keys=self._keys(name, address), args=[*self._limits(policy), "1"])

    async def give_back(self, name: str, address: str, policy: Policy) -> None:
        """An attempt that was never judged (the hashing pool was full): it does not count."""
        await self._give_back(keys=self._keys(name, address), args=[*self._limits(policy), "0"])

    @staticmethod
    def _limits(policy: Policy) -> list[int]:
        return [max(policy.account_limit, 1), max(policy.address_limit, 1)]
