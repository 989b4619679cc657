"""One way to open a Redis client from a URL: a single server or a Redis Cluster.

* ``redis://host:port/db``, ``rediss://…``, ``unix:///path.sock`` — one server (redis-py's client, a blocking pool:
  under a burst, commands wait for a free connection instead of failing);
* ``redis+cluster://host:port,host:port/`` (``rediss+cluster://`` with TLS) — a Redis Cluster through redis-py's
  ``RedisCluster``, started from any of the listed nodes (it discovers the rest, follows ``MOVED``/``ASK`` and
  fails over to promoted replicas). Keys that a script or a transaction touches together share a hash tag (see
  ``gateway/rkeys.py``), so each such command runs on one slot. Reads always go to masters.

A leaf: redis-py only (and the embedded server, for ``deployment_client``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import UnixDomainSocketConnection

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
AnyRedis = aioredis.Redis | RedisCluster


def is_cluster(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """The start-up nodes of a ``redis+cluster://`` URL."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    nodes = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"redis+cluster URL: each node is host:port, got {part!r}")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def _cluster_options(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    options: dict[str, Any] = {}
    if parts.username:
        options["username"] = parts.username
    if parts.password:
        options["password"] = parts.password
    if parts.scheme == "rediss+cluster":
        options["ssl"] = True
    query = parse_qs(parts.query)
    if "socket_timeout" in query:
        options["socket_timeout"] = float(query["socket_timeout"][0])
    return options


def client(url: str, max_connections: int = 256) -> AnyRedis:
    """An asyncio client for ``url`` (see the module's doc)."""
    if is_cluster(url):
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in cluster_nodes(url)],
                            max_connections=max_connections, **_cluster_options(url))  # fmt: skip
    return aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=10))  # fmt: skip


def unix_client(path: str, max_connections: int = 256) -> aioredis.Redis:
    """An asyncio client of the embedded Redis's Unix socket."""
    pool = aioredis.BlockingConnectionPool(connection_class=UnixDomainSocketConnection,
                                           max_connections=max_connections, timeout=10, path=path)  # fmt: skip
    return aioredis.Redis(connection_pool=pool)


def sync_client(url: str) -> redis.Redis | redis.RedisCluster:
    """A blocking client (command-line tools, tests)."""
    if is_cluster(url):
        return redis.RedisCluster(startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in cluster_nodes(url)],
                                  **_cluster_options(url))  # fmt: skip
    return redis.Redis.from_url(url)


@asynccontextmanager
async def deployment_client(url: str, data_dir: Path, appendfsync: str = "everysec") -> AsyncIterator[AnyRedis]:
    """The deployment's Redis for a command-line tool: ``url`` (a server or a cluster), else the embedded Redis of
    ``data_dir`` — shared when a gateway runs it, started (and stopped afterwards) when none does."""
    from gateway.embedded import EmbeddedRedis  # the embedded server only where a tool needs it

    embedded = None
    if url:
        redis_client = client(url, max_connections=16)
    else:
        embedded = EmbeddedRedis(data_dir / "redis", appendfsync)
        await embedded.start()
        redis_client = unix_client(str(embedded.socket), max_connections=16)
    try:
        yield redis_client
    finally:
        await redis_client.aclose()
        if embedded:
            await embedded.stop()
