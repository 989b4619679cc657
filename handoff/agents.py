"""Agent accounts and presence in Redis. Passwords are bcrypt hashes; roles agent | supervisor | admin.

bcrypt takes ~60 ms of CPU per check: it runs in a small thread pool (bcrypt releases the GIL) so the event
loop keeps serving, and the pool's queue is bounded — past it a sign-in is refused at once (``HasherBusy``)
instead of piling up. bcrypt reads at most 72 bytes of a password, so a longer one is refused outright
(never silently truncated).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import bcrypt
import redis.asyncio as aioredis

from gateway import audit
from gateway.rkeys import HANDOFF_SESSION_TTL, Keys

log = logging.getLogger(__name__)
T = TypeVar("T")
ROLES = ("agent", "supervisor", "admin")
_DUMMY = b"$2b$10$.XpRKVMYlsDscScn4dEbMu5E2sNesabfQfn.stYc/chGL9ocKhF0y"
NAME = re.compile(r"^[A-Za-z0-9_.-]{2,32}$")
MAX_PASSWORD_BYTES = 72  # bcrypt's limit


class AgentError(ValueError):
    pass


class HasherBusy(Exception):
    """The password-hashing queue is full: answer 503 with Retry-After, do not wait."""


class Hasher:
    """A bounded thread pool for bcrypt: ``workers`` threads (one core is left to the event loop) and at
    most ``queue`` checks waiting or running; more than that raises ``HasherBusy`` at once."""

    def __init__(self, workers: int | None = None, queue: int | None = None) -> None:
        self.workers = workers or max(1, min(4, (os.cpu_count() or 2) - 1))
        self.limit = queue or self.workers * 16
        self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="bcrypt")
        self.pending = 0  # touched only on the event loop's thread (submit and the done callback's hop)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self.pending >= self.limit:
            raise HasherBusy
        loop = asyncio.get_running_loop()
        self.pending += 1
        future = self._pool.submit(fn, *args)
        # counted until the thread is done, even if the request that asked is cancelled meanwhile
        future.add_done_callback(lambda _: self._done(loop))
        return await asyncio.wrap_future(future)

    def _done(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.call_soon_threadsafe(self._release)
        except RuntimeError:  # the loop is gone (shutdown): nobody waits any more
            self.pending = 0

    def _release(self) -> None:
        self.pending -= 1


HASHER = Hasher()


def password_bytes(password: str) -> bytes:
    """The password as bcrypt takes it; ``AgentError`` when it cannot be (over 72 bytes, not text)."""
    try:
        raw = password.encode("utf-8")
    except UnicodeEncodeError:
        raise AgentError("the password is not valid Unicode text") from None
    if len(raw) > MAX_PASSWORD_BYTES:
        raise AgentError(f"the password may have at most {MAX_PASSWORD_BYTES} bytes (UTF-8); bcrypt ignores the rest")
    return raw


def _check(password: bytes, digest: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, digest)
    except ValueError:  # a stored hash that is not bcrypt
        log.error("an agent's stored password hash is malformed; reset it with `gateway agents add`")
        return False


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    display_name: str
    role: str
    skills: tuple[str, ...]
    capacity: int
    demo: bool = False
    names: tuple[tuple[str, str], ...] = ()  # (language, display name) where it differs by language

    def display(self, lang: str) -> str:
        """The name customers and texts in ``lang`` see ("王小明" / "Xiaoming Wang"); else ``display_name``."""
        return dict(self.names).get(lang) or self.display_name

    @property
    def supervises(self) -> bool:
        return self.role in ("supervisor", "admin")

    def serves(self, skills: tuple[str, ...] | list[str]) -> bool:
        return set(skills) <= set(self.skills)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "display_name": self.display_name, "role": self.role,
                "skills": list(self.skills), "capacity": self.capacity, "names": dict(self.names)}  # fmt: skip


class AgentStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, cache_seconds: float = 2.0) -> None:
        self.redis = redis
        self.keys = keys
        self.cache_seconds = cache_seconds  # accounts change rarely; every assignment pass reads them
        self._cache: tuple[float, list[Agent]] | None = None

    async def add(self, name: str, password: str, *, role: str = "agent", skills: tuple[str, ...] = (),
                  capacity: int = 3, display_name: str = "", demo: bool = False,
                  names: dict[str, str] | None = None, by: str = "system") -> Agent:  # fmt: skip
        """Create or update an account; audited as ``agent_created``, ``role_change`` or ``agent_changed``, done
        ``by`` (an agent's name, ``system``, ``cli:<user>``)."""
        if not NAME.match(name):
            raise AgentError(f"agent name {name!r} must be 2–32 letters, digits, '.', '_' or '-'")
        if role not in ROLES:
            raise AgentError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if len(password) < 8:
            raise AgentError("the password must have at least 8 characters")
        raw = password_bytes(password)
        if not 1 <= capacity <= 50:
            raise AgentError("capacity must be between 1 and 50")
        digest = (await HASHER.run(bcrypt.hashpw, raw, bcrypt.gensalt(rounds=10))).decode()
        before = await self.redis.hget(self.keys.handoff_agent(name), "role")
        by_lang = tuple(sorted((k, v) for k, v in (names or {}).items() if v))
        agent = Agent(name, display_name or name, role, tuple(s.strip() for s in skills if s.strip()), capacity, demo,
                      by_lang)  # fmt: skip
        await self.redis.hset(self.keys.handoff_agent(name), mapping={
            "name": name, "display_name": agent.display_name, "role": role, "skills": ",".join(agent.skills),
            "capacity": capacity, "password": digest, "demo": int(demo),
            "names": json.dumps(dict(by_lang), ensure_ascii=False)})  # fmt: skip
        await self.redis.sadd(self.keys.handoff_agents(), name)
        self._cache = None
        await self._audit(agent, before.decode() if before else None, by)
        return agent

    async def _audit(self, agent: Agent, role_before: str | None, by: str) -> None:
        facts = {"agent": agent.name, "role": agent.role, "skills": list(agent.skills), "capacity": agent.capacity}
        if role_before is None:
            what = "agent_created"
        elif role_before != agent.role:
            what, facts["role_before"] = "role_change", role_before
        else:
            what = "agent_changed"
        await audit.record(self.redis, self.keys, by, what, **facts)

    async def get(self, name: str, fresh: bool = False) -> Agent | None:
        """An account by name (from the short cache unless ``fresh``)."""
        if not fresh:
            for agent in await self.all():
                if agent.name == name:
                    return agent
        raw = await self.redis.hgetall(self.keys.handoff_agent(name))
        return _agent(raw) if raw else None

    async def all(self) -> list[Agent]:
        """Every account (read at most every ``cache_seconds``; a new account is seen within that)."""
        if self._cache and time.monotonic() - self._cache[0] < self.cache_seconds:
            return self._cache[1]
        agents = await self._read_all()
        self._cache = (time.monotonic(), agents)
        return agents

    async def _read_all(self) -> list[Agent]:
        names = sorted(n.decode() for n in await self.redis.smembers(self.keys.handoff_agents()))
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self.keys.handoff_agent(name))
            rows = await pipe.execute()
        return [_agent(r) for r in rows if r]

    async def verify(self, name: str, password: str) -> Agent | None:
        """The account when ``password`` is its password. ``AgentError`` for a password bcrypt cannot take,
        ``HasherBusy`` when too many checks are waiting."""
        secret = password_bytes(password)
        raw = await self.redis.hgetall(self.keys.handoff_agent(name)) if NAME.match(name) else {}
        if not raw:
            await HASHER.run(_check, secret, _DUMMY)  # as slow as a real check: no name probing by timing
            return None
        if not await HASHER.run(_check, secret, raw[b"password"]):
            return None
        return _agent(raw)

    # ---- console sessions -------------------------------------------------------------------------
    async def open_session(self, sid: str, name: str, csrf: str) -> None:
        key = self.keys.handoff_session(sid)
        await self.redis.hset(key, mapping={"agent": name, "csrf": csrf, "created": time.time()})
        await self.redis.expire(key, HANDOFF_SESSION_TTL)

    async def session(self, sid: str) -> dict[str, str]:
        """The session's fields (agent, csrf, created), or {} when it does not exist (or expired)."""
        raw = await self.redis.hgetall(self.keys.handoff_session(sid))
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def end_session(self, sid: str) -> None:
        await self.redis.delete(self.keys.handoff_session(sid))

    # ---- presence -----------------------------------------------------------------------------
    async def set_status(self, name: str, status: str) -> None:
        """``online``/``away`` (the agent's choice, kept as ``chosen`` too) or ``offline`` (gone: the choice stays
        for when the agent is back)."""
        fields: dict[str, str | float] = {"status": status, "seen": time.time()}
        if status != "offline":
            fields["chosen"] = status
        await self.redis.hset(self.keys.handoff_presence(name), mapping=fields)

    async def back(self, name: str) -> str:
        """A console connected: the agent's status as it stands (online or away, as the agent left it — also
        across restarts); an agent who was offline is back with the status they last chose."""
        p = await self.presence(name)
        status = p.get("status")
        if status in (None, "offline"):
            status = p.get("chosen") if p.get("chosen") in ("online", "away") else "online"
            await self.set_status(name, status)
        return status

    async def heartbeat(self, name: str) -> None:
        await self.redis.hset(self.keys.handoff_presence(name), "seen", time.time())

    async def presence(self, name: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.keys.handoff_presence(name))
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def presences(self, names: list[str]) -> list[tuple[str, float]]:
        """Each agent's status (``offline`` when never seen) and last sign of life (one round trip)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hmget(self.keys.handoff_presence(name), "status", "seen")
            return self.presences_of(await pipe.execute())

    @staticmethod
    def presences_of(rows: list[Any]) -> list[tuple[str, float]]:
        """Presences as read (``HMGET status seen`` of each agent): ``offline`` when never seen."""
        return [((status or b"offline").decode(), float(seen or 0)) for status, seen in rows]

    async def connected(self, name: str, change: int) -> None:
        """A console socket of the agent opened (+1) or closed (−1)."""
        await self.redis.hincrby(self.keys.handoff_presence(name), "conns", change)

    async def load(self, name: str) -> int:
        return int(await self.redis.scard(self.keys.handoff_agent_chats(name)))


def _agent(raw: dict[bytes, bytes]) -> Agent:
    skills = tuple(s for s in raw.get(b"skills", b"").decode().split(",") if s)
    return Agent(raw[b"name"].decode(), raw.get(b"display_name", raw[b"name"]).decode(), raw[b"role"].decode(), skills,
                 int(raw.get(b"capacity", b"3")), raw.get(b"demo") == b"1",
                 tuple(sorted(json.loads(raw.get(b"names") or b"{}").items())))  # fmt: skip
