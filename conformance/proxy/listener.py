"""The proxy's HTTP/1.1 server side: client connections on an event loop of its own (a thread), each
request handed to a handler as soon as its headers are in, its body following as it arrives.

Requests are parsed by httptools (C) straight from the socket's bytes, with no framework between
the parser and the handler: every relayed request pays for what sits there.

What a client can do wrong ends its connection, never the server:
- a request's headers must be complete within `header_timeout` of the connection's start (or of
  the end of the previous answer on a kept-alive connection), and an idle kept-alive connection is
  closed after KEEP_ALIVE seconds, so that a client that says nothing, or drips its headers a byte
  at a time, holds nothing for long;
- a request head may not pass MAX_HEAD_BYTES (the parser keeps every header byte until the head
  ends), nor be malformed, nor ask for a protocol upgrade: each is answered 400 and the connection
  closed;
- a request body is buffered up to BODY_HIGH_WATER bytes before the connection stops being read
  (the handler takes it at its own pace), and an answer waits for a client that reads slowly.

Pipelined requests are answered in order, one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus

import httptools

from conformance.listening import bound_socket

# The most a request's line and headers may amount to while they are still arriving. llhttp sets no
# bound of its own; this is h11's.
MAX_HEAD_BYTES = 16 * 1024
# An idle kept-alive connection is closed after this many seconds.
KEEP_ALIVE = 5.0
# Request body bytes buffered before the connection stops being read.
BODY_HIGH_WATER = 256 * 1024
# How long stopping waits for the requests in progress before it cuts them off.
STOP_GRACE = 10.0
START_TIMEOUT = 10.0

UPGRADE_REFUSED = "conformance proxy: no protocol upgrade is relayed; send the request without Upgrade"
MALFORMED = "Invalid HTTP request received."
HEAD_TOO_LARGE = "Request headers too large."
_NO_BODY_STATUSES = frozenset({204, 304})


def status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


class IncomingRequest:
    """A request whose headers are in: method, target (path and query as sent), headers (names lower-cased,
    in order), and its body through `body()`, as it arrives."""

    def __init__(
        self,
        connection: ClientConnection,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.keep_alive = keep_alive
        self.has_body = any(name in (b"content-length", b"transfer-encoding") for name, _ in headers)
        self._connection = connection
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self.complete = False  # the whole body has come
        self._arrived: asyncio.Future[None] | None = None

    async def body(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive; it ends early when the client goes away mid-body.

        A client that waits to be told to send its body (`expect: 100-continue`) is told so now."""
        connection = self._connection
        if not self.complete and (b"expect", b"100-continue") in self.headers:
            connection.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                connection.taken(self._buffered)
                yield chunk
            if self.complete or connection.gone:
                return
            self._arrived = connection.loop.create_future()
            await self._arrived
            self._arrived = None

    def _feed(self, chunk: bytes) -> int:
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        self._wake()
        return self._buffered

    def _end(self) -> None:
        self.complete = True
        self._wake()

    def _wake(self) -> None:
        if self._arrived is not None and not self._arrived.done():
            self._arrived.set_result(None)


class Responder:
    """Writes one answer to the client, framed for it: the length the answer states, else chunked (or, for a
    client that keeps no connection alive, up to the connection's end)."""

    def __init__(self, connection: ClientConnection, request: IncomingRequest) -> None:
        self._connection = connection
        self._request = request
        self._chunked = False
        self._bodyless = False
        self.keep_alive = request.keep_alive
        self._head = b""
        self.ended = False

    @property
    def gone(self) -> bool:
        """The client has disconnected."""
        return self._connection.gone

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """The status line and headers (as given; framing and `connection: close` added where needed)."""
        lines = [status_line(status)]
        framed = False
        for name, value in headers:
            lower = name.lower()
            if lower == b"content-length" or (lower == b"transfer-encoding" and value.lower() == b"chunked"):
                framed = True
            elif lower == b"connection" and b"close" in {token.strip().lower() for token in value.split(b",")}:
                self.keep_alive = False
            lines += (name, b": ", value, b"\r\n")
        self._bodyless = self._request.method == "HEAD" or status in _NO_BODY_STATUSES or status < 200
        # Without a length, a body is chunked for a client that keeps the connection, else ends with it.
        if not framed and not self._bodyless and self.keep_alive:
            self._chunked = True
            lines.append(b"transfer-encoding: chunked\r\n")
        if not self.keep_alive:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        self._head = b"".join(lines)  # sent with the body's first piece, or by `flush()`

    def flush(self) -> None:
        """Send the head now, the body being not yet in hand."""
        if self._head:
            self._connection.write(self._head)
            self._head = b""

    async def write(self, chunk: bytes) -> None:
        """Part of the body, sent at once; waits while the client is slower than the answer."""
        self.write_now(chunk)
        if self._connection.write_paused:
            await self._connection.drained()

    def write_now(self, chunk: bytes) -> None:
        """Part of the body, sent at once, whatever the client has yet to read (for a small body)."""
        if chunk and not self._bodyless:
            self._connection.write(self._head + (b"%x\r\n%b\r\n" % (len(chunk), chunk) if self._chunked else chunk))
            self._head = b""

    def end(self) -> None:
        """The body is complete."""
        self.ended = True
        self._connection.write(self._head + (b"0\r\n\r\n" if self._chunked else b""))
        self._head = b""


