"""A raw HTTP/1.1 server on loopback that answers with exactly the bytes a test scripts.

Used to play broken or hostile endpoints (garbage SSE, endless streams, silence, huge bodies,
dropped connections) that no well-behaved framework would produce.

`hostile_server(write)` serves one script for every request, inside the test's own event loop.
`HostileServer(answers)` serves many, from a background thread, for a command run in a subprocess:
the first path segment of a request names its answer (`/gzip-bomb/v1/messages` is answered by
`answers["gzip-bomb"]` with the path `/v1/messages`), so that one server plays every misbehaviour
at once, each under its own base URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]
LOOPBACK = "127.0.0.1"
# A request head longer than this is not read further (the stream reader's own limit).
MAX_REQUEST_HEAD = 64 * 1024
START_TIMEOUT = 10.0


@dataclass(frozen=True)
class HostileRequest:
    """A request as the hostile server read it: `path` is what follows the answer's name."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    number: int  # how many requests the same answer got before this one

    @property
    def api_key(self) -> str:
        """The key the client sent, in x-api-key or as a bearer token ("" without one)."""
        bearer = self.headers.get("authorization", "")
        return self.headers.get("x-api-key") or bearer.partition(" ")[2]

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def wants_stream(self) -> bool:
        body = self.json
        return isinstance(body, dict) and body.get("stream") is True

    @property
    def model(self) -> str:
        body = self.json
        model = body.get("model") if isinstance(body, dict) else None
        return model if isinstance(model, str) else "hostile-model"


Answer = Callable[[HostileRequest, asyncio.StreamWriter], Awaitable[None]]


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    """Method, target, lower-cased headers and body of one request."""
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, _, rest = request_line.partition(" ")
    target = rest.rpartition(" ")[0] or rest
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return method, target, headers, await _read_chunked(reader)
    length = int(headers.get("content-length", "0") or "0")
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        body += await reader.readexactly(size)
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")  # no trailers are sent to it
    return bytes(body)


async def _answer_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer_for: Callable[..., Awaitable[None]]
) -> None:
    try:
        method, target, headers, body = await _read_head(reader)
        await answer_for(method, target, headers, body, writer)
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        pass
    except asyncio.CancelledError:
        pass  # the server is stopping: the answer ends here, like the connection
    finally:
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.close()


@asynccontextmanager
async def hostile_server(write: Writer) -> AsyncIterator[str]:
    """Serve `write(writer)` for every request; yield the base URL (http://127.0.0.1:PORT)."""

    async def answer(method: str, target: str, headers: dict[str, str], body: bytes, writer: Any) -> None:
        await write(writer)

    server = await asyncio.start_server(
        lambda r, w: _answer_connection(r, w, answer), LOOPBACK, 0, limit=MAX_REQUEST_HEAD
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.close()


class HostileServer:
    """Serves named answers from a background thread on 127.0.0.1 and a free port.

    `url(name)` is the base URL under which `answers[name]` plays; `received(name)` and
    `answered(name)` count the requests it got and finished answering (a test waits on them
    before interrupting a run).
    """

    def __init__(self, answers: Mapping[str, Answer]) -> None:
        self.answers = dict(answers)
        self._received: Counter[str] = Counter()
        self._answered: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the hostile server is not running")
        return f"http://{LOOPBACK}:{self._port}"

    def url(self, name: str) -> str:
        if name not in self.answers:
            raise KeyError(f"no answer named {name!r}")
        return f"{self.base_url}/{name}"

    def received(self, name: str) -> int:
        return self._received[name]

    def answered(self, name: str) -> int:
        return self._answered[name]

    async def _answer(self, method: str, target: str, headers: dict[str, str], body: bytes, writer: Any) -> None:
        name, _, rest = urlsplit(target).path.lstrip("/").partition("/")
        answer = self.answers.get(name)
        if answer is None:
            writer.write(head(404, "text/plain") + f"no answer named {name!r}\n".encode())
            return
        number = self._received[name]
        self._received[name] += 1
        query = urlsplit(target).query
        path = "/" + rest + (f"?{query}" if query else "")
        try:
            await answer(HostileRequest(method, path, headers, body, number), writer)
        finally:
            self._answered[name] += 1

    async def _serve(self, started: threading.Event) -> None:
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(
            lambda r, w: _answer_connection(r, w, self._answer), LOOPBACK, 0, limit=MAX_REQUEST_HEAD
        )
        self._port = server.sockets[0].getsockname()[1]
        started.set()
        await self._stopped.wait()
        server.close()
        # Answers still playing (an endless stream, a silence) end with the server.
        playing = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in playing:
            task.cancel()
        await asyncio.gather(*playing, return_exceptions=True)
        await server.wait_closed()

    def start(self) -> HostileServer:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._serve(started),), name="hostile-server", daemon=True
        )
        self._thread.start()
        if not started.wait(START_TIMEOUT):
            raise RuntimeError("the hostile server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None or self._stopped is None:
            return
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(START_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()
        self._loop = self._thread = self._stopped = self._port = None

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def head(status: int = 200, content_type: str = "text/event-stream", extra: str = "") -> bytes:
    """A response head without Content-Length: the body runs until the connection closes."""
    return (
        f"HTTP/1.1 {status} OK\r\ncontent-type: {content_type}\r\nrequest-id: req_test\r\n"
        f"connection: close\r\n{extra}\r\n"
    ).encode()


def reset(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a TCP reset (RST), not an orderly close."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def forward(upstream: str, request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    """Relay the request to `upstream` (a base URL) and its answer back, byte for byte."""
    parts = urlsplit(upstream)
    reader, upstream_writer = await asyncio.open_connection(parts.hostname, parts.port)
    headers = {name: value for name, value in request.headers.items() if name != "transfer-encoding"}
    headers |= {"host": parts.netloc, "connection": "close", "content-length": str(len(request.body))}
    lines = [f"{request.method} {parts.path.rstrip('/')}{request.path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    upstream_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body)
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        upstream_writer.close()
