"""`python -m conformance.peers litellm|vllm|portkey|ccr`: run the suite against real peers
(see docs/background/peers.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.baseline import describe_gate
from conformance.cases import TIERS
from conformance.peers.harness import DEFAULT_OUT, DEFAULT_WORKDIR, PEERS, run_peer
from conformance.peers.process import PeerError

SUMMARY_KEYS = ("passed", "warning", "failed", "deviation", "unsupported", "skipped", "error")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.peers",
        description="Install and start a real peer on loopback, run the suite against each of its routes, "
        "write reports/peers/<route>/ with the servers' logs beside them, gate each route on its "
        "baseline (reports/peers/<route>/baseline.yaml) and rebuild reports/peers/matrix.{html,md,json}.",
        epilog="Exit codes: 0 no route got worse than its baseline, 1 some route did (or the peer could "
        "not be installed or started), 2 usage error.",
    )
    parser.add_argument("peer", choices=sorted(PEERS), help="which peer to run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report directory (default: %(default)s)")
    parser.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help="where peers are installed (default: %(default)s)"
    )
    parser.add_argument(
        "--tier",
        choices=TIERS,
        default="provider",
        help="highest tier to run (default: %(default)s: everything, the client case sets included)",
    )
    parser.add_argument(
        "--update-baselines",
        action="store_true",
        help="rewrite each route's baseline from this run (after reading the differences it accepts)",
    )
    args = parser.parse_args(argv)
    try:
        results = run_peer(args.peer, args.out, args.workdir, args.tier, args.update_baselines)
    except PeerError as exc:
        print(f"conformance peers: error: {exc}", file=sys.stderr)
        return 1
    for result in results:
        summary = result.report.summary()
        counts = ", ".join(f"{summary[key]} {key}" for key in SUMMARY_KEYS)
        print(f"\n{result.route} ({result.report.target.model} @ {result.report.target.base_url}): {counts}")
        print("\n".join(describe_gate(result.gate, result.baseline)))
    print(f"\nMatrix: {args.out / 'matrix.html'}")
    return 0 if all(result.gate.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
