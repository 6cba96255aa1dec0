"""`python -m conformance.clients [--latest]`: real clients through the proxy into the reference server
(see docs/background/clients.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.clients.job import DEFAULT_OUT, run_job
from conformance.clients.table import problem_lines, table_lines
from conformance.clients.versions import CLIENTS, resolve_versions
from conformance.impact.names import DEFAULT_WORKDIR
from conformance.peers.process import PeerError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.clients",
        description="Install the current Claude Code and the official TypeScript and Python SDKs (pinned) into "
        "a cache folder, start `conformance serve` and `conformance proxy` in front of it on loopback, drive "
        "every client's scenarios through the proxy, and print one row per scenario. Reports (the proxy's, per "
        "client) and the clients' output go to OUT/<client>/.",
        epilog="Exit codes: 0 every scenario passed; 1 some client errored, the reference server refused "
        "something (4xx/5xx), a check failed, or a client could not be installed or started; 2 usage error.",
    )
    parser.add_argument(
        "--latest",
        action="store_true",
        help="run the newest published version of each client instead of the pinned one",
    )
    parser.add_argument(
        "--client",
        action="append",
        choices=sorted(CLIENTS),
        help="run only this client (repeatable; default: all of them)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report directory (default: %(default)s)")
    parser.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help="where clients are installed (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    clients = [CLIENTS[name] for name in (args.client or CLIENTS)]
    try:
        versions = resolve_versions(clients, args.latest)
        outcomes = run_job(clients, versions, args.out, args.workdir, progress=lambda line: print(line, flush=True))
    except PeerError as exc:
        print(f"conformance clients: error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(table_lines(outcomes)))
    problems = problem_lines(outcomes)
    if problems:
        print(f"\n{len(problems)} problems:")
        print("\n".join(problems))
    print(f"\nReports: {args.out}/<client>/report.html")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
