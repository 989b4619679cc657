"""Live chats: while an agent holds a conversation — the customer's messages and typing reach the agent, the
agent's reach the customer; internal notes; transfer to another agent or skill; close with a disposition (then
the satisfaction survey)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.errors import BadRequest, Conflict, Forbidden, NotFound
from gateway.models import OutboundMessage
from gateway.privacy import mask_text
from handoff.agents import Agent, AgentStore
from handoff.history import History
from handoff.ports import Background, Customers, Texts
from handoff.queue import Queue
from handoff.reports import recorder as reports
from handoff.sla import Clocks
from handoff.store import Chat, ChatStore
from handoff.surveys import Surveys

DISPOSITIONS = ("resolved", "follow_up", "complaint_registered")


class LiveChats:
    def __init__(self, store: ChatStore, clocks: Clocks, agents: AgentStore, queue: Queue, surveys: Surveys,
                 renderer: Texts, customers: Customers, background: Background, history: History) -> None:  # fmt: skip
        self.store = store
        self.clocks = clocks
        self.agents = agents
        self.queue = queue
        self.surveys = surveys
        self.renderer = renderer
        self.customers = customers
        self.background = background
        self.history = history
        self.on_complaint: Callable[[Chat, Agent], Awaitable[Any]] | None = None  # handoff.cases: the chat's case

    # ---- the customer's side (from the pipeline) ------------------------------------------------------
    async def customer_message(self, chat_id: str, text: str, at: float) -> None:
        chat = await self.store.get(chat_id)
        if chat.state == "assigned" and chat.agent:
            entry = {"kind": "customer", "text": mask_text(text), "at": at}  # as the log keeps it: numbers masked
            await self.store.publish({"type": "message", "chat": chat.id, "entry": entry}, to=[chat.agent])

    async def customer_typing(self, chat_id: str) -> None:
        chat = await self.store.get(chat_id)
        if chat.state == "assigned" and chat.agent:
            await self.store.publish({"type": "typing", "chat": chat.id, "from": "customer"}, to=[chat.agent])

    # ---- the agent's side ----------------------------------------------------------------------------
    async def own(self, agent: Agent, chat_id: str) -> Chat:
        """The chat, when ``agent`` holds it (or supervises and someone does); else 403."""
        chat = await self.store.get(chat_id)
        if chat.state != "assigned" or chat.agent != agent.name:
            if agent.supervises and chat.state == "assigned":
                return chat
            raise Forbidden("this chat is not assigned to you", zh="该会话未分配给您")
        return chat

    async def agent_message(self, agent: Agent, chat_id: str, text: str) -> dict[str, Any]:
        chat = await self.own(agent, chat_id)
        await self.customers.deliver(OutboundMessage(chat.channel, chat.sender, text, chat.id, sender="agent",
                                                     agent=agent.display(chat.lang)))  # fmt: skip
        entry = await self.store.log_entry(chat, {"kind": "agent", "text": text, "agent": agent.display(chat.lang)})
        if chat.first_reply_at is None:
            await self.store.update(chat.id, first_reply_at=entry["at"])
            await self.clocks.first_reply(chat.id)
            await reports.first_reply(self.store.redis, self.store.keys, chat, entry["at"])
        to = list(dict.fromkeys([chat.agent or agent.name, agent.name]))  # a supervisor's reply: its agent sees it
        await self.store.publish({"type": "message", "chat": chat.id, "entry": entry}, to=to)
        return entry

    async def agent_typing(self, agent: Agent, chat_id: str) -> None:
        chat = await self.own(agent, chat_id)
        await self.customers.deliver(OutboundMessage(chat.channel, chat.sender, "", chat.id, sender="agent",
                                                     agent=agent.display(chat.lang), kind="typing"))  # fmt: skip

    async def note(self, agent: Agent, chat_id: str, text: str) -> dict[str, Any]:
        """An internal note: in the transcript for agents, never sent to the customer. A supervisor's note on a
        chat another agent holds is a whisper: that agent sees it at once."""
        chat = await self.own(agent, chat_id)
        entry: dict[str, Any] = {"kind": "note", "text": text, "agent": agent.display_name}
        if chat.agent and chat.agent != agent.name:
            entry["whisper"] = True
        entry = await self.store.log_entry(chat, entry)
        if chat.agent:
            await self.store.publish({"type": "message", "chat": chat.id, "entry": entry}, to=[chat.agent])
        return entry

    async def system_note(self, chat_id: str, author: str, text: str) -> None:
        """A note from the gateway itself (e.g. the forum post a chat came from), if the chat exists."""
        chat = await self.store.find(chat_id)
        if chat is not None:
            await self.store.log_entry(chat, {"kind": "note", "agent": author, "text": text})

    async def transfer(self, agent: Agent, chat_id: str, to_agent: str | None, to_skill: str | None,
                       note: str) -> Chat:  # fmt: skip
        """To a named agent (404 unknown, 409 at capacity), or back to the queue for a skill."""
        chat = await self.own(agent, chat_id)
        if note:
            await self.store.log_entry(chat, {"kind": "note", "text": note, "agent": agent.display_name})
        holder = chat.agent or agent.name
        if to_agent:
            target = await self.agents.get(to_agent)
            if target is None:
                raise NotFound(f"no agent {to_agent!r}", zh="没有该坐席", field="to_agent")
            if await self.store.load(target.name) >= target.capacity:
                raise Conflict(f"{target.name} is at capacity", zh=f"坐席 {target.name} 的会话数已满")
            await self.store.move(chat, chat.agent or "", target.name, time.time())
            await self.store.log_entry(chat, {"kind": "event", "event": "transferred", "from": agent.name,
                                              "to": target.name})  # fmt: skip
            moved = await self.store.get(chat.id)
            await self.store.publish({"type": "chat_removed", "chat": chat.id}, to=[holder])
            await self.store.publish({"type": "assigned", "chat": moved.summary()}, to=[target.name])
            await self.queue.joined(chat, target)
            self.background.spawn(self.queue.views.publish_agents())  # both agents' loads changed
            return moved
        if not to_skill:
            raise BadRequest("give 'to_agent' or 'to_skill'", zh="请指定转接坐席（to_agent）或技能组")
        skills = tuple(dict.fromkeys([chat.skills[0] if chat.skills else chat.lang, to_skill]))
        await self.store.update(chat.id, skills=",".join(skills))
        await self.queue.requeue(chat, holder, front=True)
        await self.store.log_entry(chat, {"kind": "event", "event": "transferred", "from": agent.name,
                                          "to": f"skill:{to_skill}"})  # fmt: skip
        await self.store.publish({"type": "chat_removed", "chat": chat.id}, to=[holder])
        self.background.spawn(self.queue.dispatch())
        return await self.store.get(chat.id)

    async def close(self, agent: Agent, chat_id: str, disposition: str) -> Chat:
        """The chat ends with a disposition; the customer hears the agent left and is asked the survey."""
        if disposition not in DISPOSITIONS:
            raise BadRequest(f"'disposition' must be one of {', '.join(DISPOSITIONS)}", field="disposition",
                             zh="结束原因须为 resolved、follow_up 或 complaint_registered")  # fmt: skip
        chat = await self.own(agent, chat_id)
        holder = chat.agent or agent.name
        at = time.time()
        await self.store.close(chat, holder, agent.name, disposition, at)
        await self.clocks.closed(chat.id)
        await self.store.log_entry(chat, {"kind": "event", "event": "closed", "disposition": disposition,
                                          "agent": agent.name})  # fmt: skip
        await reports.chat_closed(self.store.redis, self.store.keys, chat, disposition, at)
        if disposition == "complaint_registered" and self.on_complaint is not None:
            await self.on_complaint(await self.store.get(chat.id), agent)
        shown = agent.display(chat.lang)
        text = self.renderer.text("request_human", "agent_left", chat.lang, chat.channel, agent=shown)
        await self.customers.deliver(OutboundMessage(chat.channel, chat.sender, text, chat.id, sender="system",
                                                     agent=agent.display(chat.lang), kind="agent_left"))  # fmt: skip
        await self.surveys.ask(chat)
        await self.store.publish({"type": "chat_closed", "chat": chat.id}, to=[holder])
        self.background.spawn(self.queue.dispatch())
        self.background.spawn(self.queue.views.publish_agents())
        await self.history.record(chat, holder, agent.name, disposition, at)  # kept for history and search
        return await self.store.get(chat.id)
