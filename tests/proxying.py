"""What the proxy tests share: taps that record the exact bytes on each side of the proxy, and a
proxy in front of an upstream app for the length of a `with` block."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformance.model import RunReport
from conformance.proxy import ProxyServer, ProxySession
from conformance.reference import ReferenceServer
from conformance.transport import Limits

# Ids the reference server draws per request: equal bytes but for these is an equal answer.
RANDOM_IDS = re.compile(rb"(msg|req|toolu)_[A-Za-z0-9]{24}")


class UpstreamTap:
    """Wraps an ASGI app; `sent[i]` is the body bytes it sent for the i-th request, as it sent them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.sent: list[bytearray] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        self.sent.append(body)

        async def tee(message: Message) -> None:
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, tee)


class ClientTap(httpx2.HTTPTransport):
    """A transport for the anthropic SDK's HTTP client (httpx2) that keeps the raw bytes of every
    response, before any decoding."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[bytearray] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = super().handle_request(request)
        body = bytearray()
        self.received.append(body)
        response.stream = _Tee(response.stream, body)  # type: ignore[arg-type]
        return response


class _Tee(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, sink: bytearray) -> None:
        self.inner, self.sink = inner, sink

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.sink.extend(chunk)
            yield chunk

    def close(self) -> None:
        self.inner.close()


class Proxied:
    """A proxy in front of an upstream; `report` is set once the block exits."""

    def __init__(self, proxy: ProxyServer) -> None:
        self.proxy = proxy

    @property
    def base_url(self) -> str:
        return self.proxy.base_url

    @property
    def report(self) -> RunReport:
        assert self.proxy.report is not None, "the report exists once the proxy stopped"
        return self.proxy.report


@contextmanager
def proxied(upstream: str, out: Path, limits: Limits | None = None, provider: str = "anthropic") -> Iterator[Proxied]:
    """A proxy to `upstream` writing to `out`, stopped (and its session closed) on exit."""
    session = ProxySession(upstream, out, provider=provider, limits=limits)
    with ProxyServer(upstream, session) as proxy:
        yield Proxied(proxy)


@contextmanager
def upstream_and_proxy(app: ASGIApp, out: Path, limits: Limits | None = None) -> Iterator[tuple[str, Proxied]]:
    """`app` served on loopback with a proxy in front of it: (the app's base URL, the proxy)."""
    with ReferenceServer(app=app) as server, proxied(server.base_url, out, limits) as proxy:
        yield server.base_url, proxy
