"""The proxy's server side (conformance/proxy/listener.py): a head dripped past the header timeout is
cut off, on a fresh connection as on a kept-alive one; a body dripped after timely headers, and a
pipelined request waiting on a slow upstream, are not; a head past its bound, a malformed request
and one asking for a protocol upgrade are answered 400, never a traceback; a client expecting
100-continue is told to go on, an HTTP/1.0 client gets an answer ended by the connection, and a
request whose body was never read ends its connection."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import logging
import secrets
import select
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from conformance.proxy import ProxyServer, ProxySession
from conformance.proxy.listener import (
    BODY_HIGH_WATER,
    MAX_HEAD_BYTES,
    Handler,
    IncomingRequest,
    Listener,
    Responder,
)
from conformance.reference import ReferenceServer

KEY = "test-key-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository
HELLO = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]})
HEAD = f"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: {KEY}\r\nanthropic-version: 2023-06-01\r\n"
REQUEST = (HEAD + f"content-type: application/json\r\ncontent-length: {len(HELLO)}\r\n\r\n{HELLO}").encode()
REQUEST_HEAD, REQUEST_BODY = REQUEST.split(b"\r\n\r\n", 1)
# A head that stays well-formed however much of it has come: a header line at a time, never ended.
DRIPPED_HEAD = (HEAD + "".join(f"x-pad-{n}: y\r\n" for n in range(40))).encode()
HANG = 15.0  # past this a test has hung; far above the header timeouts it uses, below no bound it tests


@contextmanager
def proxy_to(upstream: str, out: Path, header_timeout: float) -> Iterator[ProxyServer]:
    with ProxyServer(upstream, ProxySession(upstream, out), header_timeout=header_timeout) as proxy:
        yield proxy


@contextmanager
def to_reference(tmp_path: Path, header_timeout: float = 30.0) -> Iterator[ProxyServer]:
    """The proxy in front of the reference server."""
    with ReferenceServer(api_key=KEY) as upstream, proxy_to(upstream.base_url, tmp_path, header_timeout) as proxy:
        yield proxy


@contextmanager
def listening(handler: Handler) -> Iterator[Listener]:
    """The proxy's server side alone, serving `handler`."""
    listener = Listener(handler, host="127.0.0.1", port=0, header_timeout=30.0).start()
    try:
        yield listener
    finally:
        listener.stop()


@contextmanager
def connected(server: ProxyServer | Listener) -> Iterator[socket.socket]:
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=HANG) as sock:
        yield sock


class _Buffer(io.BufferedReader):
    """One read buffer for every answer on a connection: http.client closes it after each answer."""

    def close(self) -> None:
        pass


class _Reader:
    """Stands for the socket to http.client, handing it the connection's one buffer."""

    def __init__(self, sock: socket.socket) -> None:
        self.buffer = _Buffer(socket.SocketIO(sock, "rb"))

    def makefile(self, mode: str) -> BinaryIO:
        return self.buffer


def statuses(sock: socket.socket, count: int = 1) -> list[int]:
    """The statuses of the next `count` answers on `sock`, read through one buffer (pipelined answers can
    come in one read), leaving the connection open for the next request."""
    reader, found = _Reader(sock), []
    for _ in range(count):
        response = http.client.HTTPResponse(reader)  # type: ignore[arg-type]
        response.begin()
        response.read()
        found.append(response.status)
    return found


def read_all(sock: socket.socket) -> bytes:
    """Everything the proxy sends until it closes the connection."""
    said = b""
    while chunk := sock.recv(65536):
        said += chunk
    return said


def drip(sock: socket.socket, data: bytes, pause: float, give_up: float = 6.0) -> tuple[bool, float]:
    """Send `data` a byte every `pause` seconds until the proxy closes the connection or `give_up` seconds
    have passed (by default past the idle keep-alive timeout, 5 s); (closed, seconds taken).

    The proxy closing must say nothing: an answer (a 400 to a malformed head) fails the test.
    """
    started = time.monotonic()
    for byte in data:
        if time.monotonic() - started > give_up:
            break
        if select.select([sock], [], [], pause)[0]:
            try:
                said = sock.recv(1024)
            except ConnectionResetError:
                said = b""
            assert said == b"", said
            return True, time.monotonic() - started
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return True, time.monotonic() - started
    return False, time.monotonic() - started


