"""`conformance specs`: the contracts under specs/ (its actions live with them, in conformance.specs.cli)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Declare `specs` and its actions."""
    from conformance.specs.cli import add_parser

    add_parser(commands)
