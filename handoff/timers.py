"""The timer worker: every gateway process runs one. It sleeps until the earliest due timer (at most a second)
and claims each fired timer with ``ZREM`` — so a timer fires once, at its second, whichever processes are alive,
and survives restarts with Redis. An SLA warning or breach is published to the chat's agent and supervisors (a
breached pickup clock widens the chat's skills to its language alone); a presence check sends a vanished agent's
chats back to the queue — but not before ``restart_grace`` seconds after a process of the deployment started, so
consoles can reconnect after a restart. At its start a process pauses the clocks for the time no process was
alive (a system outage, recorded as such, not as an agent's breach); afterwards it says every second that it is
alive."""

from __future__ import annotations

import asyncio
import logging
import time

from gateway import tasks
from gateway.errors import log_failure
from gateway.metrics import Metrics
from handoff.agents import AgentStore
from handoff.config import HandoffConfig
from handoff.ports import Background
from handoff.queue import Queue
from handoff.sla import Clocks
from handoff.store import Chat, ChatStore
from handoff.views import ConsoleViews

log = logging.getLogger(__name__)
ALIVE_EVERY = 1.0  # seconds between the worker's signs of life (the deployment's heartbeat key)


class Timers:
    def __init__(self, store: ChatStore, clocks: Clocks, agents: AgentStore, queue: Queue, views: ConsoleViews,
                 config: HandoffConfig, metrics: Metrics, background: Background) -> None:  # fmt: skip
        self.store = store
        self.clocks = clocks
        self.agents = agents
        self.queue = queue
        self.views = views
        self.config = config
        self.metrics = metrics
        self.background = background
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop the worker. The flag ends the loop even if a library swallows the cancellation."""
        self._stopping = True
        self.clocks.wake.set()
        await tasks.stop(self._task)

    async def _resume(self) -> None:
        """Before the first timer fires: the outage this start ends, if any (clocks paused for it)."""
        while not self._stopping:
            try:
                outage = await self.clocks.resume(time.time())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure(log, "SLA timers: resuming after the last process failed", exc)
                await asyncio.sleep(1.0)
                continue
            if outage:
                log.warning("system outage: no gateway process was alive for %.0f s; %d SLA timer(s) paused for it",
                            outage["seconds"], outage["timers_paused"])  # fmt: skip
            return

    async def _run(self) -> None:
        wake = self.clocks.wake
        await self._resume()
        said_alive = 0.0
        while not self._stopping:
            try:
                if time.time() - said_alive >= ALIVE_EVERY:  # the loop may turn often: say it once a second
                    said_alive = time.time()
                    await self.clocks.alive(said_alive)
                await self.fire_due()
                head = await self.clocks.next_due()
                delay = min(max(head - time.time(), 0.0), 1.0) if head is not None else 1.0
                wake.clear()
                waiter = asyncio.ensure_future(wake.wait())
                try:  # asyncio.wait, not wait_for: on 3.11 wait_for can swallow a cancellation
                    await asyncio.wait({waiter}, timeout=delay)
                finally:
                    waiter.cancel()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away for a moment: try again shortly
                log_failure(log, "SLA timers: worker error", exc)
                await asyncio.sleep(1.0)

    async def fire_due(self) -> int:
        fired = 0
        for member, due in await self.clocks.due(time.time()):
            if await self.clocks.claim(member):  # claimed: this process handles it
                fired += 1
                try:
                    await self._fire(member, due)
                except Exception as exc:
                    log_failure(log, f"SLA timers: handling {member.split('|')[0]} failed", exc)
        return fired

    async def _fire(self, member: str, due: float) -> None:
        kind, ident, stage = member.split("|")
        if kind == "presence":
            await self._presence(ident)
            return
        chat = await self.store.find(ident)
        if chat is None:
            return
        to: str | list[str] = [chat.agent, "supervisors"] if chat.agent else "all"
        if stage == "warn":
            clock = self.config.clocks[kind]
            await self.store.publish({"type": "sla_warning", "chat": chat.id, "clock": kind,
                                      "due_at": due + clock.breach - clock.warn}, to=to)  # fmt: skip
            return
        await self._breach(chat, kind, due)

    async def _breach(self, chat: Chat, clock: str, at: float) -> None:
        self.metrics.sla_breaches.labels(clock).inc()
        record = {"chat": chat.id, "clock": clock, "at": at, "agent": chat.agent}
        await self.clocks.breached(chat.id, clock, record)
        await self.store.log_entry(chat, {"kind": "event", "event": "sla_breach", "clock": clock})
        log.warning("SLA breach: %s on chat %s", clock, chat.id[:8])
        if clock == "pickup" and chat.state == "queued":  # escalate: widen the skill set to the language alone
            widened = chat.skills[:1]
            if widened != chat.skills:
                await self.store.update(chat.id, skills=",".join(widened), escalation=1)
                await self.store.log_entry(chat, {"kind": "event", "event": "escalated", "skills": list(widened)})
            await self.queue.dispatch()
        await self.store.publish({"type": "sla_breach", **record},
                                 to=[chat.agent, "supervisors"] if chat.agent else "all")  # fmt: skip
        await self.store.publish({"type": "queue_changed"})
        self.background.spawn(self.views.publish_agents())

    async def _presence(self, name: str) -> None:
        p = await self.agents.presence(name)
        if not p or p.get("status") == "offline":
            return
        grace_until = await self.clocks.started() + self.config.restart_grace
        if time.time() < grace_until:  # a process just started: consoles are still reconnecting
            await self.clocks.watch_agent(name, grace_until)
            return
        seen, conns = float(p.get("seen", 0)), int(p.get("conns", 0))
        idle = time.time() - seen
        cfg = self.config
        if (conns <= 0 and idle >= cfg.disconnect_grace - 0.05) or idle >= cfg.heartbeat_timeout - 0.05:
            await self.queue.agent_gone(name)
        else:
            await self.clocks.watch_agent(name, seen + (cfg.heartbeat_timeout if conns > 0 else cfg.disconnect_grace))
