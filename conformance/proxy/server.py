"""The proxy as a server: the relay on a local address, feeding a session, started and stopped as one."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from conformance.listening import LOOPBACK
from conformance.model import RunReport
from conformance.proxy.defaults import DEFAULT_HEADER_TIMEOUT
from conformance.proxy.listener import Listener
from conformance.proxy.relay import Relay
from conformance.proxy.session import ProxySession
from conformance.transport import Limits


class ProxyServer:
    """`with ProxyServer(upstream, session) as proxy:` relays `proxy.base_url` to `upstream`.

    On exit the server stops first (the requests in progress finish, the upstream connections are
    closed), then the session judges what is left and writes its reports (`proxy.report` and
    `proxy.paths` hold the outcome).
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
        self._listener = Listener(
            self.relay, host=host, port=port, header_timeout=header_timeout, on_stop=self.relay.aclose
        )
        self.report: RunReport | None = None
        self.paths: dict[str, Path] = {}

    @property
    def base_url(self) -> str:
        return self._listener.base_url

    def __enter__(self) -> ProxyServer:
        self.session.start()
        try:
            self._listener.start()
        except BaseException:
            self.session.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._listener.stop()
        self.report, self.paths = self.session.close()
