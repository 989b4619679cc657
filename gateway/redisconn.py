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

import logging
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import (
    ClusterNode,
    ClusterPipeline,
    ClusterPubSub,
    PipelineCommand,
    RedisCluster,
    _ClusterNodePoolAdapter,  # fmt: skip
)
from redis.asyncio.connection import UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.commands.core import AsyncCoreCommands, AsyncScript
from redis.exceptions import AskError, ClusterDownError, MaxConnectionsError, MovedError, NoScriptError, TryAgainError

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
FAILOVER_WAIT = 10.0  # seconds a cluster command keeps retrying while a master is down (> node timeout + election)
_BACKOFF_CAP = 0.5  # the longest pause between two attempts (EqualJitter: between half of it and all of it)
AnyRedis = aioredis.Redis | RedisCluster
REPLICAS_CHECK_EVERY = 5.0  # seconds: auto asks a master how many replicas it has this often
DEGRADED_WAIT_MS = 20  # a master whose replicas fell short: how long its next writes wait, until they catch up
WARN_EVERY = 60.0  # seconds between two warnings about unconfirmed writes
log = logging.getLogger(__name__)


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


@dataclass(slots=True)
class Durability:
    """How many replicas must have a customer-visible write before the gateway answers (``redis.wait_replicas``,
    ``redis.wait_timeout_ms``), on a Redis Cluster.

    ``replicas``: ``"auto"`` — 1 on a master that has a replica connected, none on one that has none; a number —
    that many (0: off). ``durable_evalsha`` sends the script and ``WAIT <n> <timeout_ms>`` in one write on one
    connection of the slot's master (``WAIT`` counts the replicas that have that connection's last write, and the
    replication stream is in order, so everything the master did before it too).

    When the replicas fall short (``WAIT`` answers fewer within the timeout: a replica down or far behind), the
    write is answered all the same — a replica's outage must not stop customer service on its master's third of
    the customers — and counted (``reason="short"``; the metric ``gateway_redis_unconfirmed_writes_total``), with a
    warning in the log at most once a minute naming the master. That master's next writes wait only
    ``DEGRADED_WAIT_MS`` until one is confirmed again (a dead replica costs each write 20 ms, not the timeout, and
    holds no connection long). With ``auto``, a master that has no replica connected (its own was promoted when it
    died and none replaced it yet; or a cluster run without replicas, which should say 0) is not waited on: its
    writes are counted as ``reason="no_replica"``; a write to a slot being migrated (``ASK``) goes redis-py's way
    unconfirmed (``reason="migrating"``).
    """

    replicas: str | int = "auto"
    timeout_ms: int = 300
    count: Callable[[str], object] | None = None  # told each unconfirmed write's reason (a Prometheus counter)
    _degraded: set[str] = field(default_factory=set)  # masters whose last WAIT fell short
    _replicas: dict[str, tuple[int, float]] = field(default_factory=dict)  # auto: master → (replicas, checked at)
    _unconfirmed: dict[str, int] = field(default_factory=dict)  # master → writes unconfirmed since the last warning
    _warned_at: float = float("-inf")

    def __post_init__(self) -> None:
        if self.replicas != "auto":
            if not str(self.replicas).isdigit():
                raise ValueError(f"wait_replicas must be auto or a number of replicas, got {self.replicas!r}")
            self.replicas = int(self.replicas)
        if self.timeout_ms < 1:
            raise ValueError(f"wait_timeout_ms must be at least 1, got {self.timeout_ms}")

    @property
    def on(self) -> bool:
        return self.replicas != 0

    async def wanted(self, node: ClusterNode) -> int:
        """How many replicas to wait for on the master ``node``: the number set, or with ``auto`` 1 when the master
        has a replica connected (its ``INFO replication``, asked again every ``REPLICAS_CHECK_EVERY`` seconds:
        ``CLUSTER SLOTS`` leaves out a replica until it has data, and redis-py reads the map only after an error)."""
        if self.replicas != "auto":
            return int(self.replicas)
        known = self._replicas.get(node.name)
        now = time.monotonic()
        if known is None or now - known[1] > REPLICAS_CHECK_EVERY:
            self._replicas[node.name] = (known[0] if known else 1, now)  # the other turns meanwhile: as it was
            try:
                info = await node.execute_command("INFO", "replication")
                count = int(info.get("connected_slaves", 0))
            except (redis.RedisError, OSError):  # the master is away: the write itself will find out
                count = known[0] if known else 1
            self._replicas[node.name] = (count, now)
        if self._replicas[node.name][0]:
            return 1
        self.unconfirmed(node.name, "no_replica")  # none connected (the one it had was promoted, or is down)
        return 0

    def unconfirmed(self, node: str, reason: str) -> None:
        if self.count is not None:
            self.count(reason)
        self._unconfirmed[node] = self._unconfirmed.get(node, 0) + 1
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            masters = ", ".join(f"{name}: {n}" for name, n in sorted(self._unconfirmed.items()))
            self._unconfirmed.clear()
            log.warning("Redis Cluster: writes answered to customers without the confirmation of "
                        "redis.wait_replicas=%s replica(s) within %d ms (a replica down, lagging, or none left after "
                        "a failover) — a failover of these masters now may lose them; writes per master since the "
                        "last warning: %s. Check 'INFO replication' on them and the cluster's replicas.",
                        self.replicas, self.timeout_ms, masters)  # fmt: skip

    def waited(self, node: str, want: int, acked: int) -> None:
        if acked >= want:
            self._degraded.discard(node)
            return
        self._degraded.add(node)
        self.unconfirmed(node, "short")

    def timeout_for(self, node: str) -> int:
        """The ``WAIT``'s timeout on the master ``node``: shorter while its replicas fall short."""
        return min(self.timeout_ms, DEGRADED_WAIT_MS) if node in self._degraded else self.timeout_ms


