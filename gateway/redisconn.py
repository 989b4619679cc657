"""One way to open a Redis client from a URL: a single server or a Redis Cluster.

* ``redis://host:port/db``, ``rediss://…``, ``unix:///path.sock`` — one server (redis-py's client, a blocking pool:
  under a burst, commands wait for a free connection instead of failing);
* ``redis+cluster://host:port,host:port/`` (``rediss+cluster://`` with TLS) — a Redis Cluster through redis-py's
  ``RedisCluster``, started from any of the listed nodes (it discovers the rest, follows ``MOVED``/``ASK`` and
  fails over to promoted replicas). Keys that a script or a transaction touches together share a hash tag (see
  ``gateway/rkeys.py``), so each such command runs on one slot. Reads always go to masters.

On a cluster, commands that fail while a master is down (connection refused, ``CLUSTERDOWN``, a slot not covered)
are retried with a growing pause until about ``FAILOVER_WAIT`` seconds have passed (``?failover_wait=`` in the URL
changes it): longer than the cluster's node timeout plus the replica's election, so a failover is a pause, not an
error. redis-py's cluster pipeline refuses ``PUBLISH`` (a channel has no slot) and multi-key set commands; this
module's pipeline sends a ``PUBLISH`` right after the pipeline's commands ran (its reply in its place in
``execute()``'s list, nothing published when they failed) and queues ``SINTER``/``SUNION``/``SDIFF``/``MGET`` whose
keys share a slot like any command. Pub/sub is Redis's classic kind: a ``PUBLISH`` reaches the subscribers of every
node (Redis Cluster forwards it over its bus), whatever node either side is connected to.

A leaf: redis-py only (and the embedded server, for ``deployment_client``).
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, ClusterPubSub, RedisCluster, _ClusterNodePoolAdapter
from redis.asyncio.connection import UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.commands.core import AsyncCoreCommands

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
FAILOVER_WAIT = 10.0  # seconds a cluster command keeps retrying while a master is down (> node timeout + election)
_BACKOFF_CAP = 0.5  # the longest pause between two attempts (EqualJitter: between half of it and all of it)
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


class GatewayClusterPipeline(ClusterPipeline):
    """redis-py's cluster pipeline, with ``PUBLISH`` held until the pipeline's commands ran and the multi-key set
    reads the gateway pipelines (their keys share a hash tag, so a slot)."""

    __slots__ = ("_publishes",)

    def __init__(self, client: RedisCluster, transaction: bool | None = None) -> None:
        super().__init__(client, transaction)
        self._publishes: list[tuple[int, Any, Any]] = []

    def publish(self, channel: Any, message: Any, **kwargs: Any) -> GatewayClusterPipeline:  # type: ignore[override]
        self._publishes.append((len(self) + len(self._publishes), channel, message))
        return self

    sinter = AsyncCoreCommands.sinter  # type: ignore[assignment]
    sunion = AsyncCoreCommands.sunion  # type: ignore[assignment]
    sdiff = AsyncCoreCommands.sdiff  # type: ignore[assignment]
    mget = AsyncCoreCommands.mget  # type: ignore[assignment]

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        held, self._publishes = self._publishes, []
        results = await super().execute(raise_on_error, allow_redirections) if len(self) else []
        for position, channel, message in held:
            results.insert(position, await self.cluster_client.publish(channel, message))
        return results

    async def reset(self) -> None:
        self._publishes = []
        await super().reset()


class GatewayClusterPubSub(ClusterPubSub):
    """Classic pub/sub on a cluster that outlives its node: redis-py's keeps reconnecting to the node it first chose,
    even once that node is gone for good (a killed master whose replica took over). A ``PUBLISH`` reaches every
    node, so once the connection is lost this one listens on another live node, its channels subscribed again
    there (by the connection's ``on_connect``). Messages published while no node was listened to are lost, as
    pub/sub's are on any reconnect."""

    _lost = False

    async def parse_response(self, block: bool = True, timeout: float = 0) -> Any:
        if self._lost:
            await self._listen_elsewhere()
        try:
            return await super().parse_response(block=block, timeout=timeout)
        except (redis.ConnectionError, redis.TimeoutError):
            self._lost = True
            raise

    async def connect(self) -> None:
        if self._lost:
            await self._listen_elsewhere()
            return
        try:
            await super().connect()
        except (redis.ConnectionError, redis.TimeoutError):
            self._lost = True
            raise

    async def _listen_elsewhere(self) -> None:
        lost, connection = self.node, self.connection
        if connection is not None:
            self.connection = None
            await connection.disconnect()
        live = [n for n in self.cluster.get_nodes() if lost is None or n.name != lost.name]
        self.node = random.choice(live) if live else lost
        self.connection_pool = _ClusterNodePoolAdapter(self.node)  # type: ignore[arg-type]
        await super().connect()  # a connection of the new node's
        await self.connection.connect()  # type: ignore[union-attr]  # connected: on_connect subscribes again
        self._lost = False


class GatewayCluster(RedisCluster):
    """redis-py's ``RedisCluster`` whose pipelines are ``GatewayClusterPipeline`` and pub/sub connections
    ``GatewayClusterPubSub``."""

    def pubsub(self, node: ClusterNode | None = None, host: str | None = None, port: int | None = None,
               **kwargs: Any) -> GatewayClusterPubSub:  # fmt: skip
        return GatewayClusterPubSub(self, node=node, host=host, port=port, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> GatewayClusterPipeline:
        if shard_hint:
            raise redis.RedisClusterException("shard_hint is deprecated in cluster mode")
        return GatewayClusterPipeline(self, transaction)


def failover_retry(wait: float = FAILOVER_WAIT) -> Retry:
    """Attempts spaced 0.05 s, 0.1 s, … up to ``_BACKOFF_CAP`` (each at least half its step), as many as last
    ``wait`` seconds at the least."""
    return Retry(EqualJitterBackoff(cap=_BACKOFF_CAP, base=0.05), retries=4 + math.ceil(wait / (_BACKOFF_CAP / 2)))


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
    options["retry"] = failover_retry(float(query.get("failover_wait", [FAILOVER_WAIT])[0]))
    return options


def client(url: str, max_connections: int = 256) -> AnyRedis:
    """An asyncio client for ``url`` (see the module's doc)."""
    if is_cluster(url):
        return GatewayCluster(startup_nodes=[ClusterNode(h, p) for h, p in cluster_nodes(url)],
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
