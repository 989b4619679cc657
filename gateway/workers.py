"""``gateway --workers N``: N gateway processes on one port, and a small supervisor that keeps them running.

Each worker is a whole gateway (``python -m gateway`` with its own event loop) bound to the same address with
``SO_REUSEPORT``, so the kernel spreads connections over them; all of them share one Redis — ``REDIS_URL``, or the
embedded Redis, which the supervisor (not a worker) starts first and stops last. Everything that must run once per
deployment (SLA timers, feed polling, outbox sending, access-token refresh) already takes a Redis claim, so it runs
once however many workers there are.

* Start-up: worker 1 starts first (it trains the NLU model when there is none); the others start once it serves,
  and load the model it cached.
* A worker that exits while the supervisor is not stopping is started again (after 1 s, doubling to 30 s while it
  keeps failing within ``STABLE`` seconds); the others keep their connections.
* A worker that hangs — its event loop stuck (a blocking call, a runaway loop, a stopped process) while the kernel
  keeps handing it new connections — is found by its heartbeat: once it serves, it writes a byte to its pipe every
  second from its event loop; silent for ``server.worker_timeout`` seconds, it is asked to print where each of its
  threads is (SIGUSR1: ``faulthandler``, into the log), then killed, and started again like a crashed one.
* ``/metrics`` on any worker counts for all of them: the supervisor gives them one folder for prometheus_client's
  multiprocess mode (``<data dir>/metrics``, emptied at start; see gateway/metrics.py).
* SIGHUP to the supervisor: a reload without closing the port (new code, new configuration): worker by worker, a new
  process starts beside the old one and, once it serves, the old one drains and stops (``Supervisor._reload``).
* SIGINT/SIGTERM to the supervisor: each worker gets SIGTERM and drains (``server.shutdown_timeout``), then the
  embedded Redis stops. Workers run in their own session, so the terminal's Ctrl-C reaches the supervisor alone,
  and die with it (``PR_SET_PDEATHSIG``) if it is killed outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import faulthandler
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence

from gateway import metrics, tasks
from gateway.embedded import EmbeddedRedis
from gateway.settings import Settings

log = logging.getLogger("gateway.workers")
WORKER_ENV = "GATEWAY_WORKER"  # a worker's number (1…N): set by the supervisor, read by ``gateway.__main__``
READY_FD_ENV = "GATEWAY_READY_FD"  # the pipe a worker writes a byte to once it serves, then every BEAT seconds
SHARED_REDIS_ENV = "GATEWAY_SHARED_REDIS"  # the embedded Redis's folder, when the supervisor runs one
STABLE = 10.0  # a worker that ran this long before exiting is restarted at once next time
MAX_BACKOFF = 30.0
READY_TIMEOUT = 300.0  # worker 1 may train the NLU model first (minutes on a loaded machine)
BEAT = 1.0  # seconds between a serving worker's heartbeats
DUMP_WAIT = 1.0  # seconds a hung worker is given to print its threads' stacks before it is killed
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the worker gets SIGTERM when the supervisor dies (even by SIGKILL); elsewhere a no-op."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def worker_argv(argv: Sequence[str]) -> list[str]:
    """The command line of a worker: the supervisor's own, without ``--workers``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    return out