class UnconfirmedWrite(redis.ConnectionError):
    """The script ran, but its master was lost before the replicas' count came back: whether the write survives
    the failover is unknown. Raised as a connection error (an outage: 503), so the caller lets go of its turn and
    the channel's retry finds either the write (answered from it) or nothing (handled again) — never both."""


async def durable_evalsha(client: AnyRedis, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """Run ``script`` and return its result once the replicas ``client.durability`` asks for have the write (or
    the wait timed out: see ``Durability``). Without a durability setting (a single server, or it is off), the
    script runs as usual."""
    durability = getattr(client, "durability", None)
    if durability is None or not durability.on or not isinstance(client, RedisCluster):
        return await script(keys=keys, args=args)
    slot = client.keyslot(keys[0])
    for _ in range(4):
        if client._initialize_due():
            await client.initialize()
        nodes = client.nodes_manager.slots_cache.get(slot)
        if not nodes:
            await _reroute(client, keys[0])
            continue
        node = nodes[0]
        want = await durability.wanted(node)
        if not want:
            return await script(keys=keys, args=args)
        evalsha = PipelineCommand(0, "EVALSHA", script.sha, len(keys), *keys, *args)
        wait_ms, socket_timeout = durability.timeout_for(node.name), node.connection_kwargs.get("socket_timeout")
        if socket_timeout:  # within the read's own timeout: else every write on a master missing a replica would fail
            wait_ms = max(1, min(wait_ms, int(socket_timeout * 800)))
        wait = PipelineCommand(1, "WAIT", want, wait_ms)
        try:  # one packed write on one connection of the master: the WAIT counts the script's write
            await node.execute_pipeline([evalsha, wait])
        except MaxConnectionsError:
            raise
        except (redis.ConnectionError, redis.TimeoutError, OSError):  # the write failed: nothing ran
            client._request_refresh(last_failed_node_name=node.name)
            await _reroute(client, keys[0])
            continue
        result = evalsha.result
        if isinstance(result, NoScriptError):  # the master restarted (or was promoted) without the script
            await node.execute_command("SCRIPT", "LOAD", script.script)
            continue
        if isinstance(result, (MovedError, TryAgainError, ClusterDownError)):
            await _reroute(client, keys[0])  # not run there: follow the slot (redis-py updates its map) and again
            continue
        if isinstance(result, AskError):  # the slot is being migrated: redis-py's own way, unconfirmed
            durability.unconfirmed(node.name, "migrating")
            return await script(keys=keys, args=args)
        if isinstance(result, (redis.ConnectionError, redis.TimeoutError, OSError)):
            raise UnconfirmedWrite(f"the master {node.name} was lost before the script's reply") from result
        if isinstance(result, BaseException):
            raise result
        acked = wait.result
        if isinstance(acked, BaseException):
            raise UnconfirmedWrite(f"the master {node.name} was lost before its replicas confirmed") from acked
        durability.waited(node.name, want, int(acked))
        return result
    raise redis.ConnectionError(f"slot {slot}: no master took the write after 4 attempts")


async def _reroute(client: RedisCluster, key: Any) -> None:
    """Let redis-py find the slot's master now (it follows ``MOVED``, refreshes its map and retries through a
    failover, ``FAILOVER_WAIT`` at most) with a read of ``key``."""
    await client.execute_command("EXISTS", key)


class GatewayCluster(RedisCluster):
    """redis-py's ``RedisCluster`` whose pipelines are ``GatewayClusterPipeline`` and pub/sub connections
    ``GatewayClusterPubSub``; ``durability`` says how ``durable_evalsha`` waits for replicas."""

    durability: Durability | None = None

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


def client(url: str, max_connections: int = 256, durability: Durability | None = None) -> AnyRedis:
    """An asyncio client for ``url`` (see the module's doc); ``durability`` applies on a cluster."""
    if is_cluster(url):
        cluster = GatewayCluster(startup_nodes=[ClusterNode(h, p) for h, p in cluster_nodes(url)],
                                 max_connections=max_connections, **_cluster_options(url))  # fmt: skip
        cluster.durability = durability
        return cluster
    if durability is not None and durability.replicas not in ("auto", 0):
        log.warning("redis.wait_replicas=%s applies on a Redis Cluster only; with one server it is not used",
                    durability.replicas)  # fmt: skip
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


def delete_prefixed(url: str, prefix: str) -> int:
    """Deletes every key under ``prefix`` (on a cluster, every master's), one by one — on a cluster they live in many
    slots; how many. For tests and benches that give a run a prefix of its own, never for a deployment's data."""
    client = sync_client(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for key in keys:
            client.delete(key)
        return len(keys)
    finally:
        client.close()


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
