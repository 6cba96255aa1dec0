"""A TCP pipe in Python: every connection accepted is joined to a new connection to the upstream, and
bytes are copied both ways as they come, nothing parsed, kept or judged.

It is the floor of any relay written on Python's event loop: what one more loopback hop through an
interpreter costs, with no work of its own. `benchmarks/proxy.py` measures it beside the proxy.

    python benchmarks/tcp_pipe.py UPSTREAM_PORT LISTEN_PORT
"""

from __future__ import annotations

import asyncio
import sys

LOOPBACK = "127.0.0.1"


class Side(asyncio.Protocol):
    """One end of the pipe: what it receives is written to the other end."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.other: Side | None = None
        self.early: list[bytes] = []  # what came before the other end was connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        other = self.other
        if other is not None and other.transport is not None:
            other.transport.write(data)
        else:
            self.early.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.other is not None and self.other.transport is not None:
            self.other.transport.close()


class Client(Side):
    """The side a client connects to; it opens the upstream side."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__()
        self.upstream_port = upstream_port
        self.joining: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.joining = asyncio.ensure_future(self._join())

    async def _join(self) -> None:
        loop = asyncio.get_running_loop()
        _, upstream = await loop.create_connection(Side, LOOPBACK, self.upstream_port)
        upstream.other, self.other = self, upstream
        for data in self.early:
            assert upstream.transport is not None
            upstream.transport.write(data)
        self.early.clear()


async def main(upstream_port: int, listen_port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Client(upstream_port), LOOPBACK, listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
