"""conftest.py for a gateway's own repository: the Anthropic Messages conformance cases run next to
the gateway's own tests, against a gateway this file starts (or one given with --base-url).

    pip install conformance
    pytest --conformance                                    # own tests + every case
    pytest --conformance -m tier_smoke                      # own tests + the smoke cases
    pytest --conformance --profile claude-code --baseline conformance-baseline.yaml
    pytest --conformance --base-url https://staging.example.com --api-key "$STAGING_KEY"
    pytest --conformance -n 4                               # pytest-xdist: each worker starts a gateway

Adapt GATEWAY_COMMAND (or set $GATEWAY_COMMAND) to the way this repository starts its gateway;
"{port}" is replaced by a free loopback port. Without --conformance this file does nothing.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time

import pytest

GATEWAY_COMMAND = os.environ.get("GATEWAY_COMMAND", "python -m my_gateway --host 127.0.0.1 --port {port}")
GATEWAY_API_KEY = os.environ.get("GATEWAY_API_KEY", "conformance-test-key")
START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise pytest.UsageError(f"the gateway exited with {process.returncode}: {GATEWAY_COMMAND}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise pytest.UsageError(f"the gateway did not listen on port {port} within {START_TIMEOUT:g} s")


def pytest_configure(config: pytest.Config) -> None:
    """Start the gateway for this test process, unless the run targets one already running."""
    if not config.getoption("conformance", default=False) or config.getoption("conformance_base_url"):
        return
    if config.getoption("dist", default="no") != "no" and not hasattr(config, "workerinput"):
        return  # the pytest-xdist controller runs no test: only its workers need a gateway
    port = _free_port()
    command = [part.format(port=port) for part in shlex.split(GATEWAY_COMMAND)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    config.add_cleanup(stop)
    _wait_for(port, process)
    # What `--base-url` and `--api-key` would set: the plugin reads them when the first case runs.
    config.option.conformance_base_url = f"http://127.0.0.1:{port}"
    config.option.api_key = config.option.api_key or GATEWAY_API_KEY
