"""The impact command: read a report (report.json, its folder, or a cassette), compute impact and
write the reports again (report.json, junit.xml, report.html) with it. Declaring its flags imports
nothing heavy; running it does."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from conformance.impact.names import CLIENT_TITLES, DEFAULT_WORKDIR

if TYPE_CHECKING:
    from conformance.model import RunReport

DESCRIPTION = (
    "Replay every non-passing case's recorded answers from a loopback server to real clients (the official "
    "Python and TypeScript SDKs, and Claude Code for the streamed calls it makes; pinned, installed on demand "
    "into the clients cache) and record per case and client whether it breaks, degrades or is unaffected. "
    "The reports are written again with the impact (docs/how-to/impact.md)."
)
EPILOG = "Exit codes: 0 written, 2 usage error (bad flags, a missing or unreadable report)."


class ImpactUsageError(ValueError):
    """A report that cannot be read, named in one sentence."""


def client_names(value: str) -> list[str]:
    """An argparse type: comma-separated client names."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names or any(name not in CLIENT_TITLES for name in names):
        raise argparse.ArgumentTypeError(f"expected client names among {', '.join(CLIENT_TITLES)} (comma-separated)")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report", type=Path, help="report.json, its folder, or a cassette (folder or cassette.json)")
    parser.add_argument(
        "--clients",
        type=client_names,
        default=list(CLIENT_TITLES),
        metavar="LIST",
        help=f"comma-separated clients to replay to (default: {','.join(CLIENT_TITLES)})",
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="where to write the reports (default: the report's)")
    parser.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help="where clients are installed (default: %(default)s)"
    )


def read_input(location: Path) -> tuple[RunReport, Path]:
    """The report at `location` and its folder; a cassette becomes a report of its recorded cases."""
    from conformance.cassette import CASSETTE_FILE, CassetteError, load_cassette
    from conformance.model import CaseResult, RunReport
    from conformance.report import load_report

    path = location / "report.json" if location.is_dir() and (location / "report.json").is_file() else location
    if path.is_dir() or path.name == CASSETTE_FILE:
        try:
            cassette = load_cassette(path)
        except CassetteError as exc:
            raise ImpactUsageError(str(exc)) from None
        results = [
            CaseResult(id=c.id, feature=c.feature, outcome=c.outcome, exchanges=c.exchanges, tier=c.tier, title=c.title)
            for c in cassette.cases
        ]
        report = RunReport(cassette.target, cassette.started_at, cassette.finished_at, results, cassette.tool_version)
        return report, path if path.is_dir() else path.parent
    try:
        return load_report(path), path.parent
    except OSError as exc:
        raise ImpactUsageError(f"cannot read report {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ImpactUsageError(f"{path}: not a report ({type(exc).__name__}: {exc})") from None


def say(line: str) -> None:
    """Progress, on stderr."""
    print(line, file=sys.stderr, flush=True)


def impact_and_write(args: argparse.Namespace) -> list[str]:
    """Compute the impact of args.report, write the reports; the lines to print. ImpactUsageError when
    the report cannot be read."""
    from conformance.clients.versions import CLIENTS
    from conformance.impact.compute import compute_impact
    from conformance.impact.tally import summary_lines
    from conformance.report import write_reports

    report, folder = read_input(args.report)
    compute_impact(report, [CLIENTS[name] for name in args.clients], args.workdir, progress=say)
    paths = write_reports(report, args.out or folder)
    summary = summary_lines(report.results) or ["no case to replay: every case passed or was skipped"]
    return [*summary, f"Reports: {paths['html']}"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.impact", description=DESCRIPTION, epilog=EPILOG)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        lines = impact_and_write(args)
    except ImpactUsageError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0
