"""`conformance impact`: which real client breaks on each difference a report found."""

from __future__ import annotations

import argparse

from conformance.cli.common import EXIT_CODES_WRITE, UsageError, print_lines

# The one line `conformance --help` shows for this command.
HELP = "replay a report's failing answers to real clients: which break, which degrade"


def register(commands: argparse._SubParsersAction) -> None:
    """Declare `impact` and its flags."""
    from conformance.impact.command import DESCRIPTION, add_arguments

    impact = commands.add_parser(
        "impact",
        help=HELP,
        description=DESCRIPTION,
        epilog=EXIT_CODES_WRITE,
    )
    add_arguments(impact)
    impact.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from conformance.impact.command import ImpactUsageError, impact_and_write

    try:
        print_lines(impact_and_write(args))
    except ImpactUsageError as exc:
        raise UsageError(str(exc)) from None
    return 0
