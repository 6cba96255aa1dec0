"""A raw HTTP/1.1 server on loopback that answers with exactly the bytes a test scripts.

Used to play broken or hostile endpoints (garbage SSE, endless streams, silence, huge bodies,
dropped connections) that no well-behaved framework would produce.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)


@asynccontextmanager
async def hostile_server(write: Writer) -> AsyncIterator[str]:
    """Serve `write(writer)` for every request; yield the base URL (http://127.0.0.1:PORT)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _read_request(reader)
            await write(writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def head(status: int = 200, content_type: str = "text/event-stream", extra: str = "") -> bytes:
    """A response head without Content-Length: the body runs until the connection closes."""
    return (
        f"HTTP/1.1 {status} OK\r\ncontent-type: {content_type}\r\nrequest-id: req_test\r\n"
        f"connection: close\r\n{extra}\r\n"
    ).encode()
