"""The proxy as a server: the relay on a local address, feeding a session, started and stopped as one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from conformance.model import RunReport
from conformance.proxy.defaults import DEFAULT_HEADER_TIMEOUT
from conformance.proxy.relay import Relay
from conformance.proxy.session import ProxySession
from conformance.reference.server import LOOPBACK, ReferenceServer
from conformance.transport import Limits

# uvicorn adds nothing to the relayed answers (no Server or Date header of its own), trusts no
# X-Forwarded-* header, and closes the upstream connections on shutdown (lifespan). Its own log is
# silenced: every exchange, failed ones included, is reported by the session.
UVICORN_OPTIONS = {
    "lifespan": "on",
    "server_header": False,
    "date_header": False,
    "proxy_headers": False,
    "log_level": "critical",
    "access_log": False,
}


def header_guarded(timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers take longer than `timeout`.

    uvicorn's own keep-alive timeout runs only between requests and is reset by every byte, so a
    client that connects and says nothing, or drips its headers a byte at a time, would hold a
    connection forever.
    """

    class HeaderGuarded(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:
                self._disarm()  # the headers are in

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return HeaderGuarded


class ProxyServer:
    """`with ProxyServer(upstream, session) as proxy:` relays `proxy.base_url` to `upstream`.

    On exit the server stops first, then the session judges what is left and writes its reports
    (`proxy.report` and `proxy.paths` hold the outcome).
    """

    def __init__(
        self,
        upstream: str,
        session: ProxySession,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        limits: Limits | None = None,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    ) -> None:
        limits = limits or session.limits
        self.session = session
        self.relay = Relay(
            upstream,
            session.submit,
            max_recorded_bytes=limits.max_body_bytes,
            connect_timeout=limits.connect_timeout,
            max_silence=limits.max_silence,
        )
        options = {**UVICORN_OPTIONS, "http": header_guarded(header_timeout)}
        self._server = ReferenceServer(self.relay, host=host, port=port, options=options)
        self.report: RunReport | None = None
        self.paths: dict[str, Path] = {}

    @property
    def base_url(self) -> str:
        return self._server.base_url

    def __enter__(self) -> ProxyServer:
        self.session.start()
        try:
            self._server.start()
        except BaseException:
            self.session.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.stop()
        self.report, self.paths = self.session.close()
