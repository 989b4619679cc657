"""Callback tasks: what customers asked when no one could answer (outside service hours, or no agent with the
skills online) and the message they left; an agent answers on the customer's own channel or marks the task done
(e.g. after a phone call). One stream of requests and messages, one hash of handled tasks.

A customer has at most one open task (a key per customer names it, until an agent handles it): while it is open,
the customer's messages attach to it, and asking again for a person adds to it instead of opening a second; once
handled, the task takes nothing more (``leave_message`` says so, and the message is handled as a new one)."""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aioredis

from bots.ports import HandoffRequest, HandoffResult
from gateway.errors import Conflict, NotFound
from gateway.fastredis import Lean
from gateway.models import OutboundMessage
from gateway.privacy import mask_phone
from gateway.rkeys import HANDOFF_CALLBACKS_MAXLEN, HANDOFF_CLOCKS_TTL, Keys
from handoff.agents import Agent
from handoff.ports import Customers
from handoff.store import ChatStore
from handoff.tickets import ComplaintTickets

TASK_FIELDS = ("conversation", "channel", "sender", "phone", "lang", "reason", "status", "text", "at")
READ_BACK = 2000  # stream entries read to list the tasks

# Close the customer's open task, if it is this one. KEYS: the customer's open-task key. ARGV: task id.
_CLOSE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# The customer's open task: its id, unless an agent handled it. KEYS: the open-task key, the handled hash.
_OPEN = """
local id = redis.call('GET', KEYS[1])
if id and redis.call('HEXISTS', KEYS[2], id) == 0 then return id end
return false
"""

