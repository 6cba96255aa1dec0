"""Peers stay on loopback: Portkey's gateway has no host option, so a preload holds every listen()
of its Node process on 127.0.0.1, and the harness stops any peer found listening beyond loopback."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

from conformance.peers.portkey import write_preload
from conformance.peers.process import (
    LOOPBACK_HEX,
    LoopbackServer,
    PeerError,
    ensure_loopback_only,
    free_port,
    listening_addresses,
)

needs_proc = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="no /proc/net/tcp on this system")


def node() -> str:
    executable = shutil.which("node")
    if executable is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("node is required in CI")
        pytest.skip("no node found")
    return executable


class NodeServer(LoopbackServer):
    """A Node HTTP server that asks to listen as `listen_args` says (a port, maybe a host), preloaded."""

    startup_timeout = 30.0

    def __init__(self, tmp_path: Path, listen_args: str) -> None:
        port = free_port()
        script = f"require('http').createServer((q, s) => s.end('ok')).listen({listen_args.format(port=port)});"
        argv = [node(), "-r", str(write_preload(tmp_path)), "-e", script]
        super().__init__("node", argv, tmp_path / "node.log", port)


@needs_proc
@pytest.mark.parametrize(
    "listen_args",
    [
        "{port}",
        "'{port}'",
        "{port}, '0.0.0.0'",
        "{port}, '::'",
        "{{port: {port}}}",
        "{{port: {port}, host: '0.0.0.0'}}",
    ],
    ids=["port", "port-as-string", "all-ipv4", "all-ipv6", "options", "options-all-ipv4"],
)
def test_the_preload_holds_a_node_server_on_loopback(tmp_path: Path, listen_args: str) -> None:
    with NodeServer(tmp_path, listen_args) as server:
        assert listening_addresses(server.port) == {"0100007F"}


@needs_proc
def test_a_server_listening_on_every_interface_is_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert listening_addresses(port) - LOOPBACK_HEX == {"00000000"}
        with pytest.raises(PeerError, match="beyond loopback"):
            ensure_loopback_only(port)


@needs_proc
def test_a_peer_found_beyond_loopback_is_stopped(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "0.0.0.0", str(port)]
    server = LoopbackServer("exposed", argv, tmp_path / "exposed.log", port)
    with pytest.raises(PeerError, match="beyond loopback"):
        server.start()
    assert server.process is None
    assert listening_addresses(port) == set()
