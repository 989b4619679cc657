"""The lean pipelined connection used on the message path, against the real Redis."""

from __future__ import annotations

import asyncio

import pytest

from gateway.fastredis import FastRedis, FastRedisError


async def test_commands_in_order_types_and_errors(redis_url, key_prefix, redis_client):
    fast = FastRedis(redis_url)
    key = f"{key_prefix}fast"
    results = await asyncio.gather(*(fast.execute("INCR", key) for _ in range(200)))
    assert results == list(range(1, 201))  # replies matched to callers in order
    assert await fast.execute("SET", f"{key}:s", "héllo ✓") == b"OK"
    assert await redis_client.get(f"{key}:s") == "héllo ✓".encode()
    assert await fast.execute("HSET", f"{key}:h", "a", 1, "b", 2.5) == 2
    with pytest.raises(FastRedisError, match="NOSCRIPT"):
        await fast.evalsha("0" * 40, [key], [])
    assert await fast.execute("GET", key) == b"200"  # the connection survives an error reply
    await fast.aclose()


async def test_reconnects_after_the_connection_drops(redis_url, key_prefix):
    fast = FastRedis(redis_url)
    key = f"{key_prefix}fast2"
    await fast.execute("SET", key, "1")
    fast._protocol.transport.close()  # what a Redis restart does to the socket
    await asyncio.sleep(0.05)
    assert await fast.execute("GET", key) == b"1"
    await fast.aclose()


async def test_selects_the_url_database(redis_url, key_prefix):
    if redis_url.startswith("unix://"):
        pytest.skip("the embedded test Redis is addressed by socket without a database number")
    import redis

    base = redis_url.rsplit("/", 1)[0]
    fast = FastRedis(f"{base}/5")
    await fast.execute("SET", f"{key_prefix}db5", "x")
    in_db5 = redis.Redis.from_url(f"{base}/5")
    in_db4 = redis.Redis.from_url(f"{base}/4")
    try:
        assert in_db5.get(f"{key_prefix}db5") == b"x" and in_db4.get(f"{key_prefix}db5") is None
    finally:
        in_db5.delete(f"{key_prefix}db5")
        in_db5.close()
        in_db4.close()
        await fast.aclose()


async def test_a_failed_handshake_never_leaves_a_usable_connection(redis_url):
    if redis_url.startswith("unix://"):
        pytest.skip("needs a TCP Redis URL to add a password to")
    host = redis_url.split("://", 1)[1].split("/", 1)[0]
    fast = FastRedis(f"redis://:not-the-password@{host}/9")  # the test Redis has no password: AUTH fails
    for _ in range(2):  # the second call must fail the same way, not run on an unauthenticated connection
        with pytest.raises(FastRedisError):
            await fast.execute("PING")
    await fast.aclose()
