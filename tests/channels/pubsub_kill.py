"""Losing one pub/sub connection, the way a Redis restart or a network cut loses it."""

from __future__ import annotations

from typing import Any


async def kill_pubsub(redis_client: Any, pubsub: Any) -> None:
    """Over TCP: CLIENT KILL of that one connection, from the server's side. Over the embedded Redis's Unix socket
    (where every client's address is the socket's path, so the server cannot tell them apart) the connection is cut
    from our side instead — to its reader the same end of stream."""
    name = pubsub.connection._writer.get_extra_info("sockname")
    if isinstance(name, tuple):
        victim = next(c for c in await redis_client.client_list(_type="pubsub") if c["addr"].endswith(f":{name[1]}"))
        await redis_client.client_kill_filter(_id=victim["id"])
    else:
        pubsub.connection._writer.transport.abort()
