"""Which client versions the job runs: the pinned ones, or with --latest the newest published,
asked of the registry through its ordinary client (`npm view`, `pip index versions`)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

from conformance.peers.process import PeerError, npm_executable

NPM = "npm"
PYPI = "pypi"


@dataclass(frozen=True)
class Client:
    """A client the job installs: its name in the job, its package, the registry and the pinned version."""

    name: str
    package: str
    registry: str
    pinned: str


CLAUDE_CODE = Client("claude-code", "@anthropic-ai/claude-code", NPM, "2.1.337")
TYPESCRIPT_SDK = Client("typescript-sdk", "@anthropic-ai/sdk", NPM, "1.17.0")
PYTHON_SDK = Client("python-sdk", "anthropic", PYPI, "2.17.0")
CLIENTS = {client.name: client for client in (CLAUDE_CODE, TYPESCRIPT_SDK, PYTHON_SDK)}

_PIP_LATEST = re.compile(r"^\S+ \(([^)\s]+)\)", re.MULTILINE)
_VERSION = re.compile(r"^[0-9][0-9A-Za-z.+-]*$")


def latest_version(client: Client) -> str:
    """The newest version the client's registry publishes."""
    if client.registry == NPM:
        argv = [npm_executable(), "view", client.package, "version"]
    else:
        argv = [sys.executable, "-m", "pip", "index", "versions", client.package]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    version = parse_latest(client, done.stdout) if done.returncode == 0 else None
    if version is None:
        why = (done.stderr.strip().splitlines() or ["no version in its answer"])[-1]
        raise PeerError(f"could not ask the {client.registry} registry for {client.package}'s latest version: {why}")
    return version


def parse_latest(client: Client, answer: str) -> str | None:
    """The version in `npm view PKG version` ("1.2.3") or `pip index versions PKG` ("PKG (1.2.3)") output."""
    if client.registry == NPM:
        version = answer.strip()
    else:
        found = _PIP_LATEST.search(answer)
        version = found.group(1) if found else ""
    return version if _VERSION.match(version) else None


def resolve_versions(clients: list[Client], latest: bool) -> dict[str, str]:
    """The version to run of each client: pinned, or the newest published."""
    return {client.name: latest_version(client) if latest else client.pinned for client in clients}
