"""Where the tool's own servers listen (the reference server, the proxy): loopback unless told
otherwise, on a socket bound before the server starts, so that a port in use is an OSError at once."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host`:`port` (0: a free port), not yet listening."""
    # IPPROTO_TCP (not 0) so that asyncio sets TCP_NODELAY on accepted connections.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
