"""`conformance baseline write`: an expectation file from a report, for gating on regressions only."""

from __future__ import annotations

import argparse
from pathlib import Path

from conformance.cli.common import EXIT_CODES_WRITE, EXIT_OK, UsageError, load_report, print_lines

# The one line `conformance --help` shows for this command.
HELP = "write CI baselines (expectation files) from a report"


def register(commands: argparse._SubParsersAction) -> None:
    """Declare `baseline` and its actions."""
    from conformance.baseline import DEFAULT_FAIL_ON, FAIL_ON_CHOICES

    baseline = commands.add_parser(
        "baseline",
        help=HELP,
        description="Manage baselines: expectation files that let CI gate on regressions only.",
    )
    actions = baseline.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    write = actions.add_parser(
        "write",
        help="record a report's non-passing cases, with their reasons, as a baseline",
        description="Record every case of a report that did not pass (failed, error, deviation, unsupported; "
        "warning too for a gate that fails on warnings), with its outcome and reason, as a YAML baseline for "
        "`conformance run --baseline FILE`.",
        epilog=EXIT_CODES_WRITE,
    )
    write.add_argument("report", type=Path, metavar="REPORT.json", help="the run to take the baseline from")
    write.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="baseline file to write")
    write.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        default=DEFAULT_FAIL_ON,
        help="the --fail-on of the gate the baseline is for: with warning, the warning cases are recorded too "
        "(default: %(default)s)",
    )
    write.set_defaults(handler=handle_write)


def handle_write(args: argparse.Namespace) -> int:
    from conformance.baseline import Baseline, write_baseline

    baseline = Baseline.from_results(load_report(args.report), fail_on=args.fail_on)
    try:
        path = write_baseline(baseline, args.output)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    counts: dict[str, int] = {}
    for expectation in baseline.expectations.values():
        counts[expectation.outcome.value] = counts.get(expectation.outcome.value, 0) + 1
    detail = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "every case passed"
    print_lines([f"Baseline of {len(baseline.expectations)} non-passing cases ({detail}) written to {path}"])
    return EXIT_OK
