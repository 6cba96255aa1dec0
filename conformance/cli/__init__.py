"""The `conformance` command: one module per command, each with `register(commands)` and its handlers.

Each module also holds the one line `conformance --help` shows for it (`HELP`). Only the command being run
declares its flags (with the imports their defaults need); the others are declared by that line alone, so that
`conformance --help` imports almost nothing, and every handler imports what it needs when it runs. What the
commands share is in conformance.cli.common.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from conformance import __version__
from conformance.cli import baseline, cases, impact, matrix, proxy, recheck, run, serve, specs
from conformance.cli.common import EXIT_CODES_GATE, EXIT_INTERNAL, EXIT_USAGE, CommandParser, Parser, UsageError

__all__ = ["COMMANDS", "EXIT_INTERNAL", "build_parser", "main"]

# The commands, in the order `--help` lists them.
COMMANDS = (run, serve, cases, matrix, baseline, recheck, impact, specs, proxy)
# Set to 1 to get the traceback of an internal error as well as its one-line summary.
DEBUG_VARIABLE = "CONFORMANCE_DEBUG"


def build_parser(argv: Sequence[str] | None = None) -> Parser:
    """The parser of the command line; given the arguments, only the command they name declares its flags."""
    parser = Parser(
        prog="conformance",
        description="Conformance suite for Anthropic-Messages-compatible endpoints "
        "(POST /v1/messages, its SSE stream, /v1/messages/count_tokens).",
        epilog=EXIT_CODES_GATE,
    )
    parser.add_argument("--version", action="version", version=f"conformance {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    chosen = None if argv is None else next((arg for arg in argv if not arg.startswith("-")), "")
    for command in COMMANDS:
        name = command.__name__.rpartition(".")[2]  # each module is named as its command
        if chosen is None or name == chosen:
            command.register(commands)
        else:
            commands.add_parser(name, help=command.HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:  # bare `conformance`: what it can do, not an error
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
    except UsageError as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("conformance: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a defect of the tool itself, outside any one case
        return _internal_error(exc)


def _internal_error(exc: Exception) -> int:
    """One line on stderr naming the defect and where it happened (the traceback with CONFORMANCE_DEBUG=1).

    The exception's message is left out: it may quote what the target sent, secrets included.
    """
    import traceback  # only for an internal error: the command line's start does without it

    if os.environ.get(DEBUG_VARIABLE) == "1":
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" in {Path(frames[-1].filename).name}:{frames[-1].lineno} ({frames[-1].name})" if frames else ""
    print(
        f"conformance: internal error: {type(exc).__name__}{where}. This is a defect of conformance, not of the "
        "target: please report it to the conformance maintainers with this line and the command you ran "
        f"({DEBUG_VARIABLE}=1 prints the traceback).",
        file=sys.stderr,
    )
    return EXIT_INTERNAL
