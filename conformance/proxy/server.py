"""The proxy as a server: the relay on a local address, feeding a session, started and stopped as one."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from conformance.model import RunReport
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


class ProxyServer:
    """`with ProxyServer(upstream, session) as proxy:` relays `proxy.base_url` to `upstream`.

    On exit the server stops first, then the session judges what is left and writes its reports
    (`proxy.report` and `proxy.paths` hold the outcome).
    """

    def __init__(
        self, upstream: str, session: ProxySession, *, host: str = LOOPBACK, port: int = 0, limits: Limits | None = None
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
        self._server = ReferenceServer(self.relay, host=host, port=port, options=UVICORN_OPTIONS)
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
