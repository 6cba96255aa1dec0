"""`conformance recheck`: judge a recorded run again, offline."""

from __future__ import annotations

import argparse
from pathlib import Path

from conformance.cli.common import (
    EXIT_CODES_GATE,
    UsageError,
    add_gate_flags,
    imply_fail_on,
    judge_gate,
    load_baseline,
    load_catalogue,
    print_lines,
)

DEFAULT_OUT = Path("reports/recheck")


# The one line `conformance --help` shows for this command.
HELP = "judge a recorded run (a cassette from --record) again, offline"


def register(commands: argparse._SubParsersAction) -> None:
    """Declare `recheck` and its flags."""
    recheck = commands.add_parser(
        "recheck",
        help=HELP,
        description="Re-run every check on the exchanges recorded with `conformance run --record DIR`, with no "
        "network and no cost, and write report.json, junit.xml and report.html. Cases are loaded by id from the "
        "catalogue; a recorded case no longer in it (or whose requests changed) gets the contract checks only.",
        epilog=EXIT_CODES_GATE,
    )
    recheck.add_argument("cassette", type=Path, metavar="DIR", help="the directory given to --record")
    recheck.add_argument("--cases", type=Path, metavar="DIR", help="load cases from DIR (default: the built-in cases)")
    recheck.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help="report directory (default: %(default)s)"
    )
    recheck.add_argument("-v", "--verbose", action="store_true", help="print every finding")
    add_gate_flags(recheck.add_argument_group("CI gate"))
    recheck.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from conformance.cassette import CassetteError, load_cassette, recheck
    from conformance.report import write_reports
    from conformance.report.console import ConsoleReporter
    from conformance.specs.profiles import ProfileError, load_profile

    imply_fail_on(args)
    try:
        cassette = load_cassette(args.cassette)
    except CassetteError as exc:
        raise UsageError(str(exc)) from None
    catalogue = load_catalogue(args.cases)
    baseline = load_baseline(args.baseline)
    try:
        provider = load_profile(cassette.target.provider)
    except ProfileError as exc:
        provider = None
        print_lines([f"warning: {exc}: judged against the canonical contract, without documented deviations"])
    rechecked = recheck(cassette, catalogue, provider)
    report = rechecked.report
    reporter = ConsoleReporter(verbose=args.verbose)
    reporter.start(report.target, len(report.results))
    for result in report.results:
        reporter.case_done(result)
    paths = write_reports(report, args.out)
    verdict, code = judge_gate(args, report, baseline)
    reporter.finish(report, paths, gate_follows=bool(verdict))
    lines = ["", f"Recheck of {args.cassette} (recorded {cassette.started_at or 'at an unknown time'}), offline:"]
    same = len(report.results) - len(rechecked.changed)
    lines.append(f"  {same} of {len(report.results)} outcomes as recorded")
    if rechecked.changed:
        lines.append(f"  {len(rechecked.changed)} changed with the current checks and cases:")
        lines += [f"    {case_id}: {before.value} -> {after.value}" for case_id, before, after in rechecked.changed]
    if rechecked.contract_only:
        lines.append(f"  {len(rechecked.contract_only)} judged by the contract checks only:")
        lines += [f"    {case_id}: {why}" for case_id, why in sorted(rechecked.contract_only.items())]
    print_lines([*lines, *verdict])
    return code