@pytest.mark.parametrize("kept_alive", [False, True], ids=["first-request", "second-request"])
def test_a_head_dripped_past_the_header_timeout_is_cut_off(tmp_path: Path, kept_alive: bool) -> None:
    with to_reference(tmp_path, header_timeout=1.0) as proxy:
        with connected(proxy) as sock:
            if kept_alive:
                sock.sendall(REQUEST)
                assert statuses(sock) == [200]
            # A byte every 0.1 s, well-formed all along: only the header timeout can end it, within
            # the idle keep-alive timeout (5 s), which the first byte cancels anyway. The timeout runs
            # from the end of the answer, a little before the drip starts.
            closed, took = drip(sock, DRIPPED_HEAD, 0.1)
        assert closed and 0.5 <= took < 4.0, (closed, took)
        with connected(proxy) as sock:  # a client that behaves is still served
            sock.sendall(REQUEST)
            assert statuses(sock) == [200]


def test_a_body_dripped_after_timely_headers_is_not_cut_off(tmp_path: Path) -> None:
    with to_reference(tmp_path, header_timeout=0.5) as proxy, connected(proxy) as sock:
        sock.sendall(REQUEST_HEAD + b"\r\n\r\n")
        started = time.monotonic()
        pieces = [REQUEST_BODY[i : i + 10] for i in range(0, len(REQUEST_BODY), 10)]
        for piece in pieces:
            time.sleep(2.0 / len(pieces))
            sock.sendall(piece)
        assert time.monotonic() - started > 1.0  # twice the header timeout
        assert statuses(sock) == [200]
    assert proxy.report is not None and len(proxy.report.results) == 1


