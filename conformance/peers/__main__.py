"""`python -m conformance.peers litellm`: run the suite against real peers (see docs/peers.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.cases import TIERS
from conformance.peers.harness import DEFAULT_OUT, DEFAULT_WORKDIR, PEERS, run_peer
from conformance.peers.process import PeerError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.peers",
        description="Install and start a real peer on loopback, run the suite against each of its routes, "
        "and write reports/peers/<route>/ with the servers' logs beside them.",
    )
    parser.add_argument("peer", choices=sorted(PEERS), help="which peer to run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report directory (default: %(default)s)")
    parser.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help="where peers are installed (default: %(default)s)"
    )
    parser.add_argument("--tier", choices=TIERS, default="extended", help="highest tier to run (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        reports = run_peer(args.peer, args.out, args.workdir, args.tier)
    except PeerError as exc:
        print(f"conformance peers: error: {exc}", file=sys.stderr)
        return 1
    for report in reports:
        summary = report.summary()
        counts = ", ".join(
            f"{summary[k]} {k}" for k in ("passed", "failed", "deviation", "unsupported", "skipped", "error")
        )
        print(f"{report.target.model} @ {report.target.base_url}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
