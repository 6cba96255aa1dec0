"""The relay: an ASGI app that forwards every request to the upstream unchanged and streams the
answer back chunk by chunk as it arrives, while a Capture keeps a bounded copy of both.

Nothing is decoded, re-encoded or re-framed on the way: the body goes upstream as the client sent
it, the response bytes come back as the upstream sent them (compressed ones included), and every
header passes except the hop-by-hop ones, which belong to each connection. The only answer of the
relay's own is a 502 with an Anthropic error body when the upstream cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable

from starlette.types import Message, Receive, Scope, Send

from conformance.proxy.defaults import PROXY_MAX_SILENCE
from conformance.proxy.recording import Capture
from conformance.proxy.upstream import Upstream, UpstreamError, UpstreamResponse

# RFC 9110 section 7.6.1, plus the non-standard ones still seen in the wild. `host` is the relay's own.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
UNREACHABLE_STATUS = 502

CaptureSink = Callable[[Capture], None]


def end_to_end(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers without the hop-by-hop ones (those named by Connection included), in order."""
    lowered = [(name.lower(), name, value) for name, value in headers]
    dropped = HOP_BY_HOP
    named = [value for lower, _, value in lowered if lower == b"connection"]
    if named:
        dropped = dropped | {token.strip().lower() for value in named for token in value.split(b",") if token.strip()}
    return [(name, value) for lower, name, value in lowered if lower not in dropped]


class Relay:
    """Forwards to `upstream` (a base URL; the request's path and query are appended to its path).

    Each finished exchange goes to `sink` as a Capture (None: nothing is recorded). `sink` must not
    block: it is called on the event loop that relays every other request too.
    """

    def __init__(
        self,
        upstream: str,
        sink: CaptureSink | None,
        *,
        max_recorded_bytes: int,
        connect_timeout: float = 10.0,
        max_silence: float = PROXY_MAX_SILENCE,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.sink = sink
        self.max_recorded_bytes = max_recorded_bytes
        self._client = Upstream(self.upstream, connect_timeout=connect_timeout, max_silence=max_silence)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """The server's start and stop: the upstream connections are closed on the way out."""
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    def target(scope: Scope) -> str:
        """The request's path and query, as the client sent them."""
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        return path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets are not part of the Messages API
        started = time.monotonic()
        headers = [(bytes(name), bytes(value)) for name, value in scope["headers"]]
        target = self.target(scope)
        capture = Capture(
            method=scope["method"],
            url=self.upstream + target,
            request_headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers],
            limit=self.max_recorded_bytes,
        )
        forwarded = [(n, v) for n, v in end_to_end(headers) if n.lower() != b"host"]
        has_body = any(n.lower() in (b"content-length", b"transfer-encoding") for n, _ in headers)
        body_done = asyncio.Event()
        body = _request_body(receive, capture, body_done) if has_body else None
        if not has_body:
            body_done.set()
        try:
            await self._relay(scope["method"], target, forwarded, body, receive, send, capture, body_done, started)
        finally:
            capture.elapsed = time.monotonic() - started
            if self.sink is not None:
                self.sink(capture)

    async def _relay(
        self,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterator[bytes] | None,
        receive: Receive,
        send: Send,
        capture: Capture,
        body_done: asyncio.Event,
        started: float,
    ) -> None:
        try:
            upstream: UpstreamResponse = await self._client.send(method, target, headers, body)
        except UpstreamError as exc:
            capture.error = f"the upstream could not be reached: {exc}"
            await _unreachable(send, capture.error)
            return
        # Watched for from the answer's second chunk on: an answer that comes in one needs no watch (nor its task).
        disconnected: asyncio.Future[None] | None = None
        first = True
        try:
            capture.status = upstream.status
            capture.response_headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in upstream.headers]
            answer_headers = end_to_end(upstream.headers)
            await send({"type": "http.response.start", "status": upstream.status, "headers": answer_headers})
            async for chunk in upstream.body():
                capture.take(chunk, time.monotonic() - started)
                if first:
                    first = False
                elif disconnected is None:
                    disconnected = asyncio.ensure_future(_disconnect(receive, body_done))
                elif disconnected.done():
                    capture.truncated = "the client disconnected before the response ended"
                    capture.client_left = True
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except UpstreamError as exc:
            # Headers are out: the client sees the connection end early, as the upstream ended it.
            capture.truncated = f"the upstream connection broke while relaying: {exc}"
        finally:
            if disconnected is not None:
                disconnected.cancel()
            await upstream.aclose()


async def _request_body(receive: Receive, capture: Capture, done: asyncio.Event) -> AsyncIterator[bytes]:
    """The client's body, passed upstream chunk by chunk as it arrives (a copy kept in the capture)."""
    try:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away mid-body
            chunk = message.get("body", b"")
            capture.take_request(chunk)
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
    finally:
        done.set()


async def _disconnect(receive: Receive, body_done: asyncio.Event) -> None:
    """Returns when the client disconnects (only listened for once its body has been read)."""
    await body_done.wait()
    while (await receive())["type"] != "http.disconnect":
        pass


async def _unreachable(send: Send, reason: str) -> None:
    error = {"type": "api_error", "message": f"conformance proxy: {reason}"}
    content = json.dumps({"type": "error", "error": error, "request_id": None}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    with contextlib.suppress(OSError):
        await send({"type": "http.response.start", "status": UNREACHABLE_STATUS, "headers": headers})
        await send({"type": "http.response.body", "body": content})
