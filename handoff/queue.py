"""Queue and dispatch: whether a conversation goes to people (routing), the durable queue with priorities and
skills, assignment — pushed to the least-loaded eligible agent, or pulled by an agent (accept) — with exactly one
agent per chat and each agent's capacity kept, queue-position notices, and chats going back to the queue when
their agent vanishes."""

from __future__ import annotations

import dataclasses
import logging
import time

from bots.ports import HandoffRequest, HandoffResult
from gateway.errors import Conflict, Forbidden
from gateway.fastredis import Lean
from gateway.metrics import Metrics
from gateway.models import OutboundMessage
from gateway.rkeys import HANDOFF_CALLBACKS_MAXLEN, Keys
from handoff.agents import Agent, AgentStore
from handoff.callbacks import Callbacks
from handoff.config import HandoffConfig
from handoff.ports import Background, Customers, Texts, TierOf
from handoff.reports import recorder as reports
from handoff.sla import Clocks
from handoff.store import Chat, ChatStore, new_chat
from handoff.views import ConsoleViews

log = logging.getLogger(__name__)
TELL_EVERY = 10.0  # seconds between queue-position notices to one customer (except near the front)
TELL_AT_ONCE = 3  # … the first places in the queue hear every improvement at once
LOOK_AHEAD = 50  # queued chats one dispatch or notice pass looks at

# A request for people, read in one call: the conversation's chat, the presences of the agents with its skill, and —
# when it will be a callback (service closed, or none of those agents online: status online, seen within the
# heartbeat timeout, the rule of ``Queue.online_agents``) — the customer's open callback task, the message added to
# it (its id beside the sealed entry) and the agents told. Every key is a handoff key: one Cluster slot.
# KEYS: the chat, the open-task key, the handled hash, the callbacks stream, then each agent's presence.
# ARGV: closed (1/0), now, the heartbeat timeout, the sealed message (or ""), the stream's length, the live channel,
# the event. Returns {the chat's hash (flat), the presences (status, seen …), the open task's id (or "")}.
_REQUEST = """
local chat = redis.call('HGETALL', KEYS[1])
local presences, online = {}, false
for i = 5, #KEYS do
  local p = redis.call('HMGET', KEYS[i], 'status', 'seen')
  presences[#presences + 1] = p[1] or false
  presences[#presences + 1] = p[2] or false
  if p[1] == 'online' and tonumber(ARGV[2]) - (tonumber(p[2]) or 0) < tonumber(ARGV[3]) then online = true end
end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'assigned' or (online and ARGV[1] == '0') then return {chat, presences, ''} end
local id = redis.call('GET', KEYS[2])
if not id or redis.call('HEXISTS', KEYS[3], id) == 1 then return {chat, presences, ''} end
if ARGV[4] ~= '' then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'e', ARGV[4], 'id', id)
  redis.call('PUBLISH', ARGV[6], ARGV[7])
end
return {chat, presences, id}
"""


