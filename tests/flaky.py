"""A flaky front for a loopback server: a share of requests get a transient failure (429 with
retry-after 0, 529 overloaded_error, a reset connection), the others are relayed unchanged.

Serves from a background thread (its own event loop), so that `conformance run` in the test's
thread, or in a subprocess, can use it. One request per connection: the front asks the upstream to
close after answering, and closes too.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
import threading
from types import TracebackType

LOOPBACK = "127.0.0.1"
FAULTS = ("429", "529", "reset")


def _error_answer(status: int, kind: str, extra: str = "") -> bytes:
    body = json.dumps({"type": "error", "error": {"type": kind, "message": "try again later"}}).encode()
    head = (
        f"HTTP/1.1 {status} Transient\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"request-id: req_flaky\r\nconnection: close\r\n{extra}\r\n"
    )
    return head.encode() + body


ANSWERS = {
    "429": _error_answer(429, "rate_limit_error", "retry-after: 0\r\n"),
    "529": _error_answer(529, "overloaded_error"),
}


class FlakyFront:
    """Relays to `upstream` (http://127.0.0.1:PORT); `share` of the requests get one of `faults`.

    `faults_served` counts the faults by kind, `relayed` the requests that went through.
    """

    def __init__(self, upstream: str, share: float, seed: int = 0, faults: tuple[str, ...] = FAULTS) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream = (host, int(port))
        self.share = share
        self.faults = faults
        self.faults_served: dict[str, int] = {}
        self.relayed = 0
        self._random = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.base_url = ""

    def __enter__(self) -> FlakyFront:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the flaky front did not start")
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, LOOPBACK, 0))
        self.base_url = f"http://{LOOPBACK}:{self._server.sockets[0].getsockname()[1]}"
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            fault = self._random.choice(self.faults) if self._random.random() < self.share else None
            if fault is not None:
                self.faults_served[fault] = self.faults_served.get(fault, 0) + 1
            if fault == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif fault is not None:
                writer.write(ANSWERS[fault])
                await writer.drain()
            else:
                self.relayed += 1
                await self._relay(request, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _relay(self, request: bytes, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        up_writer.write(request)
        await up_writer.drain()
        while chunk := await up_reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        up_writer.close()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """The whole request, its connection header replaced by `connection: close`."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if line and not line.lower().startswith(b"connection:")]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return b"\r\n".join([*lines, b"connection: close", b"", b""]) + body
