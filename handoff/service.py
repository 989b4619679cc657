"""The human side's front: builds its parts in order, each given what it needs, and answers for them.

* the bots' ``Handoff`` port (``bots/ports.py``): ``wants_human``, ``request_human``, ``leave_message``,
  ``record_survey``, ``register_complaint``, ``complaints``;
* the pipeline's: ``customer_message(chat_id, text, at)`` and ``customer_typing(chat_id)`` while a person holds
  the conversation, and ``system_note`` for a note from the gateway itself;
* ``start``/``stop`` of the timer worker.

The parts: ``store`` (``ChatStore``: the chat record, its keys, reads, writes, the live channel, log entries),
``clocks`` (SLA clocks), ``views`` (what the console shows), ``callbacks``, ``surveys``, ``queue`` (routing and
dispatch), ``chats`` (live chats), ``history`` (ended chats kept per customer) and ``search``, ``supervision``
(watch, take over, the queue by skill), ``timers`` (the worker), plus ``agents``, ``tickets`` and ``login_guard``.
The agents' HTTP API (``handoff/api.py``) calls the parts directly.
"""

from __future__ import annotations

import os
from typing import Any

import redis.asyncio as aioredis

from bots.ports import Complaint, HandoffRequest, HandoffResult
from gateway.fastredis import FastRedis, Lean
from gateway.metrics import Metrics
from gateway.rkeys import Keys
from handoff.agents import AgentStore
from handoff.callbacks import Callbacks
from handoff.cases.front import Cases
from handoff.config import HandoffConfig
from handoff.history import History
from handoff.live import LiveChats
from handoff.ports import Background, Customers, ProfileOf, Texts, TierOf
from handoff.queue import Queue
from handoff.search import Search
from handoff.sla import Clocks
from handoff.store import ChatStore
from handoff.supervise import Supervision
from handoff.surveys import Surveys
from handoff.throttle import LoginThrottle
from handoff.tickets import ComplaintTickets
from handoff.timers import Timers
from handoff.views import ConsoleViews

STOP_DRAIN = 1.0  # seconds the background work gets at shutdown


class HandoffService:
    def __init__(
        self, redis: aioredis.Redis, keys: Keys, config: HandoffConfig, renderer: Texts, metrics: Metrics,
        customers: Customers, *, tier_of: TierOf | None = None, profile_of: ProfileOf | None = None,
        secret: bytes = b"", fast: FastRedis | None = None,
    ) -> None:  # fmt: skip
        self.redis = redis
        self.keys = keys
        self.config = config
        self.background = Background()
        self.store = ChatStore(redis, keys)
        self.agents = AgentStore(redis, keys)
        self.login_guard = LoginThrottle(redis, keys)
        self.tickets = ComplaintTickets(redis, keys, tz=config.timezone)
        self.clocks = Clocks(redis, keys, config)
        self.views = ConsoleViews(self.store, self.clocks, self.agents, config, profile_of)
        lean = Lean(redis, fast)  # a turn's hand-over on the lean connection (one server)
        self.callbacks = Callbacks(redis, keys, self.store, self.tickets, customers, lean)
        self.surveys = Surveys(redis, keys, self.store, renderer, customers)
        self.queue = Queue(self.store, self.clocks, self.agents, config, keys, renderer, metrics, customers,
                           self.callbacks, self.views, self.background, tier_of, lean)  # fmt: skip
        # the history's keys hash numbers with the server key (every process shares it; without one, a test's own)
        self.history = History(redis, keys, self.store, self.complaints, secret or os.urandom(32))
        self.search = Search(self.history)
        self.chats = LiveChats(self.store, self.clocks, self.agents, self.queue, self.surveys, renderer, customers,
                               self.background, self.history)  # fmt: skip
        self.supervision = Supervision(self.store, self.clocks, self.agents, self.queue, self.views, self.background)
        self.timers = Timers(self.store, self.clocks, self.agents, self.queue, self.views, config, metrics,
                             self.background)  # fmt: skip
        self.cases = Cases(redis, keys, self.tickets, self.store, self.agents, renderer, customers, config=config.cases,
                           metrics=metrics, profile_of=profile_of)  # fmt: skip
        self.chats.on_complaint = self.cases.from_chat  # a chat closed as complaint_registered becomes a case

    # ---- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        self.timers.start()
        self.cases.start()

    async def stop(self) -> None:
        """The timer worker stops, then the background work (notices, overviews) ends — all before Redis goes."""
        await self.timers.stop()
        await self.cases.stop()
        await self.background.drain(STOP_DRAIN)

    # ---- the bots' port ---------------------------------------------------------------------------------
    def wants_human(self, reason: str, complaint_type: str | None, urgency: int, tier: str) -> bool:
        return self.queue.wants_human(reason, complaint_type, urgency, tier)

    async def request_human(self, request: HandoffRequest) -> HandoffResult:
        return await self.queue.request_human(request)

    async def leave_message(self, request_id: str, channel: str, sender: str, phone: str | None, text: str) -> bool:
        return await self.callbacks.leave_message(request_id, channel, sender, phone, text)

    async def record_survey(self, conversation_id: str, score: int, comment: str | None) -> None:
        await self.surveys.record(conversation_id, score, comment)

    async def register_complaint(self, request: HandoffRequest) -> Complaint:
        return await self.cases.register_complaint(request)

    async def complaints(self, phone: str | None, channel: str, sender: str) -> list[Complaint]:
        return await self.cases.complaints(phone, channel, sender)

    async def followup_answer(self, ticket: str, channel: str, sender: str, answer: dict[str, Any]) -> Complaint | None:
        return await self.cases.followup_answer(ticket, channel, sender, answer)

    # ---- the pipeline's ---------------------------------------------------------------------------------
    async def customer_message(self, chat_id: str, text: str, at: float) -> None:
        """The customer wrote while a person holds the conversation (already in the conversation log)."""
        await self.chats.customer_message(chat_id, text, at)

    async def customer_typing(self, chat_id: str) -> None:
        await self.chats.customer_typing(chat_id)

    async def system_note(self, chat_id: str, author: str, text: str) -> None:
        """A note on the chat from the gateway itself (not sent to the customer); nothing if there is no chat."""
        await self.chats.system_note(chat_id, author, text)