Handler = Callable[[IncomingRequest, Responder], Awaitable[None]]


class ClientConnection(asyncio.Protocol):
    """One client's connection: its requests parsed as they come and answered one at a time, in order."""

    def __init__(self, handler: Handler, header_timeout: float, connections: set[ClientConnection]) -> None:
        self.loop = asyncio.get_running_loop()
        self._handler = handler
        self._header_timeout = header_timeout
        self._connections = connections
        self.parser = httptools.HttpRequestParser(self)
        with contextlib.suppress(AttributeError):  # httptools < 0.6.3
            # A request pipelined after one that closes the connection is parsed, not an error: it is not answered.
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport | None = None
        self.gone = False
        self.write_paused = False
        self._drained: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._pending: deque[IncomingRequest] = deque()
        self._parsing: IncomingRequest | None = None  # the request whose body is being parsed
        self._answering: asyncio.Task[None] | None = None
        self._closing = False  # no request after the one being answered
        self._unread = False  # what comes after a request that closes the connection is not read
        # The head being parsed: its bytes so far, its URL and headers.
        self._in_head = False
        self._head_bytes = 0
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_deadline: asyncio.TimerHandle | None = None
        self._idle_deadline: asyncio.TimerHandle | None = None

    @property
    def answering(self) -> asyncio.Task[None] | None:
        """The task answering this connection's requests, while there are any."""
        return self._answering

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._connections.add(self)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        self._connections.discard(self)
        self._cancel_timers()
        for request in (*self._pending, self._parsing):
            if request is not None:
                request._wake()
        self._resolve_drained()

    def data_received(self, data: bytes) -> None:
        if self._idle_deadline is not None:
            self._idle_deadline.cancel()
            self._idle_deadline = None
        if self._unread or self._closing:
            return  # past a request that closes the connection, or while it closes: not read
        in_head = self._in_head or self._parsing is None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # refused in on_headers_complete
        except httptools.HttpParserError:
            self.refuse(MALFORMED)
            return
        # A chunk that began in a head and left it unfinished is all head bytes (the bound may be passed by one chunk).
        if in_head and self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self.refuse(HEAD_TOO_LARGE)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._resolve_drained()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._in_head, self._head_bytes = True, 0
        self._url, self._headers = b"", []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp keeps trailing whitespace, which RFC 9110 section 5.5 excludes from the value.
        self._headers.append((name.lower(), value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        parser = self.parser
        if parser.should_upgrade():
            # The proxy switches to no other protocol (websocket, h2c), and httptools stops reading at an
            # upgrade: the request's body and any request after it would never be read. Refused, closed.
            self.refuse(UPGRADE_REFUSED)
            return
        url = self._url
        if not url.startswith(b"/"):  # absolute form (or `*`): relayed as its path and query
            parsed = httptools.parse_url(url)
            url = (parsed.path or b"/") + (b"?" + parsed.query if parsed.query else b"")
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        # A target or method that is not ASCII raises here, which the parser reports as malformed: a 400.
        request = IncomingRequest(
            self, parser.get_method().decode("ascii"), url.decode("ascii"), self._headers, keep_alive
        )
        self._parsing = request
        self._pending.append(request)
        if self._answering is None:
            self._answering = self.loop.create_task(self._answer_all())

    def on_body(self, body: bytes) -> None:
        request = self._parsing
        if request is not None and request._feed(body) > BODY_HIGH_WATER and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        request, self._parsing = self._parsing, None
        if request is not None:
            request._end()
            if not request.keep_alive:
                self._unread = True

    # Used by requests and responders
    def taken(self, buffered: int) -> None:
        """The handler took body bytes; `buffered` are left."""
        if self._reading_paused and buffered <= BODY_HIGH_WATER // 2 and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if data and not self.gone and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drained(self) -> None:
        if self.write_paused and not self.gone:
            if self._drained is None:
                self._drained = self.loop.create_future()
            await self._drained

    def refuse(self, reason: str) -> None:
        """Answer 400 with `reason` and close (a request being answered is cut off)."""
        self._closing = True
        body = reason.encode("ascii")
        head = b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(body)
        self.write(status_line(400) + head + body)
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def shutdown(self) -> None:
        """Stop after the answer in progress (at once when there is none)."""
        self._closing = True
        if self._answering is None:
            self.close()

    # Inner workings
    async def _answer_all(self) -> None:
        try:
            while self._pending and not self.gone:
                request = self._pending.popleft()
                responder = Responder(self, request)
                try:
                    await self._handler(request, responder)
                except Exception as exc:  # the handler's own failure: this connection ends, the server goes on
                    print(f"conformance proxy: relaying failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                    self._closing = True
                # The connection is reused only after a whole answer to a whole request: a body left unread
                # would be taken for the next request.
                if not (responder.ended and responder.keep_alive and request.complete) or self._closing:
                    self._closing = True
                    self.close()
                    return
            if not self.gone:
                self._idle_deadline = self.loop.call_later(KEEP_ALIVE, self.close)
                self._arm_head_deadline()
        finally:
            self._answering = None

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        self._head_deadline = self.loop.call_later(self._header_timeout, self._head_too_slow)

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self._answering is None and self._parsing is None:
            self.close()  # said nothing in time, or not all of its head

    def _cancel_timers(self) -> None:
        for timer in (self._head_deadline, self._idle_deadline):
            if timer is not None:
                timer.cancel()
        self._head_deadline = self._idle_deadline = None

    def _resolve_drained(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None


class Listener:
    """`handler` serving client connections on `host`:`port` (0: a free one), from a thread of its own.

    `start()` returns once connections are accepted (OSError when the address cannot be bound);
    `stop()` stops accepting, lets the requests in progress finish for up to STOP_GRACE seconds,
    cuts off the rest, and then awaits `on_stop` (closing what the handler holds) on the same loop.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str,
        port: int,
        header_timeout: float,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.header_timeout = header_timeout
        self.on_stop = on_stop
        self._connections: set[ClientConnection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._bound_port: int | None = None

    @property
    def base_url(self) -> str:
        if self._bound_port is None:
            raise RuntimeError("the proxy is not listening")
        return f"http://{self.host}:{self._bound_port}"

    def start(self) -> Listener:
        sock = bound_socket(self.host, self.port)
        self._bound_port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, args=(sock,), name="conformance-proxy", daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the proxy did not start: {self._error}")
        return self

    def stop(self) -> None:
        loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                loop.call_soon_threadsafe(stopping.set)
        if thread is not None:
            thread.join()
        self._thread = self._loop = self._stopping = None
        self._bound_port = None

    def _run(self, sock: socket.socket) -> None:
        try:
            asyncio.run(self._serve(sock))
        except BaseException as exc:  # said by start(), or by the first request's absence
            self._error = exc
            self._started.set()

    async def _serve(self, sock: socket.socket) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        connections = self._connections
        server = await self._loop.create_server(
            lambda: ClientConnection(self.handler, self.header_timeout, connections), sock=sock
        )
        self._started.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for connection in list(connections):
                connection.shutdown()
            answering = [task for c in connections if (task := c.answering) is not None]
            if answering:
                _, late = await asyncio.wait(answering, timeout=STOP_GRACE)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
            for connection in list(connections):
                connection.close()
            if self.on_stop is not None:
                await self.on_stop()
