"""Key rotation: every encrypted value re-sealed under the active data key, in place, while the gateway runs.

``gateway keys rotate`` puts a new active key at the head of the key file (``vault.add_key``); every running gateway
process re-reads the file within a second (``Keyring.refresh``, followed by the server and on any value sealed with
a key it does not know), so from then on new values are sealed with the new key. Then ``reencrypt`` walks every key of
the deployment (every master of a Redis Cluster) and re-seals what the old keys sealed:

* strings, hash fields and list items: one compare-and-set script each — a value that changed meanwhile (a new turn
  wrote it, already under the new key) is left alone;
* streams (conversation logs, visitor outboxes): entries cannot be changed in place, so the stream is written again
  with the same entry ids by one script, which keeps the entries appended since it was read (a conversation goes on)
  and reads again when some were trimmed or deleted meanwhile; streams with consumer groups (the SMPP inbox,
  short-lived) keep their entries, which expire with them.

``census`` counts sealed values per key id: an old key may leave the key file once it counts none (``gateway keys
status``). Nothing is ever decrypted to disk or logged.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from gateway.rkeys import Keys
from gateway.vault import Keyring

log = logging.getLogger(__name__)

_SET_IF = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
"""
_HSET_IF = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""
_LSET_IF = """
local at = tonumber(ARGV[1])
if redis.call('LINDEX', KEYS[1], at) ~= ARGV[2] then
  at = redis.call('LPOS', KEYS[1], ARGV[2])
  if not at then return 0 end
end
redis.call('LSET', KEYS[1], at, ARGV[3])
return 1
"""

# Write a stream again with the same ids. ARGV: the number of entries read and the first and last ids read, then per
# entry: id, field count, fields and values. Entries appended since (a turn went on) are kept after them; refused (0)
# when the entries read are not all there any more (trimmed or deleted meanwhile: read again).
_STREAM_AGAIN = """
local n = tonumber(ARGV[1])
local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #head == 0 or head[1][1] ~= ARGV[2] then return 0 end
if #redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3]) == 0 then return 0 end
local later = redis.call('XRANGE', KEYS[1], '(' .. ARGV[3], '+')
if redis.call('XLEN', KEYS[1]) ~= n + #later then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
local i = 4
while i <= #ARGV do
  local id, k = ARGV[i], tonumber(ARGV[i + 1])
  redis.call('XADD', KEYS[1], id, unpack(ARGV, i + 2, i + 1 + 2 * k))
  i = i + 2 + 2 * k
end
for _, entry in ipairs(later) do redis.call('XADD', KEYS[1], entry[1], unpack(entry[2])) end
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""


@dataclass(slots=True)
class Pass:
    """What one re-encryption pass did."""

    keys_seen: int = 0
    resealed: int = 0  # values now under the active key
    changed_meanwhile: int = 0  # values a process rewrote during the pass (already under the new key)
    kept: Counter[str] = field(default_factory=Counter)  # values left under an old key, by why (e.g. "stream group")


def _old(ring: Keyring, raw: bytes | str | None) -> bool:
    if raw is None:
        return False
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    kid = Keyring.key_id(text)
    return kid is not None and kid != ring.active


async def census(redis: aioredis.Redis, keys: Keys) -> Counter[str]:
    """Sealed values per key id (``clear`` for values of customer-data keys stored before encryption)."""
    counts: Counter[str] = Counter()
    async for key in redis.scan_iter(match=f"{keys.prefix}*", count=1000):
        for value in await _values(redis, key):
            kid = Keyring.key_id(value.decode(errors="replace")) if value else None
            if kid:
                counts[kid] += 1
    return counts


async def _values(redis: aioredis.Redis, key: bytes) -> list[bytes]:
    kind = (await redis.type(key)).decode()
    if kind == "string":
        return [await redis.get(key) or b""]
    if kind == "hash":
        return list((await redis.hgetall(key)).values())
    if kind == "list":
        return list(await redis.lrange(key, 0, -1))
    if kind == "stream":
        return [v for _, fields in await redis.xrange(key) for v in fields.values()]
    return []


async def reencrypt(redis: aioredis.Redis, keys: Keys, progress: Callable[[Pass], None] | None = None) -> Pass:
    """One pass over every key of the deployment: values sealed with an old key re-sealed with the active one."""
    ring = keys.vault
    if ring is None:
        raise ValueError("these keys have no keyring: nothing is encrypted")
    set_if, hset_if = redis.register_script(_SET_IF), redis.register_script(_HSET_IF)
    lset_if, again = redis.register_script(_LSET_IF), redis.register_script(_STREAM_AGAIN)
    done = Pass()

    def count(ok: Any) -> None:
        if ok:
            done.resealed += 1
        else:
            done.changed_meanwhile += 1

    async for key in redis.scan_iter(match=f"{keys.prefix}*", count=1000):
        done.keys_seen += 1
        kind = (await redis.type(key)).decode()
        calls: list[tuple[Any, list[Any]]] = []  # the key's compare-and-sets
        if kind == "string":
            value = await redis.get(key)
            if _old(ring, value):
                calls.append((set_if, [value, keys.seal(keys.unseal(value))]))
        elif kind == "hash":
            for name, value in (await redis.hgetall(key)).items():
                if _old(ring, value):
                    calls.append((hset_if, [name, value, keys.seal(keys.unseal(value))]))
        elif kind == "list":
            for at, value in enumerate(await redis.lrange(key, 0, -1)):
                if _old(ring, value):
                    calls.append((lset_if, [at, value, keys.seal(keys.unseal(value))]))
        elif kind == "stream":
            await _stream(redis, keys, key, again, done)
        for script, args in calls:  # (one by one: a Cluster's pipeline does not load scripts on its nodes)
            count(await script(keys=[key], args=args))
        if progress is not None and done.keys_seen % 500 == 0:
            progress(done)
    return done


async def _stream(redis: aioredis.Redis, keys: Keys, key: bytes, again: Any, done: Pass, tries: int = 5) -> None:
    """Write the stream again with its old-key values re-sealed; a stream that grew meanwhile (a turn appended to
    the conversation's log) is read and tried again."""
    assert keys.vault is not None
    for _ in range(tries):
        entries = await redis.xrange(key)
        stale = sum(1 for _, fields in entries for v in fields.values() if _old(keys.vault, v))
        if not stale:
            return
        if await redis.xinfo_groups(key):
            done.kept["stream with a consumer group"] += stale
            return
        args: list[Any] = [len(entries), entries[0][0], entries[-1][0]]
        for entry_id, fields in entries:
            args += [entry_id, len(fields)]
            for name, value in fields.items():
                args += [name, keys.seal(keys.unseal(value)) if _old(keys.vault, value) else value]
        if await again(keys=[key], args=args):
            done.resealed += stale
            return
    done.changed_meanwhile += stale
