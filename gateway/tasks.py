"""Stopping a background task, in a bounded time, even when a library has swallowed its cancellation.

On Python 3.11 ``asyncio.wait_for`` drops a cancellation that arrives in the same loop pass as the operation it
waits for completes (CPython gh-86296; 3.12 rebuilt ``wait_for`` on ``asyncio.timeout``). redis-py opens its
connections through it, so a worker cancelled just as it (re)connects — a pub/sub ``subscribe`` at start-up, a
reconnect after a Redis restart — carries on as if nothing happened, and ``task.cancel(); await task`` waits for
ever: a gateway that never finishes its shutdown (measured: about one stop in 150 of the NLU model follower).

``stop`` cancels, waits (a second at first: what the worker does on its cancellation is not cut short), cancels again
every 0.1 s while the task still runs, and gives up with a warning after ``wait`` seconds, so one stuck worker cannot
hold a process's shutdown (SIGTERM: all stopped within 5 s).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

STOP_WAIT = 3.0  # seconds a worker gets to end after its cancellation
FIRST_WAIT = 1.0  # seconds before a worker is cancelled again: a clean-up running on its cancellation is not cut short
RECANCEL_EVERY = 0.1  # seconds between the later cancellations of a worker that goes on


async def stop(task: asyncio.Future[Any] | None, wait: float = STOP_WAIT) -> bool:
    """Cancel ``task`` and wait at most ``wait`` seconds for it to end; True when it ended. Its failure, if it
    failed, is logged (a worker's error must not break the shutdown of the others)."""
    if task is None:
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    pause = FIRST_WAIT
    while not task.done():
        task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            log.warning("background task %s did not stop within %.1f s; left running", _name(task), wait)
            return False
        await asyncio.wait({task}, timeout=min(pause, left))
        pause = RECANCEL_EVERY
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s failed", _name(task), exc_info=task.exception())
    return True


async def stop_requested_in_start_up(app: Any) -> None:
    """The app's last ``on_startup`` step: a start-up whose cancellation (a stop asked for while it ran — the
    gateway's ``_serve`` and aiohttp's ``run_app`` both cancel it) was taken for something else by a library (above)
    ends here instead of finishing — under ``run_app`` it would go on to serve, its signal spent."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        log.warning("a stop asked for during start-up was lost in a library; stopping now")
        raise asyncio.CancelledError


def waiting() -> list[str]:
    """What every pending task of this loop waits at: its name and the innermost frame of its chain of awaits (for a
    shutdown that takes too long: the log says what it waits for)."""
    out = []
    for task in asyncio.all_tasks():
        if task is asyncio.current_task() or task.done():
            continue
        where, coro = "", task.get_coro()
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                code = frame.f_code
                where = f"{code.co_filename.rsplit('site-packages/', 1)[-1]}:{frame.f_lineno} {code.co_name}"
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        out.append(f"{_name(task)}{' (cancelling)' if task.cancelling() else ''} at {where or '?'}")
    return sorted(out)


def _name(task: asyncio.Future[Any]) -> str:
    if isinstance(task, asyncio.Task):
        coro = task.get_coro()
        return getattr(coro, "__qualname__", task.get_name())
    return repr(task)
