"""`conformance matrix`: the compatibility matrix of several runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from conformance.cli.common import EXIT_CODES_WRITE, EXIT_OK, UsageError, load_profile, load_report, print_lines

if TYPE_CHECKING:
    from conformance.cases import Case

DEFAULT_OUT = Path("reports/matrix")


# The one line `conformance --help` shows for this command.
HELP = "build the compatibility matrix (features and profiles x targets) from report.json files"


def register(commands: argparse._SubParsersAction) -> None:
    """Declare `matrix` and its flags."""
    matrix = commands.add_parser(
        "matrix",
        help=HELP,
        description="Build matrix.html (one self-contained page), matrix.md (for a GitHub step summary or a README) "
        "and matrix.json from the report.json of several runs. Each target is labelled by provider, model, base "
        "URL host and date (two runs that would get the same title are told apart by their file); each consumer "
        "profile gets a row.",
        epilog=EXIT_CODES_WRITE,
    )
    matrix.add_argument(
        "reports", nargs="+", type=Path, metavar="REPORT.json", help="report.json files, one per target"
    )
    matrix.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help="output directory (default: %(default)s)"
    )
    matrix.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help="profile rows to show (repeatable; a name or a .yaml file; default: every built-in profile)",
    )
    matrix.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="TEXT",
        help="name the columns, in the order of the reports (repeatable; one per report, or none)",
    )
    matrix.set_defaults(handler=handle)


def _check_inputs(reports: list[Path], labels: list[str]) -> None:
    """One label per report (or none), and no report given twice."""
    if labels and len(labels) != len(reports):
        raise UsageError(f"{len(labels)} --label for {len(reports)} reports: give one per report, or none")
    seen: dict[Path, Path] = {}
    for path in reports:
        key = path.resolve()
        if key in seen:
            raise UsageError(f"{path} is given twice (as {seen[key]} too): each report is one column")
        seen[key] = path


def handle(args: argparse.Namespace) -> int:
    from conformance.cases import CaseError, load_cases
    from conformance.consumers import ProfileError, load_profiles
    from conformance.report.matrix import build_matrix, write_matrix

    _check_inputs(args.reports, args.label)
    reports = [(str(path), load_report(path)) for path in args.reports]
    if args.profile:
        profiles = [load_profile(name) for name in args.profile]
    else:
        try:
            profiles = list(load_profiles().values())
        except ProfileError as exc:
            raise UsageError(str(exc)) from None
    try:
        catalogue: list[Case] | None = load_cases()
    except CaseError:
        catalogue = None  # profile cells then cannot say which cases a run left out
    matrix = build_matrix(reports, profiles, catalogue, out_dir=args.out, titles=args.label)
    paths = write_matrix(matrix, args.out)
    lines = [f"Matrix of {len(reports)} targets x {len(matrix.rows)} rows:"]
    lines += [f"  {kind:<5} {path}" for kind, path in paths.items()]
    print_lines(lines)
    return EXIT_OK
