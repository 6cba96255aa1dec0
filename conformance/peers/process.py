"""Starting and stopping a peer server: its own session (process group), a log file, readiness.

Peers are started with setsid and stopped by process group, so that whatever a server spawns
(workers, engines) goes down with it, and a crash at start-up is reported with its log's tail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from conformance.listening import LOOPBACK

# Longest an install step (npm, pip) may take.
INSTALL_TIMEOUT = 600.0


class PeerError(RuntimeError):
    """A peer that could not be installed, started or reached; the message says why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ManagedProcess:
    """A server process in its own session, logging to a file; a context manager that stops it."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            try:
                self.process = subprocess.Popen(
                    self.argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise PeerError(f"could not start {self.name} ({self.argv[0]}): {exc}") from None
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def wait_ready(self, url: str, timeout: float) -> None:
        """Poll `url` until it answers at all (any HTTP status); fail fast if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = self.process.returncode if self.process else None
                raise PeerError(f"{self.name} exited with code {code} while starting:\n{log_tail(self.log_path)}")
            try:
                httpx.get(url, timeout=2.0, trust_env=False)
                return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise PeerError(f"{self.name} did not answer at {url} within {timeout:g} s:\n{log_tail(self.log_path)}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the whole process group, then SIGKILL after `grace` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LoopbackServer(ManagedProcess):
    """A server on a free loopback port (`self.port`, chosen before the command line is built),
    ready once `ready_path` answers."""

    ready_path = "/"
    startup_timeout = 60.0

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, port: int, **kwargs: Any) -> None:
        self.port = port
        super().__init__(name, argv, log_path, **kwargs)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> LoopbackServer:
        super().start()
        try:
            self.wait_ready(self.base_url + self.ready_path, self.startup_timeout)
            ensure_loopback_only(self.port)
        except PeerError:
            self.stop()
            raise
        return self


# /proc/net/tcp{,6} rows: "sl local_address rem_address st ..."; state 0A is LISTEN, addresses are
# little-endian hex. 127.0.0.1 is 0100007F; ::1 and ::ffff:127.0.0.1 are loopback too.
LISTEN_STATE = "0A"
LOOPBACK_HEX = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net shows them) that listen on TCP `port`."""
    found: set[str] = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        try:
            rows = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == LISTEN_STATE and int(hex_port, 16) == port:
                found.add(address)
    return found


def ensure_loopback_only(port: int) -> None:
    """Refuse a peer that listens on `port` on any interface but loopback (some peers have no host
    option); a no-op where /proc/net cannot be read."""
    exposed = listening_addresses(port) - LOOPBACK_HEX
    if exposed:
        raise PeerError(f"port {port} listens beyond loopback ({', '.join(sorted(exposed))}); stopped it")


def ensure_venv(venv: Path, requirement: str, log_path: Path, remove: Sequence[str] = ()) -> Path:
    """A virtualenv holding `requirement` (installed once; a marker file records what is there),
    less the packages in `remove`. Returns the virtualenv's python."""
    python = venv / "bin" / "python"
    marker = venv / "conformance-installed.txt"
    if python.exists() and marker.exists() and marker.read_text().strip() == requirement:
        return python
    log_path.parent.mkdir(parents=True, exist_ok=True)
    steps = [[sys.executable, "-m", "venv", str(venv)], [str(python), "-m", "pip", "install", "--quiet", requirement]]
    if remove:
        steps.append([str(python), "-m", "pip", "uninstall", "--yes", "--quiet", *remove])
    with log_path.open("wb") as log:
        for argv in steps:
            if subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False).returncode != 0:
                raise PeerError(f"could not install {requirement} into {venv}:\n{log_tail(log_path)}")
    marker.write_text(requirement + "\n")
    return python


def node_executable() -> str:
    """The `node` on PATH (the Node peers, the clients job)."""
    executable = shutil.which("node")
    if executable is None:
        raise PeerError("Node.js is needed here: node must be on PATH")
    return executable


def npm_executable() -> str:
    """The `npm` on PATH."""
    executable = shutil.which("npm")
    if executable is None:
        raise PeerError("npm is needed here: install Node.js (with npm)")
    return executable


def run_logged(argv: list[str], log_path: Path, what: str, cwd: Path | None = None) -> None:
    """Run an install step with its output appended to `log_path`; PeerError with the log's tail when it fails."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        try:
            code = subprocess.run(
                argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, timeout=INSTALL_TIMEOUT, check=False
            ).returncode
        except subprocess.TimeoutExpired:
            code = None
    if code != 0:
        raise PeerError(f"could not {what}:\n{log_tail(log_path)}")


def installed_version(package_dir: Path) -> str | None:
    """The version in an npm package's package.json (None when there is none)."""
    try:
        return json.loads((package_dir / "package.json").read_text()).get("version")
    except (OSError, ValueError):
        return None


def npm_install(prefix: Path, package: str, version: str, log_path: Path, *, run_scripts: bool = True) -> Path:
    """node_modules/<package> at exactly `version` under `prefix`, installed when not already there (without its
    install scripts unless `run_scripts`)."""
    package_dir = prefix / "node_modules" / package
    if installed_version(package_dir) != version:
        prefix.mkdir(parents=True, exist_ok=True)
        argv = [npm_executable(), "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error"]
        if not run_scripts:
            argv.append("--ignore-scripts")
        run_logged([*argv, f"{package}@{version}"], log_path, f"install {package}@{version} with npm")
    if installed_version(package_dir) != version:
        raise PeerError(f"npm did not install {package}@{version} into {prefix}")
    return package_dir