# A message for the customer's open task ARGV[1], stored only while that task is open and not handled (1, else 0);
# the agents' live channel is told in the same call. KEYS: the open-task key, the handled hash, the stream.
# ARGV: task id, the sealed entry, the stream's length, the live channel, the event.
_LEAVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[2])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"""


class Callbacks:
    def __init__(self, redis: aioredis.Redis, keys: Keys, store: ChatStore, tickets: ComplaintTickets,
                 customers: Customers, lean: Lean | None = None) -> None:  # fmt: skip
        self.redis = redis
        self.lean = lean or Lean(redis)
        self.keys = keys
        self.store = store
        self.tickets = tickets
        self.customers = customers
        self._close = redis.register_script(_CLOSE)
        self._open = redis.register_script(_OPEN)
        self._leave = redis.register_script(_LEAVE)

    def _seal(self, entry: dict[str, Any]) -> str:
        return self.keys.seal(json.dumps(entry, ensure_ascii=False))  # the sender and the text: encrypted at rest

    async def _add(self, entry: dict[str, Any]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip
            pipe.xadd(self.keys.handoff_callbacks(), {"e": self._seal(entry)}, maxlen=HANDOFF_CALLBACKS_MAXLEN)
            self.store.publish_in(pipe, {"type": "callbacks_changed"})
            await pipe.execute()

    async def open_task(self, channel: str, sender: str) -> str | None:
        """The id of the customer's open (not yet handled) callback task, if any."""
        task_id = await self.lean.script(self._open, [self.keys.handoff_callback_open(channel, sender),
                                                      self.keys.handoff_callbacks_done()], [])  # fmt: skip
        return task_id.decode() if task_id else None

    def sealed_message(self, channel: str, sender: str, phone: str | None, text: str) -> str:
        """A message for the customer's open task, sealed, for a script that adds it with the task's id beside it
        (``Queue.request_human``; ``""`` for no text)."""
        return self._seal(self._message(channel, sender, phone, text)) if text else ""

    @staticmethod
    def _message(channel: str, sender: str, phone: str | None, text: str) -> dict[str, Any]:
        return {"kind": "message", "channel": channel, "sender": sender,
                "phone": mask_phone(phone) if phone else "", "text": text, "at": time.time()}  # fmt: skip

    async def request(self, request: HandoffRequest, status: str) -> HandoffResult:
        """A callback task instead of a queued chat; ``status`` is ``closed`` or ``no_agents``. A customer with an
        open task keeps it: what they wrote is added to it (one open task per customer; ``Queue.request_human``
        adds it in its own call, so this is a task opened meanwhile by another process)."""
        existing = await self.open_task(request.channel, request.sender)
        if existing:
            if request.text:
                await self.leave_message(existing, request.channel, request.sender, request.phone, request.text)
            return HandoffResult(status, existing)
        request_id = await self.tickets.number("CB")
        open_key = self.keys.handoff_callback_open(request.channel, request.sender)
        if not await self.redis.set(open_key, request_id, nx=True, ex=HANDOFF_CLOCKS_TTL):
            return await self.request(request, status)  # a task opened meanwhile (a second process): that one
        await self._add({"conversation": request.conversation_id, "channel": request.channel,
                         "sender": request.sender, "phone": mask_phone(request.phone) if request.phone else "",
                         "lang": request.lang, "reason": request.reason, "status": status, "text": request.text,
                         "at": time.time(), "id": request_id})  # fmt: skip
        return HandoffResult(status, request_id)

    async def leave_message(self, request_id: str, channel: str, sender: str, phone: str | None, text: str) -> bool:
        """The customer's message for their callback task; ``False`` (nothing stored) when that task is not open
        any more (handled, or another one is the customer's)."""
        entry = {"id": request_id, **self._message(channel, sender, phone, text)}
        return bool(await self.lean.script(
            self._leave,
            [self.keys.handoff_callback_open(channel, sender), self.keys.handoff_callbacks_done(),
             self.keys.handoff_callbacks()],
            [request_id, self._seal(entry), HANDOFF_CALLBACKS_MAXLEN, self.store.live_channel,
             self.store.event_text({"type": "callbacks_changed"})],
        ))  # fmt: skip

    async def tasks(self, include_done: bool = False, limit: int = 200) -> list[dict[str, Any]]:
        """Callback tasks, newest first: the request (reason, the text that led to it) with the messages the
        customer left, and whether an agent has handled it."""
        entries = await self.redis.xrevrange(self.keys.handoff_callbacks(), count=READ_BACK)
        tasks: dict[str, dict[str, Any]] = {}
        for _, fields in reversed(entries):  # oldest first: the request, then the customer's messages
            data = json.loads(self.keys.unseal(fields[b"e"]))
            data.setdefault("id", (fields.get(b"id") or b"").decode())  # a message added by ``open_task``
            task = tasks.setdefault(data["id"], {"id": data["id"], "messages": []})
            if data.get("kind") == "message":
                task["messages"].append({"text": data["text"], "at": data["at"]})
            else:
                task.update({k: data.get(k) for k in TASK_FIELDS})
        done = await self.redis.hgetall(self.keys.handoff_callbacks_done())
        out = []
        for task in sorted(tasks.values(), key=lambda t: t.get("at") or 0, reverse=True):
            if "channel" not in task:
                continue  # its request fell off the stream's end
            handled = done.get(task["id"].encode())
            task["handled"] = json.loads(self.keys.unseal(handled)) if handled else None
            if include_done or not handled:
                out.append(task)
        return out[:limit]

    async def get(self, task_id: str) -> dict[str, Any]:
        for task in await self.tasks(include_done=True, limit=10_000):
            if task["id"] == task_id:
                return task
        raise NotFound(f"no callback task {task_id}", zh=f"没有编号为 {task_id} 的回电任务")

    async def handle(self, agent: Agent, task_id: str, reply: str | None, note: str) -> dict[str, Any]:
        """Mark a callback task handled (once: 409 after); with ``reply``, answer the customer on their channel."""
        task = await self.get(task_id)
        record = {"agent": agent.display_name, "at": time.time(), "reply": bool(reply), "note": note[:500]}
        if not await self.redis.hsetnx(self.keys.handoff_callbacks_done(), task_id,
                                       self.keys.seal(json.dumps(record, ensure_ascii=False))):  # fmt: skip
            raise Conflict("this callback task was already handled", zh="该回电任务已被处理")
        await self._close(keys=[self.keys.handoff_callback_open(task["channel"], task["sender"])], args=[task_id])
        if reply:
            await self.customers.deliver(OutboundMessage(task["channel"], task["sender"], reply,
                                                         task["conversation"] or "", sender="agent",
                                                         agent=agent.display_name))  # fmt: skip
        await self.store.publish({"type": "callbacks_changed"})
        return {**task, "handled": record}
