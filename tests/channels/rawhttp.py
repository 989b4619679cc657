"""One HTTP/1.1 request written byte for byte: header values and targets that a client library would refuse to
send (not UTF-8, lone percent escapes), as an attacker's tool sends them."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


async def raw_request(base: str, method: str, target: str | bytes, headers: list[tuple[bytes, bytes]] | None = None,
                      body: bytes = b"", timeout: float = 10.0) -> tuple[int, bytes]:  # fmt: skip
    """(status, body) of one request to ``base`` (``http://host:port``); a hang past ``timeout`` raises."""
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        path = target if isinstance(target, bytes) else target.encode()
        head = [method.encode() + b" " + path + b" HTTP/1.1", f"Host: {url.netloc}".encode(), b"Connection: close",
                b"Content-Length: %d" % len(body)]  # fmt: skip
        head += [name + b": " + value for name, value in headers or []]
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]
