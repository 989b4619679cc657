"""SLA clocks and presence checks as timers in Redis: a sorted set of ``clock|id|stage`` members
scored by their due time (epoch seconds). Every gateway process runs a ``Timers`` worker that sleeps
until the earliest due timer (at most a second) and claims each fired timer with ``ZREM`` — so a timer
fires once, at its second, whichever processes are alive, and survives restarts with Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from handoff.service import HandoffService

log = logging.getLogger(__name__)
CHAT_CLOCKS = ("pickup", "first_reply", "complaint_first_response")


class Timers:
    def __init__(self, service: HandoffService) -> None:
        self.service = service
        self.redis = service.redis
        self.key = service.keys.hk("timers")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # ---- scheduling -------------------------------------------------------------------------------
    def clocks_key(self, chat_id: str) -> str:
        return self.service.keys.hk("clocks", chat_id)

    async def schedule(self, member: str, due: float) -> None:
        await self.redis.zadd(self.key, {member: due})
        self._wake.set()

    async def cancel(self, *members: str) -> None:
        if members:
            await self.redis.zrem(self.key, *members)

    async def _start(self, chat_id: str, clock: str, start: float) -> None:
        c = self.service.config.clocks[clock]
        await self.redis.hset(self.clocks_key(chat_id), clock, json.dumps([start + c.warn, start + c.breach, False]))
        await self.redis.expire(self.clocks_key(chat_id), 7 * 86400)
        await self.schedule(f"{clock}|{chat_id}|warn", start + c.warn)
        await self.schedule(f"{clock}|{chat_id}|breach", start + c.breach)

    async def _stop(self, chat_id: str, clock: str) -> None:
        await self.cancel(f"{clock}|{chat_id}|warn", f"{clock}|{chat_id}|breach")
        await self.redis.hdel(self.clocks_key(chat_id), clock)

    async def start_chat_clocks(self, chat_id: str, now: float, complaint_at: float | None) -> None:
        await self._start(chat_id, "pickup", now)
        if complaint_at is not None:
            await self._start(chat_id, "complaint_first_response", complaint_at)

    def queue_clocks(self, pipe: Any, chat_id: str, now: float,
                     complaint_at: float | None) -> dict[str, tuple[float, float, bool]]:  # fmt: skip
        """The clocks of a chat entering the queue, added to ``pipe`` (one round trip with the
        enqueue); returns them as the console shows them."""
        out: dict[str, tuple[float, float, bool]] = {}
        starts = {"pickup": now, **({"complaint_first_response": complaint_at} if complaint_at is not None else {})}
        for clock, start in starts.items():
            c = self.service.config.clocks[clock]
            out[clock] = (start + c.warn, start + c.breach, False)
            pipe.hset(self.clocks_key(chat_id), clock, json.dumps(list(out[clock])))
            pipe.zadd(self.key, {f"{clock}|{chat_id}|warn": start + c.warn,
                                 f"{clock}|{chat_id}|breach": start + c.breach})  # fmt: skip
        pipe.expire(self.clocks_key(chat_id), 7 * 86400)
        self._wake.set()
        return out

    async def picked_up(self, chat_id: str, now: float) -> None:
        await self._stop(chat_id, "pickup")
        await self._start(chat_id, "first_reply", now)

    async def first_reply(self, chat_id: str) -> None:
        await self._stop(chat_id, "first_reply")
        await self._stop(chat_id, "complaint_first_response")

    async def requeued(self, chat_id: str, now: float) -> None:
        await self._stop(chat_id, "first_reply")
        await self._start(chat_id, "pickup", now)

    async def closed(self, chat_id: str) -> None:
        for clock in CHAT_CLOCKS:
            await self._stop(chat_id, clock)

    async def clocks(self, chat_ids: list[str]) -> dict[str, dict[str, tuple[float, float, bool]]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for chat_id in chat_ids:
                pipe.hgetall(self.clocks_key(chat_id))
            rows = await pipe.execute()
        return {chat_id: {k.decode(): tuple(json.loads(v)) for k, v in row.items()}  # type: ignore[misc]
                for chat_id, row in zip(chat_ids, rows, strict=True)}  # fmt: skip

    async def watch_agent(self, name: str, due: float) -> None:
        await self.schedule(f"presence|{name}|check", due)

    # ---- the worker -----------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop the worker. The flag ends the loop even if a library swallows the cancellation."""
        self._stopping = True
        if self._task:
            self._task.cancel()
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), 3.0)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.fire_due()
                head = await self.redis.zrange(self.key, 0, 0, withscores=True)
                delay = min(max(head[0][1] - time.time(), 0.0), 1.0) if head else 1.0
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                try:  # asyncio.wait, not wait_for: on 3.11 wait_for can swallow a cancellation
                    await asyncio.wait({waiter}, timeout=delay)
                finally:
                    waiter.cancel()
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away for a moment: try again shortly
                log.exception("SLA timers: worker error")
                await asyncio.sleep(1.0)

    async def fire_due(self) -> int:
        fired = 0
        for member, due in await self.redis.zrangebyscore(self.key, "-inf", time.time(), start=0, num=50,
                                                           withscores=True):  # fmt: skip
            if await self.redis.zrem(self.key, member):  # claimed: this process handles it
                fired += 1
                try:
                    await self._fire(member.decode(), due)
                except Exception:
                    log.exception("SLA timers: handling %s failed", member.decode().split("|")[0])
        return fired

    async def _fire(self, member: str, due: float) -> None:
        kind, ident, stage = member.split("|")
        if kind == "presence":
            await self._presence(ident)
            return
        raw = await self.redis.hgetall(self.service.chat_key(ident))
        if not raw:
            return
        from handoff.service import Chat

        chat = Chat.from_redis(raw)
        to: Any = [chat.agent, "supervisors"] if chat.agent else "all"
        if stage == "warn":
            await self.service.publish({"type": "sla_warning", "chat": chat.id, "clock": kind,
                                        "due_at": due + self.service.config.clocks[kind].breach
                                        - self.service.config.clocks[kind].warn}, to=to)  # fmt: skip
            return
        await self._breach(chat, kind, due)

    async def _breach(self, chat: Any, clock: str, at: float) -> None:
        svc = self.service
        svc.metrics.sla_breaches.labels(clock).inc()
        record = {"chat": chat.id, "clock": clock, "at": at, "agent": chat.agent}
        await self.redis.lpush(svc.keys.hk("breaches"), json.dumps(record))
        await self.redis.ltrim(svc.keys.hk("breaches"), 0, 199)
        stored = await self.redis.hget(self.clocks_key(chat.id), clock)
        if stored:
            warn_at, due_at, _ = json.loads(stored)
            await self.redis.hset(self.clocks_key(chat.id), clock, json.dumps([warn_at, due_at, True]))
        await svc.log_entry(chat, {"kind": "event", "event": "sla_breach", "clock": clock})
        log.warning("SLA breach: %s on chat %s", clock, chat.id[:8])
        if clock == "pickup" and chat.state == "queued":  # escalate: widen the skill set to the language alone
            widened = chat.skills[:1]
            if widened != chat.skills:
                await self.redis.hset(svc.chat_key(chat.id), mapping={"skills": ",".join(widened), "escalation": 1})
                await svc.log_entry(chat, {"kind": "event", "event": "escalated", "skills": list(widened)})
            await svc.dispatch()
        await svc.publish({"type": "sla_breach", **record}, to=[chat.agent, "supervisors"] if chat.agent else "all")
        await svc.publish({"type": "queue_changed"})
        svc.spawn(svc.publish_agents())

    async def _presence(self, name: str) -> None:
        p = await self.service.agents.presence(name)
        if not p or p.get("status") == "offline":
            return
        cfg = self.service.config
        seen, conns = float(p.get("seen", 0)), int(p.get("conns", 0))
        idle = time.time() - seen
        if (conns <= 0 and idle >= cfg.disconnect_grace - 0.05) or idle >= cfg.heartbeat_timeout - 0.05:
            await self.service.agent_gone(name)
        else:
            await self.watch_agent(name, seen + (cfg.heartbeat_timeout if conns > 0 else cfg.disconnect_grace))
