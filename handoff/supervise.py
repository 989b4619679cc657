"""Supervisors' tools: every live chat (to open and watch as it happens — the agent hub sends a watching console
the chat's events), a whisper (an internal note the holding agent sees at once, never the customer), taking a
chat over (it moves to the supervisor; the agent is told), the queue by skill with its waiting times, and the
system outages recorded when the deployment was down."""

from __future__ import annotations

import time
from typing import Any

from gateway.errors import Conflict
from handoff.agents import Agent, AgentStore
from handoff.ports import Background
from handoff.queue import Queue
from handoff.sla import Clocks
from handoff.store import Chat, ChatStore
from handoff.views import ConsoleViews


class Supervision:
    def __init__(self, store: ChatStore, clocks: Clocks, agents: AgentStore, queue: Queue, views: ConsoleViews,
                 background: Background) -> None:  # fmt: skip
        self.store = store
        self.clocks = clocks
        self.agents = agents
        self.queue = queue
        self.views = views
        self.background = background

    async def live(self) -> list[dict[str, Any]]:
        """Every chat an agent holds now, with its agent's display name and clocks, the longest-held first."""
        agents = await self.agents.all()
        names = {a.name: a.display_name for a in agents}
        held: list[str] = []
        for agent in agents:
            held += [c.id for c in await self.store.mine(agent.name)]
        chats = sorted(await self.store.many(held), key=lambda c: c.assigned_at or 0)
        return [{**v, "agent_name": names.get(v["agent"] or "", v["agent"])} for v in await self.views.chats(chats)]

    async def take_over(self, boss: Agent, chat_id: str) -> Chat:
        """The chat moves to the supervisor (over their capacity if need be); its agent is told, the customer
        hears who joined."""
        chat = await self.store.get(chat_id)
        if chat.state != "assigned" or not chat.agent:
            raise Conflict(f"chat is {chat.state}, not held by an agent", zh="该会话当前没有坐席接待，无法接管")
        if chat.agent == boss.name:
            raise Conflict("you already hold this chat", zh="您已在接待该会话")
        holder = chat.agent
        if not await self._move(chat, holder, boss):
            raise Conflict("the chat moved on meanwhile", zh="会话状态已变化，请刷新")
        await self.store.log_entry(chat, {"kind": "event", "event": "taken_over", "from": holder, "to": boss.name,
                                          "agent": boss.name})  # fmt: skip
        moved = await self.store.get(chat.id)
        await self.store.publish({"type": "chat_removed", "chat": chat.id, "reason": "taken_over",
                                  "by": boss.display_name}, to=[holder])  # fmt: skip
        await self.store.publish({"type": "assigned", "chat": (await self.views.chats([moved]))[0]}, to=[boss.name])
        await self.queue.joined(chat, boss)
        self.background.spawn(self.views.publish_agents())
        return moved

    async def _move(self, chat: Chat, holder: str, boss: Agent) -> bool:
        current = await self.store.get(chat.id)
        if current.state != "assigned" or current.agent != holder:
            return False
        await self.store.move(chat, holder, boss.name, time.time())
        return True
