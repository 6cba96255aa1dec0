"""The proxy as a server: the relay on a local address, feeding a session, started and stopped as one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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


# The most a request's line and headers may amount to while they are still arriving. llhttp sets no
# bound of its own; this is h11's, which the proxy had when it parsed with h11.
MAX_HEAD_BYTES = 16 * 1024


UPGRADE_REFUSED = "conformance proxy: no protocol upgrade is relayed; send the request without Upgrade"


def header_guarded(timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, closing a connection whose request headers take longer than `timeout`
    and answering 400 to request headers past `MAX_HEAD_BYTES`.

    uvicorn's own keep-alive timeout runs only between requests and is reset by every byte, so a
    client that connects and says nothing, or drips its headers a byte at a time, would hold a
    connection forever; and httptools keeps every header byte until the headers end, so a client
    that sends headers without end would fill the memory.
    """

    class HeaderGuarded(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _in_head = False  # from a request's first byte to the end of its headers
        _in_body = False  # from the end of a request's headers to the end of its body
        _heads = 0  # requests whose headers have ended on this connection
        _head_bytes = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            heads, in_body = self._heads, self._in_body
            super().data_received(data)
            # Only a chunk that began outside a body and ended no headers is all head bytes; the one
            # that began a request after a body is not counted, so the bound can be passed by one chunk.
            if self._in_head and self._heads == heads and not in_body:
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                    self.send_400_response("Request headers too large.")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._head_bytes = True, 0

        def on_headers_complete(self) -> None:
            self._disarm()  # the headers are in
            if self.parser.should_upgrade():
                # The proxy switches to no other protocol (websocket, h2c), and httptools stops reading at an
                # upgrade: the request's body and any request after it would never be read. Refused, closed.
                self.send_400_response(UPGRADE_REFUSED)
                return
            self._in_head, self._in_body = False, True
            self._heads += 1
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_body = False
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._idle() and not self.transport.is_closing():
                self._arm()

        def _idle(self) -> bool:
            """No request in progress: none has come, or the last whose headers came (pipelined ones
            wait behind the one answered) has been answered."""
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if self._idle() and not self.transport.is_closing():
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
