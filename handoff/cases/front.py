"""Complaint cases, as the rest of the human side sees them (``HandoffService.cases``):

* the bots' port — ``register_complaint`` (a new case, or the customer's open case linked), ``complaints``
  (each with its real stage and next promised time), ``followup_answer``;
* ``from_chat`` — an agent closed a chat with the disposition ``complaint_registered`` (``handoff.live``);
* ``from_callback`` / ``from_agent`` — an agent registers one for a callback task or a phone/on-site customer;
* ``start``/``stop`` of the case timers' worker.

The parts: ``engine`` (``handoff.cases.service.CaseEngine``: registration, analysis, dispatch, transitions,
clocks), ``customer`` (``handoff.cases.customer.CustomerSide``: notices, the follow-up visit, the status answers).
The console's HTTP API is ``handoff.cases.api``."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from bots.ports import Complaint, HandoffRequest
from gateway.metrics import Metrics
from gateway.privacy import mask_text
from gateway.rkeys import Keys
from handoff.agents import Agent, AgentStore
from handoff.cases.config import CasesConfig, load_cases_config
from handoff.cases.customer import CustomerSide
from handoff.cases.service import CaseEngine
from handoff.ports import Customers, ProfileOf, Texts
from handoff.reports import recorder
from handoff.store import Chat, ChatStore
from handoff.tickets import ComplaintTickets


class Cases:
    def __init__(self, redis: aioredis.Redis, keys: Keys, tickets: ComplaintTickets, chats: ChatStore,
                 agents: AgentStore, renderer: Texts, customers: Customers, *, config: CasesConfig | None = None,
                 metrics: Metrics | None = None, profile_of: ProfileOf | None = None) -> None:  # fmt: skip
        self.config = config or load_cases_config()
        self.engine = CaseEngine(redis, keys, self.config, tickets, chats, agents, metrics, profile_of)
        self.customer = CustomerSide(self.engine, renderer, customers)
        self.redis, self.keys = redis, keys
        self.engine.listeners.append(self._report)

    # ---- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        self.engine.timers.start(self.engine.fire)

    async def stop(self) -> None:
        await self.engine.timers.stop()

    # ---- the bots' port ------------------------------------------------------------------------------
    async def register_complaint(self, request: HandoffRequest) -> Complaint:
        source = "forum" if request.channel == "forum" else "bot"
        case, linked = await self.engine.register(request, source=source, by_kind="bot", by=request.channel)
        return self.customer.complaint(case, linked=linked)

    async def complaints(self, phone: str | None, channel: str, sender: str) -> list[Complaint]:
        return await self.customer.complaints(phone, channel, sender)

    async def followup_answer(self, ticket: str, channel: str, sender: str, answer: dict[str, Any]) -> Complaint | None:
        return await self.customer.answer(ticket, channel, sender, answer)

    # ---- from agents -------------------------------------------------------------------------------------
    async def from_chat(self, chat: Chat, agent: Agent) -> dict[str, Any]:
        """A chat closed as ``complaint_registered``: its ticket's case (the chat linked), else the customer's
        open case, else a new case from the chat."""
        if chat.ticket and await self.engine.store.find(chat.ticket):
            await self.engine.link_chat(chat.ticket, chat.id)
            return await self.engine.store.get(chat.ticket)
        request = HandoffRequest(chat.id, chat.channel, chat.sender, chat.phone, "complaint", chat.lang,
                                 await self._last_text(chat), chat.urgency, chat.complaint_type)  # fmt: skip
        case, _ = await self.engine.register(request, source="agent", by_kind="agent", by=agent.name, chat=chat.id)
        return case

    async def from_agent(
        self, agent: Agent, *, channel: str, sender: str, phone: str | None, lang: str, text: str,
        complaint_type: str | None, source: str, conversation: str = "",
    ) -> tuple[dict[str, Any], bool]:  # fmt: skip
        """An agent registers a complaint (a callback task's customer, a phone or on-site one)."""
        request = HandoffRequest(conversation, channel, sender, phone, "complaint", lang, mask_text(text), 0,
                                 complaint_type)  # fmt: skip
        return await self.engine.register(request, source=source, by_kind="agent", by=agent.name)

    async def _report(self, event: dict[str, Any]) -> None:
        """Reports count as things happen: every transition (registration, first response, solution, reopening)
        and each follow-up visit's satisfaction (by the case's channel, agent, skill, type and district)."""
        if event["kind"] == "transition":
            created = float(event.get("created_at") or event["at"])
            await recorder.case_transition(self.redis, self.keys, event["ticket"], event.get("type") or None, created,
                                           event["to"], event["at"])  # fmt: skip
        elif event.get("event") == "followup" and event.get("score"):
            entry = {"conversation": f"case:{event['ticket']}", "score": event["score"], "level": event.get("level"),
                     "comment": event.get("comment") or "", "agent": event.get("assignee") or "",
                     "skills": [event["skill"]] if event.get("skill") else [], "channel": event.get("channel") or "",
                     "complaint_type": event.get("type") or None, "at": event["at"]}  # fmt: skip
            await recorder.survey(self.redis, self.keys, entry, district=event.get("region") or None)

    async def _last_text(self, chat: Chat) -> str:
        """What the customer last wrote in the chat (masked), as the case's summary."""
        for entry in reversed(await self.engine.chats.log(chat)):
            if entry.get("kind") == "customer" and entry.get("text"):
                return mask_text(str(entry["text"]))[:500]
        return ""
