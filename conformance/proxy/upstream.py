"""The relay's HTTP/1.1 client to the upstream: lean, because every relayed request pays for it.

A request goes out as the client sent it (its headers in order, a Host for the upstream, its body
bytes as they arrive); the answer comes back as the upstream sent it: status, raw headers in order,
and the body as it arrives (what each read brought, in one piece), with the transfer coding
(chunked) removed and any content coding (gzip...) kept. Each connection is an asyncio protocol
whose bytes go straight into httptools (C): no stream reader, no task per read. Connections are
kept alive and reused, one request at a time each; an idle one the upstream has closed is never
reused.

Every wait is bounded: `connect_timeout` for the connection, `max_silence` between two reads or
for one write. Whatever goes wrong is an UpstreamError saying what, in one line.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools

# Connections kept open for reuse, at most (more are closed once their answer is read).
MAX_IDLE = 64
# Answer bytes read ahead of the relay (a client slower than the upstream) before reading pauses.
READ_AHEAD = 256 * 1024
_SCHEMES = {"http": 80, "https": 443}
UNANSWERED = "the upstream closed the connection without answering"


class UpstreamError(Exception):
    """The upstream could not be reached, did not answer in time, or broke the connection."""


class _Connection(asyncio.Protocol):
    """One connection to the upstream, and the parser of the answer being read on it.

    The protocol's callbacks only record what came and wake the one waiting for it (`wait`).
    """

    def __init__(self, max_silence: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.max_silence = max_silence
        self.transport: asyncio.Transport | None = None
        self.spoiled = False  # bytes came after an answer's end: the connection is not reused
        self.at_eof = False  # the upstream closed its side, or the connection is gone
        self.error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._since = 0.0  # the start of the current wait, or the last bytes during it
        self._watch: asyncio.TimerHandle | None = None
        self._paused = False
        self._write_paused = False
        self.next_answer()

    def next_answer(self) -> None:
        """Ready to read the answer to the next request sent on this connection."""
        self.heard = False  # a byte of the answer came
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.headers_done = False
        self.complete = False
        self.keep_alive = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.heard = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.complete = True  # a protocol switch: what follows is not HTTP, and is not relayed
        except httptools.HttpParserError as exc:
            if self.complete and self.status >= 200:  # past the answer's end: it stands, not the connection
                self.spoiled = True
            elif self.error is None:
                self.error = UpstreamError(f"the upstream's answer is not valid HTTP/1.1: {exc}")
        if self.buffered > READ_AHEAD and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.at_eof = True
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.at_eof = True
        if exc is not None and self.error is None and not self.complete:
            self.error = UpstreamError(f"the connection to the upstream broke: {_reason(exc)}")
        self._write_paused = False
        self._wake()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake()

    # httptools callbacks. A message after a final answer (status 200 or more) on the same bytes is the upstream's
    # error: it is ignored, and the connection is not reused.
    def on_message_begin(self) -> None:
        if self.complete and self.status >= 200:
            self.spoiled = True
        if not self.spoiled:
            self.headers, self.chunks, self.headers_done, self.complete = [], [], False, False

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.spoiled:
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if not self.spoiled:
            self.status = self.parser.get_status_code()
            self.headers_done = True

    def on_body(self, body: bytes) -> None:
        if not self.spoiled:
            self.chunks.append(body)
            self.buffered += len(body)

    def on_message_complete(self) -> None:
        if not self.spoiled:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()  # read here: httptools forgets it afterwards

    # Used by the client
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        """Until the upstream has taken what was written (within `max_silence`)."""
        while self._write_paused and not self.at_eof:
            await self.wait("the upstream took no data for {:g} s")
        if self.error is not None:
            raise self.error

    def take_chunks(self) -> list[bytes]:
        """The body bytes read so far, taken (reading resumes if it had paused)."""
        chunks, self.chunks, self.buffered = self.chunks, [], 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunks

    async def wait(self, silence: str = "the upstream sent nothing for {:g} s") -> None:
        """Until the upstream sends something, ends, or can take more; UpstreamError(`silence`) after
        `max_silence` seconds of nothing."""
        self._since = self.loop.time()
        self._waiter = waiter = self.loop.create_future()
        if self._watch is None:
            self._watch = self.loop.call_at(self._since + self.max_silence, self._check_silence)
        try:
            await waiter
        except asyncio.TimeoutError:
            raise UpstreamError(silence.format(self.max_silence)) from None
        finally:
            self._waiter = None

    def usable(self) -> bool:
        """Idle and still open: the upstream has not closed it, and nothing unasked for came on it."""
        return not (self.spoiled or self.at_eof or self.transport is None or self.transport.is_closing())

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._since = self.loop.time()
            if not waiter.done():
                waiter.set_result(None)

    def _check_silence(self) -> None:
        # One timer per connection, pushed back rather than made anew for every wait.
        self._watch = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        deadline = self._since + self.max_silence
        if self.loop.time() >= deadline:
            waiter.set_exception(asyncio.TimeoutError())
        else:
            self._watch = self.loop.call_at(deadline, self._check_silence)


class UpstreamResponse:
    """The upstream's answer: `status` and `headers` (raw, in order) at once, the body through `body()`."""

    def __init__(self, upstream: Upstream, connection: _Connection, head_only: bool) -> None:
        self.status = connection.status
        self.headers = connection.headers
        self._upstream = upstream
        self._connection: _Connection | None = connection
        self._head_only = head_only

    @property
    def sized(self) -> bool:
        """The answer states its length."""
        return _declares(self.headers, b"content-length")

    @property
    def ready(self) -> bool:
        """Some of the body (or its end) is in hand: `body()` yields before it waits for the upstream."""
        connection = self._connection
        return connection is None or self._head_only or bool(connection.chunks) or connection.complete

    async def body(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive (none for an answer to HEAD, or one that has no body)."""
        connection = self._connection
        if connection is None:
            return
        if self._head_only:
            self._release(reuse=False)  # httptools cannot be told a HEAD's answer has no body: no reuse
            return
        while True:
            if connection.chunks:
                # What one read brought comes as one piece: one write to the client, however many chunks it framed.
                chunks = connection.take_chunks()
                yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
            if connection.complete:
                self._release(reuse=connection.keep_alive)
                return
            if connection.error is not None:
                raise connection.error
            if connection.at_eof:
                if not _declares(connection.headers, b"content-length", b"transfer-encoding"):
                    self._release(reuse=False)  # no length nor chunks: the connection's end is the answer's
                    return
                raise UpstreamError("the upstream closed the connection before the answer ended")
            await connection.wait()

    async def aclose(self) -> None:
        """Done with the answer: a connection whose answer was not read to its end is closed."""
        self._release(reuse=False)

    def _release(self, reuse: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._upstream.release(connection, reuse)


class Upstream:
    """Requests to one upstream base URL; `send` appends the request target to its path."""

    def __init__(self, base_url: str, *, connect_timeout: float, max_silence: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or _SCHEMES[parts.scheme]
        self.path = parts.path.rstrip("/")
        default_port = self.port == _SCHEMES[parts.scheme]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = (host if default_port else f"{host}:{self.port}").encode("idna")
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.connect_timeout = connect_timeout
        self.max_silence = max_silence
        self._idle: list[_Connection] = []

    async def send(
        self,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterator[bytes] | None,
    ) -> UpstreamResponse:
        """Send one request and read its answer's head. `target` is the path and query as the client asked;
        `headers` are sent as given (no Host: the upstream's is added), the body as it comes: as is with the
        client's content-length, else chunked.

        A request sent whole on a kept-alive connection that the upstream then closed without a byte of answer
        went out as the upstream was closing that idle connection: it is sent once more, on a new connection,
        as HTTP clients do (its body is kept while it is sent, for that)."""
        sent: list[bytes] = []
        connection, reused = await self._connection()
        try:
            return await self._exchange(connection, method, target, headers, body, sent)
        except _Unanswered as unanswered:
            if not reused:
                raise unanswered.error from None
        connection = await self._connect()
        replayed = _replay(sent) if body is not None else None
        try:
            return await self._exchange(connection, method, target, headers, replayed)
        except _Unanswered as unanswered:
            raise unanswered.error from None

    async def _exchange(
        self,
        connection: _Connection,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterator[bytes] | None,
        sent: list[bytes] | None = None,
    ) -> UpstreamResponse:
        """Send the request on `connection` (each body chunk kept in `sent`, when given) and read the answer's
        head; _Unanswered when the connection ended or broke before a byte of it came."""
        chunked = body is not None and not _declares(headers, b"content-length")
        # The head goes out with the body's first chunk (for most requests, the whole body): one write, not two.
        head = self._head(method, target, headers, chunked)
        try:
            if body is not None:
                async for chunk in body:
                    if not chunk:
                        continue  # in chunked framing, an empty chunk would end the body
                    if sent is not None:
                        sent.append(chunk)
                    connection.write(head + (b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk))
                    head = b""
                    await connection.drain()
            connection.write(head + (b"0\r\n\r\n" if chunked else b""))
            await connection.drain()
            while True:  # an interim answer (100 Continue, 103 Early Hints) is not the answer
                while not connection.headers_done:
                    if connection.error is not None or connection.at_eof:
                        error = connection.error or UpstreamError(UNANSWERED)
                        raise error if connection.heard else _Unanswered(error)
                    await connection.wait()
                if connection.status >= 200 or connection.status == 101:
                    return UpstreamResponse(self, connection, head_only=method.upper() == "HEAD")
                connection.headers_done = False
        except BaseException:
            connection.close()
            raise

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    async def _connection(self) -> tuple[_Connection, bool]:
        """A connection for the next request, and whether it is a kept-alive one, used before."""
        while self._idle:
            connection = self._idle.pop()
            if connection.usable():
                connection.next_answer()
                return connection, True
            connection.close()
        return await self._connect(), False

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            connecting = loop.create_connection(
                lambda: _Connection(self.max_silence),
                self.host,
                self.port,
                ssl=self.tls,
                server_hostname=self.host if self.tls else None,
            )
            _, connection = await asyncio.wait_for(connecting, self.connect_timeout)
        except asyncio.TimeoutError:
            raise UpstreamError(f"no connection to {self.host}:{self.port} within {self.connect_timeout:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(f"cannot connect to {self.host}:{self.port}: {_reason(exc)}") from None
        return connection

    def _head(self, method: str, target: str, headers: list[tuple[bytes, bytes]], chunked: bool) -> bytes:
        lines = [f"{method} {self.path}{target} HTTP/1.1".encode("latin-1"), b"host: " + self.host_header]
        lines += [name + b": " + value for name, value in headers]
        if chunked:
            lines.append(b"transfer-encoding: chunked")
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def release(self, connection: _Connection, reuse: bool) -> None:
        """Done with `connection`: kept for the next request when `reuse` and it is still open, else closed."""
        if reuse and len(self._idle) < MAX_IDLE and connection.usable():
            self._idle.append(connection)
        else:
            connection.close()


class _Unanswered(Exception):
    """The connection ended, or broke, before a byte of the answer came (`error` says how)."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(str(error))
        self.error = error


async def _replay(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _declares(headers: list[tuple[bytes, bytes]], *names: bytes) -> bool:
    """Whether `headers` hold one of `names` (lower-case)."""
    return any(name.lower() in names for name, _ in headers)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
