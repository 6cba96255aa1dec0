"""`conformance proxy`: validate a real client's traffic passively, and keep it as cases.

The relay (relay.py) sits between a client and a gateway and passes everything through
unchanged, streams included; each exchange is captured (recording.py), judged by the same pure
checks as a run (judging.py) on a worker thread, shown live and written to OUT/ as a normal run's
reports plus a cassette (session.py). `conformance cases from-capture` turns the recorded requests
into replayable cases (capture_cases.py). docs/how-to/proxy.md has the usage.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ProxyServer", "ProxySession"]


def __getattr__(name: str) -> Any:
    """ProxyServer and ProxySession, imported when first asked for: the command line imports this
    package to declare `conformance proxy`, which must not cost a server's imports."""
    if name == "ProxyServer":
        from conformance.proxy.server import ProxyServer

        return ProxyServer
    if name == "ProxySession":
        from conformance.proxy.session import ProxySession

        return ProxySession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
