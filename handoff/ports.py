"""What the human side needs from the rest of the gateway, as small interfaces the core fills in, and the
background-task holder its parts share."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gateway.errors import log_failure
from gateway.models import OutboundMessage

log = logging.getLogger(__name__)

TierOf = Callable[[str], Awaitable[str]]  # phone → the customer's tier (normal, gold, …)
ProfileOf = Callable[[str, str], Awaitable[dict[str, Any]]]  # phone, lang → what the console shows of them


class Texts(Protocol):
    """Customer-facing texts (``bots.templates.Renderer``): a template's macro in a language, fitted to a channel."""

    def text(self, name: str, macro: str, lang: str, channel: str = "", **args: Any) -> str: ...


class Customers(Protocol):
    """The way back to customers (the core's outbound side)."""

    async def deliver(self, message: OutboundMessage) -> None:
        """Send on the customer's channel: pushed where it can push, else kept for their next reply."""
        ...

    async def await_survey(self, channel: str, sender: str, conversation_id: str) -> None:
        """The conversation goes back to the bot, which waits for the satisfaction score."""
        ...

    async def await_answer(self, channel: str, sender: str, flow: str, step: str, data: dict[str, Any]) -> None:
        """The customer's next message (in their current conversation) answers the bot flow's question ``step``
        (e.g. a complaint case's follow-up visit)."""
        ...


class Background:
    """Coroutines run in the background, each referenced until it ends; a failure is logged (a lost Redis in one
    line, anything else with its traceback), never left as "Task exception was never retrieved"."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def drain(self, timeout: float) -> None:
        """At shutdown, before Redis goes: the running tasks get ``timeout`` seconds to end, the rest are cancelled."""
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks), timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=0.5)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        log_failure(log, "handoff background task failed", task.exception())  # type: ignore[arg-type]
