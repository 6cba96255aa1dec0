"""Every hostile target of tests/hostile_targets.py against `conformance run`, one subprocess run each.

Prints, per misbehaviour: the exit code, wall seconds, peak RSS, the size of report.json, how many
outputs hold the run's API key (a random canary) and what else went wrong (tests/test_hostile.py
fails on the same list); then the totals.

    python benchmarks/hostile.py [--jobs 1] [--only NAME,NAME] [--keep DIR] [--list]

Runs one at a time by default, so that the wall times and memory are each run's own; `--jobs N`
overlaps them (most of a hostile run is waiting for a silence, a drip or a timeout to end).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.hostile_targets: the catalogue, and how a target is played

from conformance.reference import ReferenceServer  # noqa: E402
from tests.hostile import HostileServer  # noqa: E402
from tests.hostile_targets import BY_NAME, CATALOGUE, Played, answers, new_canary, play_all, problems  # noqa: E402

COLUMNS = ("misbehaviour", "exit", "wall s", "peak RSS MB", "report.json KB", "canary hits", "problems")


def row(name: str, played: Played, canary: str) -> list[str]:
    found = problems(played, [canary], must_pass=BY_NAME[name].legal)
    return [
        name,
        "hung" if played.exit_code is None else str(played.exit_code),
        f"{played.wall:.1f}",
        f"{played.peak_rss_mb:.0f}",
        f"{played.report_bytes / 1024:.0f}",
        str(len(played.hits(canary))),
        "; ".join(found) or "-",
    ]


def table(rows: list[list[str]]) -> str:
    """Aligned columns: the name left, the figures right, the problems as they come."""
    lines = [list(COLUMNS), *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS) - 1)]
    return "\n".join(
        "  ".join([line[0].ljust(widths[0]), *(line[i].rjust(widths[i]) for i in range(1, len(widths))), line[-1]])
        for line in lines
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (default: %(default)s)")
    parser.add_argument("--only", help="comma-separated misbehaviours (default: all)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep every run's reports in DIR/NAME")
    parser.add_argument("--list", action="store_true", help="list the misbehaviours and what each does, then exit")
    args = parser.parse_args()
    if args.list:
        width = max(len(m.name) for m in CATALOGUE)
        print(
            "\n".join(f"{m.name.ljust(width)}  {m.what}{' (legal: must pass)' if m.legal else ''}" for m in CATALOGUE)
        )
        return 0
    names = [name.strip() for name in args.only.split(",")] if args.only else [m.name for m in CATALOGUE]
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown misbehaviour(s): {', '.join(unknown)}")
    canary = new_canary()
    with tempfile.TemporaryDirectory(prefix="hostile-") as scratch:
        work = args.keep or Path(scratch)
        started = time.monotonic()
        with ReferenceServer(api_key=canary) as reference, HostileServer(answers(reference.base_url)) as server:
            played = play_all([BY_NAME[name] for name in names], server.url, canary, work, jobs=args.jobs)
        elapsed = time.monotonic() - started
        rows = [row(name, run, canary) for name, run in played.items()]
        largest_report = max(run.report_bytes for run in played.values())
    runs = list(played.values())
    held = sum(1 for line in rows if line[-1] == "-")
    print(table(rows))
    print()
    print(
        f"total: {len(runs)} misbehaviours in {elapsed:.1f} s ({args.jobs} at a time), "
        f"{sum(run.wall for run in runs):.1f} s of runs; "
        f"peak RSS max {max(run.peak_rss_mb for run in runs):.0f} MB; "
        f"report.json max {largest_report / 1024:.0f} KB; "
        f"canary hits {sum(int(line[5]) for line in rows)}; "
        f"{held} held up, {len(runs) - held} with problems"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