class Slow:
    """An ASGI upstream answering each request after `delay` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await asyncio.sleep(self.delay)
        body = json.dumps({"type": "error", "error": {"type": "not_found_error", "message": "no"}}).encode()
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def test_a_pipelined_request_waiting_on_a_slow_upstream_is_not_cut_off(tmp_path: Path) -> None:
    with (
        ReferenceServer(app=Slow(1.0)) as upstream,
        proxy_to(upstream.base_url, tmp_path, header_timeout=0.3) as proxy,
        connected(proxy) as sock,
    ):
        sock.sendall(REQUEST * 3)
        assert statuses(sock, 3) == [404, 404, 404]


def test_a_head_past_its_bound_is_answered_400(tmp_path: Path) -> None:
    with to_reference(tmp_path, header_timeout=30.0) as proxy:
        with connected(proxy) as sock:
            sock.sendall(HEAD.encode())
            line = b"x-pad: " + b"y" * 1000 + b"\r\n"
            try:
                for _ in range(2 * MAX_HEAD_BYTES // len(line)):
                    time.sleep(0.01)  # each line its own read, as a client sending without end would be
                    sock.sendall(line)
            except OSError:
                pass  # closed once it had answered
            assert sock.recv(1024).startswith(b"HTTP/1.1 400 ")
        with connected(proxy) as sock:  # a head within the bound, in as many pieces, is served
            sock.sendall(HEAD.encode())
            for _ in range(MAX_HEAD_BYTES // len(line) // 2):
                time.sleep(0.01)
                sock.sendall(line)
            sock.sendall(REQUEST.removeprefix(HEAD.encode()))
            assert statuses(sock) == [200]


MALFORMED = {
    "request-line": b"POST /v1/messages HTTP/1.1 trailing\r\nhost: x\r\n\r\n",
    "not-a-request": b"NOT A REQUEST\r\n\r\n",
    "control-char-in-header-name": HEAD.encode() + b"x-bad\x01name: y\r\ncontent-length: 0\r\n\r\n",
    "nul-in-header-value": HEAD.encode() + b"x-bad: a\x00b\r\ncontent-length: 0\r\n\r\n",
    "obs-fold": HEAD.encode() + b"x-folded: a\r\n b\r\ncontent-length: 0\r\n\r\n",
    "bare-lf": b"POST /v1/messages HTTP/1.1\nhost: x\ncontent-length: 0\n\n",
    "non-ascii-path": "POST /v1/messäges HTTP/1.1\r\nhost: x\r\n\r\n".encode(),
    "content-length-and-chunked": HEAD.encode() + b"content-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
    # No protocol switch is relayed: a request asking for one (with a body, or without) is refused, not left hanging.
    "upgrade-h2c-with-body": HEAD.encode()
    + b"connection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n"
    + f"content-length: {len(HELLO)}\r\n\r\n{HELLO}".encode(),
    "upgrade-websocket": HEAD.encode()
    + b"connection: upgrade\r\nupgrade: websocket\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    + b"sec-websocket-version: 13\r\n\r\n",
}


@pytest.mark.parametrize("request_bytes", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_request_is_answered_400_without_a_traceback(
    tmp_path: Path, request_bytes: bytes, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with to_reference(tmp_path, header_timeout=30.0) as proxy:
        with connected(proxy) as sock:
            sock.sendall(request_bytes)
            said = read_all(sock)
        assert said.startswith(b"HTTP/1.1 400 ") and b"connection: close" in said.lower(), said
        with connected(proxy) as sock:  # the next client is served
            sock.sendall(REQUEST)
            assert statuses(sock) == [200]
    assert proxy.report is not None and len(proxy.report.results) == 1  # the malformed one never reached the relay
    assert "Traceback" not in capfd.readouterr().err
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info]


def test_a_client_expecting_100_continue_is_told_to_go_on(tmp_path: Path) -> None:
    with to_reference(tmp_path, header_timeout=30.0) as proxy, connected(proxy) as sock:
        sock.sendall(REQUEST_HEAD + b"\r\nexpect: 100-continue\r\n\r\n")
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"  # before any body byte is sent
        sock.sendall(REQUEST_BODY)
        assert statuses(sock) == [200]


def test_an_http_10_client_gets_an_answer_ended_by_the_connection(tmp_path: Path) -> None:
    with to_reference(tmp_path, header_timeout=30.0) as proxy:
        with connected(proxy) as sock:
            sock.sendall(REQUEST.replace(b"HTTP/1.1", b"HTTP/1.0", 1))
            said = read_all(sock)
        head, body = said.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200 ") and b"connection: close" in head.lower()
        assert json.loads(body)["type"] == "message"


def test_a_request_whose_body_was_not_read_ends_its_connection_and_the_next_one_is_served(tmp_path: Path) -> None:
    """The upstream cannot be reached, so the request's body is never read: the 502 closes the connection
    (the body's bytes would be taken for the next request), and a new connection is served as usual."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        unreachable = f"http://127.0.0.1:{probe.getsockname()[1]}"  # bound, not listening: refused
        with proxy_to(unreachable, tmp_path, header_timeout=30.0) as proxy:
            with connected(proxy) as sock:
                sock.sendall(REQUEST_HEAD + b"\r\n\r\n" + REQUEST_BODY[:10])  # the body's first bytes only
                said = read_all(sock)
            assert said.startswith(b"HTTP/1.1 502 ") and b"conformance proxy" in said
            with connected(proxy) as sock:
                sock.sendall(REQUEST)
                assert statuses(sock) == [502]


def test_a_handler_that_fails_ends_its_connection_in_one_line_and_the_next_is_served(
    capfd: pytest.CaptureFixture[str],
) -> None:

    async def handler(request: IncomingRequest, responder: Responder) -> None:
        if request.target == "/fail":
            raise RuntimeError("a defect")
        responder.start(204, [])
        responder.end()

    with listening(handler) as listener:
        with connected(listener) as sock:
            sock.sendall(b"GET /fail HTTP/1.1\r\nhost: x\r\n\r\n")
            assert read_all(sock) == b""  # closed, nothing said to the client
        with connected(listener) as sock:
            sock.sendall(b"GET /fine HTTP/1.1\r\nhost: x\r\n\r\n")
            assert statuses(sock) == [204]
    err = capfd.readouterr().err
    assert "conformance proxy: relaying failed: RuntimeError: a defect" in err and "Traceback" not in err


def test_a_body_larger_than_the_buffer_reaches_a_slow_handler_whole() -> None:
    """Past BODY_HIGH_WATER buffered bytes the connection stops being read, and reading resumes as the
    handler takes the body: a large upload read slowly arrives whole, and is answered."""

    sent = bytes(range(256)) * (4 * BODY_HIGH_WATER // 256)  # four times what is buffered at most
    received = bytearray()

    async def slow_reader(request: IncomingRequest, responder: Responder) -> None:
        async for chunk in request.body():
            received.extend(chunk)
            await asyncio.sleep(0.001)
        responder.start(204, [])
        responder.end()

    with listening(slow_reader) as listener, connected(listener) as sock:
        sock.sendall(b"POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % len(sent) + sent)
        assert statuses(sock) == [204]
    assert bytes(received) == sent
