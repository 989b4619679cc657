"""Background workers stop in a bounded time, even when a library has swallowed their cancellation (gateway/tasks.py).

On Python 3.11 redis-py's connect loses a cancellation that lands as the connection opens (``asyncio.wait_for``,
CPython gh-86296): the NLU model follower, cancelled while subscribing, listened on and the app's shutdown waited
for ever — the CI run that hung 120 s in a test's teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator

from aiohttp import web

from gateway import redisconn, tasks
from gateway.app import create_app
from gateway.nlu_review_models import Follower, Models
from gateway.rkeys import Keys
from nlu import NLUConfig


async def test_a_worker_that_loses_cancellations_is_cancelled_again_until_it_ends():
    lost = 0

    async def loses_three() -> None:  # a library loop that takes the first three cancellations for something else
        nonlocal lost
        while lost < 3:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                lost += 1
        await asyncio.sleep(10)

    task = asyncio.ensure_future(loses_three())
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await tasks.stop(task, wait=3.0)
    assert task.cancelled() and lost == 3
    assert loop.time() - began < tasks.FIRST_WAIT + 1.0  # a second, then 0.1 s a cancellation


async def test_a_clean_up_on_cancellation_is_not_cut_short():
    cleaned = False

    async def cleans_up() -> None:
        nonlocal cleaned
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0.5)  # e.g. the last counts written to Redis
            cleaned = True

    task = asyncio.ensure_future(cleans_up())
    await asyncio.sleep(0)
    assert await tasks.stop(task)
    assert cleaned


async def test_a_worker_that_never_ends_is_left_after_the_wait_with_a_warning(caplog):
    async def never_ends() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue

    task = asyncio.ensure_future(never_ends())
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with caplog.at_level(logging.WARNING, logger="gateway.tasks"):
        assert not await tasks.stop(task, wait=0.5)
    assert 0.5 <= loop.time() - began < 1.5
    assert "never_ends" in caplog.text and "did not stop" in caplog.text
    task.get_coro().close()  # type: ignore[union-attr]  # the test's own clean-up of the stuck coroutine


async def test_a_worker_that_failed_is_logged_not_raised(caplog):
    async def fails() -> None:
        raise ValueError("boom")

    task = asyncio.ensure_future(fails())
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="gateway.tasks"):
        assert await tasks.stop(task)
    assert "fails" in caplog.text and "boom" in caplog.text


async def test_the_nlu_model_follower_stops_every_time_even_cancelled_while_it_connects(redis_url, key_prefix,
                                                                                       tmp_path):  # fmt: skip
    """30 starts and stops against the real Redis, each stop landing a few loop passes after the start — in the
    follower's subscribe (its connect) about one time in four. Each stop must end the worker within 5 s."""
    client = redisconn.client(redis_url)
    models = Models(client, Keys(key_prefix))  # no model switched to: the follower only listens
    follower = Follower(models, tmp_path, "base", NLUConfig.load(None), lambda engine: None)
    rng = random.Random(7)
    try:
        for i in range(30):
            follower.start()
            for _ in range(rng.randrange(12)):
                await asyncio.sleep(0)
            stopping = asyncio.ensure_future(follower.stop())
            await asyncio.wait({stopping}, timeout=5.0)
            assert stopping.done(), f"the follower's stop did not end within 5 s (start {i + 1})"
            assert follower._task is not None and follower._task.done()
    finally:
        await client.aclose()


async def test_a_stop_asked_for_during_start_up_and_lost_still_stops_the_app(make_settings, nlu_engine):
    """aiohttp's ``run_app`` answers SIGTERM by cancelling its main task; when a start-up step loses that cancellation
    (as redis-py's connect does on Python 3.11: here a start-up step that swallows it), the app must not go on to
    serve — a worker of ``gateway --workers 2`` stopped while it started served on until the supervisor killed it
    10 s later."""
    app = create_app(make_settings(), nlu=nlu_engine)
    in_step = asyncio.Event()

    async def loses_a_cancellation(app: web.Application) -> AsyncIterator[None]:
        in_step.set()
        with contextlib.suppress(asyncio.CancelledError):  # taken for the library's own business
            await asyncio.sleep(5)
        yield

    app.cleanup_ctx.append(loses_a_cancellation)
    runner = web.AppRunner(app)
    starting = asyncio.ensure_future(runner.setup())
    await in_step.wait()
    starting.cancel()
    await asyncio.wait({starting}, timeout=10)
    try:
        assert starting.cancelled(), "the start-up went on after its cancellation"
    finally:
        await runner.cleanup()


async def test_what_a_slow_shutdown_waits_for_is_named():
    """``tasks.waiting()``: what the log says when a shutdown takes over 5 s — each pending task and where it waits."""
    gate = asyncio.Event()

    async def holds_the_shutdown() -> None:
        await gate.wait()

    task = asyncio.ensure_future(holds_the_shutdown())
    await asyncio.sleep(0)
    try:
        [line] = [line for line in tasks.waiting() if "holds_the_shutdown" in line]
        assert "asyncio/locks.py" in line and " wait" in line  # the innermost await: the event it waits on
    finally:
        gate.set()
        await task
