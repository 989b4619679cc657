"""The core's side of the channel contract (``gateway.channels.base.Host``): what an adapter may ask of the
gateway, and nothing more. Built with the application, it reads the running parts (Redis, the pipeline) when
asked, so adapters are constructed against it before start-up wires the rest."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from bots.engine import FOR_PEOPLE
from gateway.channels.base import make_outbox
from gateway.errors import BadRequest
from gateway.keys import METRICS, PIPELINE, REDIS, RKEYS
from gateway.metrics import Metrics
from gateway.models import InboundMessage, Turn
from gateway.outbox import Outbox
from gateway.rkeys import Keys
from gateway.settings import Settings
from nlu import INTENTS, NLUInputError


class AppHost:
    def __init__(self, app: web.Application, settings: Settings) -> None:
        self._app = app
        self.settings = settings
        self._outboxes: dict[str, Outbox] = {}

    @property
    def redis(self) -> aioredis.Redis:
        return self._app[REDIS]

    @property
    def keys(self) -> Keys:
        return self._app[RKEYS]

    @property
    def metrics(self) -> Metrics:
        return self._app[METRICS]

    @property
    def intents(self) -> frozenset[str]:
        return frozenset(INTENTS)

    async def handle(self, msg: InboundMessage) -> Turn:
        return await self._app[PIPELINE].handle(msg)

    def check_text(self, text: object, field: str = "text") -> str:
        try:
            return self._app[PIPELINE].validate_text(text)
        except NLUInputError as exc:
            raise BadRequest(f"'{field}': {exc}", zh="消息为空、过长或含无效字符", field=field) from None

    def text(self, group: str, key: str, lang: str, channel: str, **values: Any) -> str:
        return self._app[PIPELINE].render(group, key, lang, channel, **values)

    async def for_people(self, text: str) -> bool:
        pipeline = self._app[PIPELINE]
        # a remote NLU (a Rasa server) is a call out: keep the loop free, as the pipeline does
        result = await asyncio.to_thread(pipeline.parse, text) if pipeline.nlu.is_remote else pipeline.parse(text)
        return result.intent in FOR_PEOPLE

    async def customer_typing(self, channel: str, sender: str) -> None:
        await self._app[PIPELINE].customer_typing(channel, sender)

    async def note(self, channel: str, sender: str, text: str) -> bool:
        return await self._app[PIPELINE].note(channel, sender, text)

    def outbox(self, channel: str, section: Any, interval: float = 0.0, **policy: Any) -> Outbox:
        if channel not in self._outboxes:
            self._outboxes[channel] = make_outbox(self.redis, self.keys, channel, self.metrics,
                                                  section, interval, **policy)  # fmt: skip
        return self._outboxes[channel]
