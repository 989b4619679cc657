"""Answer in the HTTP response when the answer is ready in time, else through the platform's API.

WeChat (and Weibo's fan service) wait a few seconds for the response to a push, then send the
same push again, up to three times, and finally tell the customer the account "cannot serve".
``PassiveReplies.answer`` runs the turn and waits ``budget`` seconds:

* ready in time → the first reply goes back in the response (a passive reply), any others
  through the API;
* not ready → the response is "success" at once, and the whole answer goes through the API
  when it is ready.

Exactly one of those happens per message, whichever process the platform's retries reach: a
claim key per message (``SET NX``) decides, and a retry that finds a claim answers "success"
at once. The turn itself is deduplicated by the pipeline, and the API sends by the outbox's job
ids, so a retry that does run again never produces a second answer.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from gateway import edge
from gateway.channels.base import NO_COMMANDS, Capabilities
from gateway.errors import BadRequest, Forbidden
from gateway.models import InboundMessage, OutboundMessage, Turn
from gateway.outbox import Job, Outbox, job_id
from gateway.rkeys import PASSIVE_CLAIM_TTL, Keys
from gateway.settings import Settings

log = logging.getLogger(__name__)


def param(query: Any, name: str, max_len: int = 128) -> str:
    """A signature parameter of the query: missing or malformed means the request is not signed (403)."""
    try:
        return edge.text(query.get(name), name, max_len)
    except BadRequest as exc:
        raise Forbidden(exc.message, field=name) from None


Queue = Callable[[OutboundMessage, str], Awaitable[bool]]  # (message, job id) → queued through the API


class PassiveReplies:
    def __init__(self, redis: aioredis.Redis, keys: Keys, channel: str, budget: float, queue: Queue,
                 handle: Callable[[InboundMessage], Awaitable[Turn]]) -> None:  # fmt: skip
        self.redis = redis
        self.keys = keys
        self.channel = channel
        self.budget = budget
        self.queue = queue
        self.handle = handle
        self._background: set[asyncio.Task[None]] = set()

    async def answered(self, message_key: str) -> bool:
        """A retry of a message already answered (or being answered): reply "success" at once."""
        return bool(await self.redis.exists(self._claim(message_key)))

    def _claim(self, message_key: str) -> str:
        return self.keys.passive_claim(self.channel, message_key)

    async def answer(self, inbound: InboundMessage, message_key: str) -> OutboundMessage | None:
        """The reply for the HTTP response, or None (answer "success")."""
        turn_task = asyncio.ensure_future(self.handle(inbound))  # goes on even if the platform hangs up
        done, _ = await asyncio.wait({turn_task}, timeout=self.budget)
        claim = self._claim(message_key)
        if turn_task in done:
            turn = turn_task.result()
            if not await self.redis.set(claim, "passive", nx=True, ex=PASSIVE_CLAIM_TTL):
                return None  # another delivery of this message answered it
            if not turn.replies:
                return None
            for i, reply in enumerate(turn.replies[1:], 1):  # a passive reply carries one message
                await self.queue(reply, job_id(self.channel, inbound.sender_id, message_key, str(i)))
            return turn.replies[0]
        claimed = bool(await self.redis.set(claim, "api", nx=True, ex=PASSIVE_CLAIM_TTL))
        task = asyncio.create_task(self._through_api(turn_task, inbound, message_key, claimed))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return None

    async def _through_api(self, turn_task: asyncio.Future[Turn], inbound: InboundMessage, message_key: str,
                           claimed: bool) -> None:  # fmt: skip
        try:
            turn = await turn_task
        except Exception as exc:
            log.warning("%s: a slow turn failed (%s); the platform's retry may run it again", self.channel,
                        type(exc).__name__)  # fmt: skip
            if claimed:  # let a retry try again
                await self.redis.delete(self._claim(message_key))
            return
        if not claimed:
            return
        for i, reply in enumerate(turn.replies):
            await self.queue(reply, job_id(self.channel, inbound.sender_id, message_key, str(i)))

    async def drain(self, timeout: float) -> None:
        if self._background:
            await asyncio.wait(self._background, timeout=timeout)


def routes(key: web.AppKey[Any]) -> list[web.RouteDef]:
    """A push platform's one URL: ``GET`` answers the URL check (``channel.verify(query)`` returns the
    ``echostr``), ``POST`` takes pushes (``channel.on_push``); the running channel is found under ``key``."""

    async def verify(request: web.Request) -> web.Response:
        echo = await request.config_dict[key].verify(request.query)
        return web.Response(text=echo, content_type="text/plain")

    async def push(request: web.Request) -> web.Response:
        return await request.config_dict[key].on_push(request)  # type: ignore[no-any-return]

    return [web.get("", verify), web.post("", push)]


class PassiveChannel(abc.ABC):
    """What WeChat and Weibo share: an outbox for what misses the response, slow answers drained at shutdown."""

    name: str
    capabilities = Capabilities(push=True, buttons=False)
    commands = NO_COMMANDS
    outbox: Outbox
    passive: PassiveReplies
    session: aiohttp.ClientSession
    settings: Settings

    def state(self) -> str:
        return "ready"

    async def start(self) -> None:
        self.outbox.start(self.send_job)

    @abc.abstractmethod
    async def send_job(self, job: Job) -> str | None:
        """Send one outbox job through the platform's API (its message id, or None)."""

    async def close(self) -> None:
        await self.passive.drain(self.settings.server.shutdown_timeout)
        await self.outbox.stop(self.settings.server.shutdown_timeout)
        await self.session.close()
