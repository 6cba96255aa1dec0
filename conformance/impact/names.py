"""The vocabulary of impact, light enough for declaring the command line: the effects, the clients'
names and titles, and where clients are installed."""

from __future__ import annotations

from pathlib import Path

BREAKS, DEGRADES, UNAFFECTED, UNKNOWN = "breaks", "degrades", "unaffected", "unknown"
# Worst first: a case's effect on a client is the worst over its calls.
EFFECTS = (BREAKS, DEGRADES, UNKNOWN, UNAFFECTED)
# The clients (conformance.clients.versions names them the same), with the titles reports show.
CLIENT_TITLES = {"claude-code": "Claude Code", "python-sdk": "Python SDK", "typescript-sdk": "TypeScript SDK"}
DEFAULT_WORKDIR = Path(".clients")


def client_title(name: str) -> str:
    return CLIENT_TITLES.get(name, name)
