"""The relay's HTTP/1.1 client to the upstream: lean, because every relayed request pays for it.

A request goes out as the client sent it (its headers in order, a Host for the upstream, its body
bytes as they arrive); the answer comes back as the upstream sent it: status, raw headers in order,
and the body as it arrives (what each read brought, in one piece), with the transfer coding
(chunked) removed and any content coding (gzip...) kept. Messages are parsed by httptools (C).
Connections are kept alive and reused, one request at a time each; an idle one the upstream has
closed is never reused.

Every wait is bounded: `connect_timeout` for the connection, `max_silence` between two reads or
for one write. Whatever goes wrong is an UpstreamError saying what, in one line.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar
from urllib.parse import urlsplit

import httptools

# Connections kept open for reuse, at most (more are closed once their answer is read).
MAX_IDLE = 64
READ_SIZE = 64 * 1024
_SCHEMES = {"http": 80, "https": 443}
# asyncio.timeout (3.11+) bounds a wait without the task asyncio.wait_for makes for each one.
_TIMEOUT = getattr(asyncio, "timeout", None)
T = TypeVar("T")


class UpstreamError(Exception):
    """The upstream could not be reached, did not answer in time, or broke the connection."""


class _Connection:
    """One connection to the upstream, and the parser of the answer being read on it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.spoiled = False  # bytes came after an answer's end: the connection is not reused
        self.next_answer()

    def next_answer(self) -> None:
        """Ready to read the answer to the next request sent on this connection."""
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False

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

    def on_message_complete(self) -> None:
        if not self.spoiled:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()  # read here: httptools forgets it afterwards

    def usable(self) -> bool:
        """Idle and still open: the upstream has not closed it, and nothing unasked for came on it."""
        return not self.spoiled and not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


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
        return any(name.lower() == b"content-length" for name, _ in self.headers)

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
                chunks, connection.chunks = connection.chunks, []
                yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
            if connection.complete:
                self._release(reuse=connection.keep_alive)
                return
            data = await self._upstream.read(connection)
            if not data:
                if not _framed(connection.headers):
                    self._release(reuse=False)  # an answer delimited by the end of the connection
                    return
                raise UpstreamError("the upstream closed the connection before the answer ended")
            _feed(connection, data)

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
        client's content-length, else chunked."""
        connection = await self._connection()
        try:
            await self._send_request(connection, method, target, headers, body)
            while True:  # an interim answer (100 Continue, 103 Early Hints) is not the answer
                while not connection.headers_done:
                    data = await self.read(connection)
                    if not data:
                        raise UpstreamError("the upstream closed the connection without answering")
                    _feed(connection, data)
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

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable():
                connection.next_answer()
                return connection
            connection.close()
        try:
            reader, writer = await _bounded(
                asyncio.open_connection(
                    self.host, self.port, ssl=self.tls, server_hostname=self.host if self.tls else None, limit=READ_SIZE
                ),
                self.connect_timeout,
            )
        except asyncio.TimeoutError:
            raise UpstreamError(f"no connection to {self.host}:{self.port} within {self.connect_timeout:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(f"cannot connect to {self.host}:{self.port}: {_reason(exc)}") from None
        return _Connection(reader, writer)

    async def _send_request(
        self,
        connection: _Connection,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterator[bytes] | None,
    ) -> None:
        chunked = body is not None and not any(name.lower() == b"content-length" for name, _ in headers)
        lines = [f"{method} {self.path}{target} HTTP/1.1".encode("latin-1"), b"host: " + self.host_header]
        lines += [name + b": " + value for name, value in headers]
        if chunked:
            lines.append(b"transfer-encoding: chunked")
        # The head goes out with the body's first chunk (for most requests, the whole body): one write, not two.
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        if body is not None:
            async for chunk in body:
                if not chunk:
                    continue  # in chunked framing, an empty chunk would end the body
                connection.writer.write(head + (b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk))
                head = b""
                await self._drain(connection)
        connection.writer.write(head + (b"0\r\n\r\n" if chunked else b""))
        await self._drain(connection)

    async def _drain(self, connection: _Connection) -> None:
        if not connection.writer.transport.get_write_buffer_size():
            return  # all written already: nothing to wait for
        try:
            await _bounded(connection.writer.drain(), self.max_silence)
        except asyncio.TimeoutError:
            raise UpstreamError(f"the upstream took no data for {self.max_silence:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(f"the connection to the upstream broke: {_reason(exc)}") from None

    async def read(self, connection: _Connection) -> bytes:
        """What the upstream sent next on `connection` (b"" at its end), within `max_silence`."""
        try:
            return await _bounded(connection.reader.read(READ_SIZE), self.max_silence)
        except asyncio.TimeoutError:
            raise UpstreamError(f"the upstream sent nothing for {self.max_silence:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(f"the connection to the upstream broke: {_reason(exc)}") from None

    def release(self, connection: _Connection, reuse: bool) -> None:
        """Done with `connection`: kept for the next request when `reuse` and it is still open, else closed."""
        if reuse and len(self._idle) < MAX_IDLE and connection.usable():
            self._idle.append(connection)
        else:
            connection.close()


async def _bounded(awaitable: Awaitable[T], seconds: float) -> T:
    """`awaitable`'s result, or asyncio.TimeoutError after `seconds`."""
    if _TIMEOUT is None:
        return await asyncio.wait_for(awaitable, seconds)
    async with _TIMEOUT(seconds):
        return await awaitable


def _feed(connection: _Connection, data: bytes) -> None:
    try:
        connection.parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        connection.complete = True  # a protocol switch: what follows is not HTTP, and is not relayed
    except httptools.HttpParserError as exc:
        if connection.complete and connection.status >= 200:  # past the answer's end: it stands, not the connection
            connection.spoiled = True
            return
        raise UpstreamError(f"the upstream's answer is not valid HTTP/1.1: {exc}") from None


def _framed(headers: list[tuple[bytes, bytes]]) -> bool:
    """The answer says where its body ends (a length, or chunks); otherwise the end of the connection does."""
    return any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in headers)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