def signal_ready() -> None:
    """Called by a worker once it listens: tell the supervisor, and go on telling it that this process's event loop
    turns (a heartbeat every ``BEAT`` seconds until the loop stops); a no-op outside a supervisor."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if not fd or not fd.isdigit():
        return
    os.set_blocking(int(fd), False)  # a supervisor that does not read must not stop this process
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the supervisor asks a hung worker where it is
    beat = asyncio.get_running_loop().create_task(_beat(int(fd)))
    _beating.add(beat)  # (a task the loop alone refers to may be collected)
    beat.add_done_callback(_beating.discard)


_beating: set[asyncio.Task[None]] = set()


async def _beat(fd: int) -> None:
    try:
        while True:
            with contextlib.suppress(BlockingIOError):
                os.write(fd, b".")
            await asyncio.sleep(BEAT)
    except OSError:  # the supervisor is gone
        return
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


class Worker:
    def __init__(self, number: int) -> None:
        self.number = number
        self.process: asyncio.subprocess.Process | None = None
        self.started = 0.0
        self.backoff = 1.0
        self.ready = asyncio.Event()
        self.heard = 0.0  # when its last heartbeat came (monotonic)


class Supervisor:
    def __init__(self, settings: Settings, argv: Sequence[str], count: int) -> None:
        self.settings = settings
        self.argv = worker_argv(argv)
        self.count = count
        self.workers = [Worker(n) for n in range(1, count + 1)]
        self.stopping = asyncio.Event()
        self.embedded: EmbeddedRedis | None = None
        self.redis_url = settings.redis.url
        self._reloading: asyncio.Task[None] | None = None
        self._replaced: set[asyncio.subprocess.Process] = set()  # old workers a reload has not stopped yet
        self.serving = False  # every worker has served once (a reload before that is refused)
        self.metrics_dir = settings.data_dir / "metrics"  # the workers' shared metrics (PROMETHEUS_MULTIPROC_DIR)

    async def _spawn(self, worker: Worker) -> None:
        read_fd, write_fd = os.pipe()
        env = {**os.environ, WORKER_ENV: str(worker.number), READY_FD_ENV: str(write_fd),
               metrics.SHARED_ENV: str(self.metrics_dir)}  # fmt: skip
        command = [sys.executable, "-m", "gateway", *self.argv]
        if self.embedded:  # the embedded Redis the supervisor started
            command += ["--redis-url", self.redis_url]
            env[SHARED_REDIS_ENV] = str(self.embedded.directory)
        worker.ready.clear()
        worker.process = await asyncio.create_subprocess_exec(
            *command, env=env, pass_fds=(write_fd,), start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        os.close(write_fd)
        worker.started = time.monotonic()
        loop = asyncio.get_running_loop()

        process = worker.process

        def readable() -> None:
            try:
                got = os.read(read_fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                got = b""
            if got:  # ready, or a heartbeat
                if worker.process is process:  # (not one a reload is replacing)
                    worker.heard = time.monotonic()
                    worker.ready.set()
                return
            loop.remove_reader(read_fd)  # the worker has gone
            os.close(read_fd)

        os.set_blocking(read_fd, False)
        loop.add_reader(read_fd, readable)
        log.info("worker %d started (pid %d)", worker.number, worker.process.pid)

    async def _watch(self, worker: Worker) -> None:
        """Keep ``worker`` running until the supervisor stops."""
        while not self.stopping.is_set():
            process = worker.process
            assert process is not None
            code = await process.wait()
            metrics.worker_exited(process.pid, self.metrics_dir)
            if self.stopping.is_set():
                return
            if process is not worker.process:  # a reload replaced it (or is replacing it): watch its successor
                continue
            ran = time.monotonic() - worker.started
            worker.backoff = 1.0 if ran >= STABLE else min(worker.backoff * 2, MAX_BACKOFF)
            delay = 0.0 if ran >= STABLE else worker.backoff
            log.warning("worker %d (pid %d) exited with code %s after %.0f s; starting it again in %.0f s",
                        worker.number, worker.process.pid, code, ran, delay)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            if not self.stopping.is_set():
                await self._spawn(worker)

    def _reload_requested(self) -> None:
        if not self.serving or self.stopping.is_set():
            log.info("SIGHUP: not every worker serves yet (or they are stopping); nothing to reload")
            return
        if self._reloading is not None and not self._reloading.done():
            log.info("SIGHUP: a reload is already under way")
            return
        self._reloading = asyncio.create_task(self._reload())

    async def _reload(self) -> None:
        """SIGHUP: new code and configuration without closing the port. Worker by worker, a new process starts beside
        the old one (both listen: SO_REUSEPORT); once it serves, the old one is stopped as by SIGTERM (it drains). A
        new worker that does not start leaves the old ones serving."""
        log.info("SIGHUP: reloading — a new process for each worker in turn; the old one stops once it serves")
        for worker in self.workers:
            old = worker.process
            if self.stopping.is_set() or old is None:
                return
            self._replaced.add(old)
            await self._spawn(worker)
            if not await self._wait_ready(worker):
                new = worker.process
                if new is not None:
                    if new.returncode is None:
                        new.kill()
                        await new.wait()
                    metrics.worker_exited(new.pid, self.metrics_dir)
                worker.process = old  # it never stopped serving
                self._replaced.discard(old)
                worker.heard = time.monotonic()
                worker.ready.set()
                if not self.stopping.is_set():
                    log.error("reload: the new worker %d did not start serving (see its lines above); the old "
                              "workers keep serving — mend it and send SIGHUP again", worker.number)  # fmt: skip
                return
            await self._terminate([old])  # it drains, as on SIGTERM
            self._replaced.discard(old)
        log.info("reload finished: workers %s serving", ", ".join(f"{w.number} (pid {w.process.pid})"
                                                                   for w in self.workers if w.process))  # fmt: skip

    async def _watchdog(self) -> None:
        """Kill a serving worker whose heartbeat has stopped for ``server.worker_timeout`` (``_watch`` restarts it),
        once it has printed its threads' stacks."""
        limit = self.settings.server.worker_timeout
        while not self.stopping.is_set():
            await asyncio.sleep(min(1.0, limit / 4))
            for worker in self.workers:
                process = worker.process
                if process is None or process.returncode is not None or not worker.ready.is_set():
                    continue
                silent = time.monotonic() - worker.heard
                if silent < limit or self.stopping.is_set():
                    continue
                log.error("worker %d (pid %d) has not answered for %.0f s (its event loop is stuck): killing it; "
                          "where its threads were is printed above if it could still print", worker.number,
                          process.pid, silent)  # fmt: skip
                worker.ready.clear()
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGUSR1)
                    await asyncio.sleep(DUMP_WAIT)
                    process.kill()

    async def _wait_ready(self, worker: Worker) -> bool:
        assert worker.process is not None
        ready = asyncio.ensure_future(worker.ready.wait())
        exited = asyncio.ensure_future(worker.process.wait())
        stop = asyncio.ensure_future(self.stopping.wait())
        done, pending = await asyncio.wait({ready, exited, stop}, timeout=READY_TIMEOUT,
                                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        for task in pending:
            task.cancel()
        return ready in done

    async def _stop_workers(self) -> None:
        if self._reloading is not None:
            await tasks.stop(self._reloading)
        await self._terminate([w.process for w in self.workers if w.process] + list(self._replaced))

    async def _terminate(self, processes: list[asyncio.subprocess.Process]) -> None:
        """SIGTERM to each (a worker drains, ``server.shutdown_timeout``), killed if it takes longer than it may."""
        live = [p for p in processes if p.returncode is None]
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        if not live:
            return
        grace = self.settings.server.shutdown_timeout + 2.0
        await asyncio.wait([asyncio.ensure_future(p.wait()) for p in live], timeout=grace)
        for process in live:
            if process.returncode is None:
                log.warning("worker pid %d did not stop within %.0f s: killed", process.pid, grace)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_requested)
        metrics.prepare_shared(self.metrics_dir)
        if not self.redis_url:
            self.embedded = EmbeddedRedis(self.settings.data_dir / "redis", self.settings.redis.appendfsync)
            await self.embedded.start()
            self.embedded.keep_running()  # started again if it exits on its own; the workers reconnect
            self.redis_url = self.embedded.url
        watchers: list[asyncio.Task[None]] = [asyncio.create_task(self._watchdog())]
        try:
            first, *rest = self.workers
            await self._spawn(first)
            watchers.append(asyncio.create_task(self._watch(first)))
            if not await self._wait_ready(first):
                if self.stopping.is_set():
                    return 0
                log.error("worker 1 did not start serving; stopping")
                return 1
            for worker in rest:
                await self._spawn(worker)
                watchers.append(asyncio.create_task(self._watch(worker)))
            if all(await asyncio.gather(*(self._wait_ready(w) for w in rest))):
                self.serving = True
                log.info("%d workers serving on %s:%d", self.count, self.settings.server.host,
                         self.settings.server.port)  # fmt: skip
            await self.stopping.wait()
            return 0
        finally:
            self.stopping.set()
            await self._stop_workers()
            for task in watchers:
                task.cancel()
            if self.embedded:
                await self.embedded.stop()
            log.info("all workers stopped")


def supervise(settings: Settings, argv: Sequence[str], count: int) -> int:
    """Run ``count`` workers until SIGINT/SIGTERM; the exit code."""
    return asyncio.run(Supervisor(settings, argv, count).run())