class Queue:
    def __init__(self, store: ChatStore, clocks: Clocks, agents: AgentStore, config: HandoffConfig, keys: Keys,
                 renderer: Texts, metrics: Metrics, customers: Customers, callbacks: Callbacks,
                 views: ConsoleViews, background: Background, tier_of: TierOf | None = None,
                 lean: Lean | None = None) -> None:  # fmt: skip
        self.store = store
        self.lean = lean or Lean(store.redis)
        self._request = store.redis.register_script(_REQUEST)
        self.clocks = clocks
        self.agents = agents
        self.config = config
        self.keys = keys
        self.renderer = renderer
        self.metrics = metrics
        self.customers = customers
        self.callbacks = callbacks
        self.views = views
        self.background = background
        self.tier_of = tier_of
        self._dispatching = self._dispatch_again = False
        self._telling = self._tell_again = False

    # ---- routing ----------------------------------------------------------------------------------
    def wants_human(self, reason: str, complaint_type: str | None, urgency: int, tier: str) -> bool:
        if reason == "complaint":
            return self.config.on_complaint.get(complaint_type or "other", False)
        if reason == "urgent":
            return urgency >= self.config.urgency_threshold
        if reason == "vip":
            return tier in self.config.vip_tiers
        return True

    async def request_human(self, request: HandoffRequest) -> HandoffResult:
        """Queue the conversation for people (or say where it already stands); outside service hours or with
        no agent for its skills online, a callback task instead."""
        now = time.time()
        skills = self.config.skills_for(request.lang, request.channel, request.complaint_type)
        agents = [a for a in await self.agents.all() if set(skills[:1]) <= set(a.skills)]
        closed = not self.config.in_service_hours()
        k = self.keys
        message = self.callbacks.sealed_message(request.channel, request.sender, request.phone, request.text)
        raw, rows, task = await self.lean.script(  # one call: where it stands, who is online, a callback task
            self._request,
            [k.handoff_chat(request.conversation_id), k.handoff_callback_open(request.channel, request.sender),
             k.handoff_callbacks_done(), k.handoff_callbacks(), *(k.handoff_presence(a.name) for a in agents)],
            [int(closed), now, self.config.heartbeat_timeout, message, HANDOFF_CALLBACKS_MAXLEN,
             self.store.live_channel, self.store.event_text({"type": "callbacks_changed"})],
        )  # fmt: skip
        existing = self.store.chat_of(dict(zip(raw[::2], raw[1::2], strict=True)))
        if existing and existing.state in ("queued", "assigned"):  # already with people: say where it stands
            return HandoffResult("queued", existing.id[:8], await self.store.position(existing.id) or 1, None)
        presences = self.agents.presences_of(list(zip(rows[::2], rows[1::2], strict=True)))
        online = self._online(agents, presences, now)
        if closed or not online:  # a callback task: the open one took the message in the same call, or a new one
            status = "closed" if closed else "no_agents"
            return HandoffResult(status, task.decode()) if task else await self.callbacks.request(request, status)
        tier = (await self.tier_of(request.phone)) if self.tier_of and request.phone else "normal"
        p = self.config.priority
        credit = p.get("urgency", 0) * request.urgency + (p.get("complaint", 0) if request.reason == "complaint"
                 else 0) + p.get(tier, 0)  # fmt: skip
        chat_id = request.conversation_id
        fields = {
            "id": chat_id, "channel": request.channel, "sender": request.sender, "phone": request.phone or "",
            "lang": request.lang, "skills": ",".join(skills), "base_skills": ",".join(skills),
            "reason": request.reason, "complaint_type": request.complaint_type or "", "urgency": request.urgency,
            "tier": tier, "ticket": request.ticket or "", "state": "queued", "agent": "", "enqueued_at": now,
            "assigned_at": "", "first_reply_at": "", "credit": credit,
            "log": self.keys.conversation_log(request.channel, request.sender, chat_id), "escalation": 0,
            "returned": 0, "told": 0, "told_at": now,
            "log_from": existing.log_to or "" if existing else ""}  # fmt: skip
        chat = new_chat(fields)
        async with self.store.batch() as pipe:  # one round trip: agents see it at once
            self.store.put_queued(pipe, fields, now - credit)
            clocks = self.clocks.queue_clocks(pipe, chat_id, now, now if request.ticket else None)
            self.store.publish_in(pipe, {"type": "queue_add", "chat": chat.summary(clocks)})
            await pipe.execute()
        await self.store.link(chat)
        await self.store.log_entry(chat, {"kind": "event", "event": "queued", "reason": request.reason,
                                          "skills": list(skills), "at": now})  # fmt: skip
        self.metrics.handoff_queued.inc()
        await reports.handoff_queued(self.store.redis, self.keys, chat, now)
        position = await self.store.position(chat_id) or 1
        if await self._room_now(online, skills, position):  # an agent takes it at once: no queue place to tell
            await self.store.update(chat_id, told=position + 1)  # if another chat wins the agent: told at once
            self.background.spawn(self.dispatch())
            return HandoffResult("connecting", chat_id[:8], position, None)
        await self.store.update(chat_id, told=position)
        self.background.spawn(self.dispatch())
        return HandoffResult("queued", chat_id[:8], position, self.estimated_wait(position, len(online)))

    async def _room_now(self, online: list[Agent], skills: tuple[str, ...], position: int) -> bool:
        """Whether the ``online`` agents chats are pushed to have room for this chat and every one ahead of it."""
        if not self.config.push or position > sum(a.capacity for a in online):
            return False
        agents = [a for a in online if a.serves(skills) and (self.config.supervisors_push or not a.supervises)]
        if not agents:
            return False
        loads = await self.store.loads(a.name for a in agents)
        return sum(max(a.capacity - loads[a.name], 0) for a in agents) >= position

    def estimated_wait(self, position: int, agents: int) -> int:
        return int(self.config.average_handle_seconds * position / max(agents, 1))

    async def online_agents(self) -> list[Agent]:
        """Agents who are online (not away) with a fresh heartbeat: the ones chats are pushed to."""
        agents = await self.agents.all()
        return self._online(agents, await self.agents.presences([a.name for a in agents]), time.time())

    def _online(self, agents: list[Agent], presences: list[tuple[str, float]], now: float) -> list[Agent]:
        return [a for a, (status, seen) in zip(agents, presences, strict=True)
                if status == "online" and now - seen < self.config.heartbeat_timeout]  # fmt: skip

    async def pushed_to(self) -> list[Agent]:
        """The online agents chats are pushed to: supervisors only when routing.yml says so (else they pull)."""
        return [a for a in await self.online_agents() if self.config.supervisors_push or not a.supervises]

    # ---- assignment -------------------------------------------------------------------------------
    async def dispatch(self) -> None:
        """Push: the best queued chat goes to the least-loaded eligible online agent, and so on.
        One pass at a time per process: calls during a pass make it run once more (not pile up)."""
        if not self.config.push:
            return
        if self._dispatching:
            self._dispatch_again = True
            return
        self._dispatching = True
        try:
            while True:
                self._dispatch_again = False
                await self._dispatch_once()
                if not self._dispatch_again:
                    return
        finally:
            self._dispatching = False

    async def _dispatch_once(self) -> None:
        agents = await self.pushed_to()
        if not agents:
            return
        loads = await self.store.loads(a.name for a in agents)
        for chat in await self.store.queued(LOOK_AHEAD):
            eligible = [a for a in agents if a.serves(chat.skills) and loads[a.name] < a.capacity]
            if not eligible:
                continue
            agent = min(eligible, key=lambda a: (loads[a.name] / a.capacity, loads[a.name]))
            if await self._assign(chat, agent):
                loads[agent.name] += 1

    async def _assign(self, chat: Chat, agent: Agent) -> bool:
        now = time.time()
        if not await self.store.claim(chat, agent.name, agent.capacity, now):
            return False
        self.metrics.handoff_wait_seconds.observe(now - chat.enqueued_at)
        chat = dataclasses.replace(chat, state="assigned", agent=agent.name, assigned_at=now)
        await self.store.publish({"type": "assigned", "chat": chat.summary()}, to=[agent.name])  # the agent first
        await self.joined(chat, agent)
        await self.clocks.picked_up(chat.id, now)
        await reports.picked_up(self.store.redis, self.keys, chat, agent.name, now)
        await self.store.log_entry(chat, {"kind": "event", "event": "assigned", "agent": agent.name})
        await self.store.publish({"type": "queue_remove", "chat": chat.id})
        await self.store.publish({"type": "queue_changed"})
        self.background.spawn(self.tell_positions())
        self.background.spawn(self.views.publish_agents())  # supervisors' load table: at once, not on a timer
        return True

    async def joined(self, chat: Chat, agent: Agent) -> None:
        """The customer hears who has joined."""
        shown = agent.display(chat.lang)  # "王小明" to a Chinese chat, "Xiaoming Wang" to an English one
        text = self.renderer.text("request_human", "agent_joined", chat.lang, chat.channel, agent=shown)
        await self.customers.deliver(OutboundMessage(chat.channel, chat.sender, text, chat.id, sender="system",
                                                     agent=agent.display(chat.lang), kind="agent_joined"))  # fmt: skip

    async def accept(self, agent: Agent, chat_id: str) -> Chat:
        """Pull: an agent takes a queued chat (403 without its skills; 409 taken, closed, or at capacity)."""
        chat = await self.store.get(chat_id)
        if not agent.serves(chat.skills) and not agent.supervises:
            raise Forbidden("this chat needs skills you do not have: " + ", ".join(chat.skills),
                            zh="该会话需要您不具备的技能：" + "、".join(chat.skills))  # fmt: skip
        if chat.state != "queued":
            if chat.state == "assigned":
                raise Conflict("chat already taken", zh="会话已被其他坐席接起")
            zh = "会话已结束" if chat.state == "closed" else "会话状态已变化"
            raise Conflict(f"chat is {chat.state}", zh=zh)
        if not await self._assign(chat, agent):
            if await self.store.load(agent.name) >= agent.capacity:
                raise Conflict(f"you already have {agent.capacity} chats (your capacity)",
                               zh=f"您已有 {agent.capacity} 个会话（已达上限）")  # fmt: skip
            raise Conflict("chat already taken", zh="会话已被其他坐席接起")
        return await self.store.get(chat_id)

    # ---- back to the queue --------------------------------------------------------------------------
    async def requeue(self, chat: Chat, agent: str, front: bool) -> bool:
        """``agent``'s chat goes back to the queue (``front``: ahead of the others), unless it moved on."""
        score = chat.enqueued_at - chat.credit - (self.config.priority.get("returned", 3600) if front else 0)
        moved = await self.store.give_back(chat, agent, score)
        if moved:
            await self.clocks.requeued(chat.id, time.time())
            back = await self.store.get(chat.id)
            clocks = await self.clocks.clocks([chat.id])
            await self.store.publish({"type": "queue_add", "chat": back.summary(clocks.get(chat.id))})
            self.background.spawn(self.views.publish_agents())
        await self.store.publish({"type": "queue_changed"})
        return moved

    async def agent_gone(self, name: str) -> int:
        """A vanished (or signed-out) agent's chats go back to the queue, at the front."""
        await self.agents.set_status(name, "offline")
        count = 0
        for chat in await self.store.mine(name):
            if await self.requeue(chat, name, front=True):
                count += 1
                await self.store.log_entry(chat, {"kind": "event", "event": "agent_lost", "agent": name})
                text = self.renderer.text("request_human", "agent_lost", chat.lang, chat.channel)
                await self.customers.deliver(OutboundMessage(chat.channel, chat.sender, text, chat.id,
                                                             sender="system", kind="agent_left"))  # fmt: skip
        if count:
            log.warning("agent %s vanished: %d chat(s) back in the queue", name, count)
            await self.dispatch()
        self.background.spawn(self.views.publish_agents())
        return count

    # ---- queue-position notices ---------------------------------------------------------------------
    async def tell_positions(self) -> None:
        """Queued customers hear their new place in the queue when it changes (one pass at a time)."""
        if self._telling:
            self._tell_again = True
            return
        self._telling = True
        try:
            while True:
                self._tell_again = False
                await self._tell_once()
                if not self._tell_again:
                    return
        finally:
            self._telling = False

    async def _tell_once(self) -> None:
        """A customer hears their new place when it improved — at once near the front (top 3),
        otherwise at most every ``TELL_EVERY`` seconds, so a moving queue is not a flood of notices."""
        chats = await self.store.queued(LOOK_AHEAD)
        if not chats:
            return
        told = await self.store.told(chats)
        agents = len(await self.online_agents())
        now = time.time()
        for position, (chat, (was, when)) in enumerate(zip(chats, told, strict=True), 1):
            if not was or position >= was or (position > TELL_AT_ONCE and now - when < TELL_EVERY):
                continue
            await self.store.update(chat.id, told=position, told_at=now)
            wait = self.estimated_wait(position, agents)
            text = self.renderer.text("request_human", "position", chat.lang, chat.channel, position=position,
                                      wait=wait)  # fmt: skip
            meta = {"position": position, "eta_seconds": wait}
            await self.customers.deliver(OutboundMessage(chat.channel, chat.sender, text, chat.id, sender="system",
                                                         kind="queued", meta=meta))  # fmt: skip
