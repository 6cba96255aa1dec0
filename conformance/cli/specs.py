"""`conformance specs`: the contracts under specs/ (its actions live with them, in conformance.specs.cli)."""

from __future__ import annotations

import argparse

# The one line `conformance --help` shows for this command.
HELP = "compare, merge and vendor the contracts under specs/ and follow the official SDK (no target is asked)"


def register(commands: argparse._SubParsersAction) -> None:
    """Declare `specs` and its actions."""
    from conformance.specs.cli import add_parser

    add_parser(commands, HELP)
