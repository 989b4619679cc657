"""The satisfaction survey after a chat with people: asked when the agent closes the chat (the conversation
goes back to the bot, which waits for the score), recorded per conversation and on a stream for reports."""

from __future__ import annotations

import json
import time

import redis.asyncio as aioredis

from gateway.models import Button, OutboundMessage
from gateway.rkeys import HANDOFF_SURVEY_TTL, Keys
from handoff.ports import Customers, Texts
from handoff.reports import recorder as reports
from handoff.store import Chat, ChatStore

LEVELS = ((100, "very_satisfied"), (80, "satisfied"), (60, "neutral"), (40, "dissatisfied"),
          (20, "very_dissatisfied"))  # fmt: skip


class Surveys:
    def __init__(self, redis: aioredis.Redis, keys: Keys, store: ChatStore, renderer: Texts,
                 customers: Customers) -> None:  # fmt: skip
        self.redis = redis
        self.keys = keys
        self.store = store
        self.renderer = renderer
        self.customers = customers

    async def ask(self, chat: Chat) -> None:
        """After the chat closed: the bot waits for the score, the customer gets the question with five buttons."""
        await self.customers.await_survey(chat.channel, chat.sender, chat.id)
        labels = [self.renderer.text("survey", "level", chat.lang, chat.channel, level=n) for n in range(5)]
        question = self.renderer.text("survey", "ask", chat.lang, chat.channel)
        buttons = tuple(Button(title, str(5 - i)) for i, title in enumerate(labels))
        await self.customers.deliver(OutboundMessage(chat.channel, chat.sender, question, chat.id, buttons))

    async def record(self, conversation_id: str, score: int, comment: str | None) -> None:
        """The score (``comment`` None: on the stream for reports), then the comment: both in the survey's hash."""
        chat = await self.store.find(conversation_id)
        level = next(name for value, name in LEVELS if value == score)
        entry = {"conversation": conversation_id, "score": score, "level": level, "comment": comment or "",
                 "agent": (chat.closed_by or "") if chat else "", "skills": list(chat.skills) if chat else [],
                 "channel": chat.channel if chat else "", "complaint_type": chat.complaint_type if chat else None,
                 "at": time.time()}  # fmt: skip
        key = self.keys.handoff_survey(conversation_id)
        stored = {k: json.dumps(v, ensure_ascii=False) for k, v in entry.items()}
        stored["comment"] = self.keys.seal(stored["comment"])  # the customer's own words: encrypted at rest
        await self.redis.hset(key, mapping=stored)
        await self.redis.expire(key, HANDOFF_SURVEY_TTL)
        if comment is None:
            await self.redis.xadd(self.keys.handoff_surveys(), {"e": json.dumps(entry, ensure_ascii=False)})
            await reports.survey(self.redis, self.keys, entry)
        if chat:
            await self.store.log_entry(chat, {"kind": "event", "event": "survey", "score": score,
                                              "comment": comment or ""})  # fmt: skip
