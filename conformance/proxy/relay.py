"""The relay: the handler that forwards every request to the upstream unchanged and streams the
answer back as it arrives, while a Capture keeps a bounded copy of both.

Nothing is decoded, re-encoded or re-framed on the way: the body goes upstream as the client sent
it, the response bytes come back as the upstream sent them (compressed ones included), and every
header passes except the hop-by-hop ones, which belong to each connection. The only answer of the
relay's own is a 502 with an Anthropic error body when the upstream cannot be reached.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable

from conformance.proxy.defaults import PROXY_MAX_SILENCE
from conformance.proxy.listener import IncomingRequest, Responder
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

    async def aclose(self) -> None:
        """Close the upstream connections kept alive."""
        await self._client.aclose()

    async def __call__(self, request: IncomingRequest, responder: Responder) -> None:
        started = time.monotonic()
        capture = Capture(
            method=request.method,
            url=self.upstream + request.target,
            request_headers=list(request.headers),  # a copy: a chunked body's trailers are parsed into the list
            limit=self.max_recorded_bytes,
        )
        forwarded = [(n, v) for n, v in end_to_end(request.headers) if n != b"host"]
        body = _request_body(request, capture) if request.has_body else None
        try:
            await self._relay(request, forwarded, body, responder, capture, started)
        finally:
            capture.elapsed = time.monotonic() - started
            if self.sink is not None:
                self.sink(capture)

    async def _relay(
        self,
        request: IncomingRequest,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterator[bytes] | None,
        responder: Responder,
        capture: Capture,
        started: float,
    ) -> None:
        try:
            upstream: UpstreamResponse = await self._client.send(request.method, request.target, headers, body)
        except UpstreamError as exc:
            capture.error = f"the upstream could not be reached: {exc}"
            _unreachable(responder, capture.error)
            return
        try:
            capture.status = upstream.status
            capture.response_headers = list(upstream.headers)
            responder.start(upstream.status, end_to_end(upstream.headers))
            if not (upstream.ready or upstream.sized):
                # A stream's head goes out at once; an answer of stated length goes out with its first bytes.
                responder.flush()
            async for chunk in upstream.body():
                capture.take(chunk, time.monotonic() - started)
                if responder.gone:
                    capture.truncated = "the client disconnected before the response ended"
                    capture.client_left = True
                    return
                await responder.write(chunk)
            responder.end()
        except UpstreamError as exc:
            # Headers are out: the client sees the connection end early, as the upstream ended it.
            capture.truncated = f"the upstream connection broke while relaying: {exc}"
        finally:
            await upstream.aclose()


async def _request_body(request: IncomingRequest, capture: Capture) -> AsyncIterator[bytes]:
    """The client's body, passed upstream chunk by chunk as it arrives (a copy kept in the capture)."""
    async for chunk in request.body():
        capture.take_request(chunk)
        yield chunk


def _unreachable(responder: Responder, reason: str) -> None:
    error = {"type": "api_error", "message": f"conformance proxy: {reason}"}
    content = json.dumps({"type": "error", "error": error, "request_id": None}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    responder.start(UNREACHABLE_STATUS, headers)
    responder.write_now(content)
    responder.end()
