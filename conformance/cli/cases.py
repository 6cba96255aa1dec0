"""`conformance cases list | from-capture`: inspect the case catalogue, or write cases from recorded traffic."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.cli.common import (
    EXIT_OK,
    UsageError,
    add_profile_flag,
    add_public_header,
    choice,
    plural,
    positive,
    print_lines,
    selected_cases,
)

EXIT_CODES_FROM_CAPTURE = "Exit codes: 0 written, 2 usage error (no capture there, nothing to turn into cases)."


# The one line `conformance --help` shows for this command.
HELP = "inspect the case catalogue"


def register(commands: argparse._SubParsersAction) -> None:
    """Declare `cases` and its actions."""
    from conformance.cases import TIERS

    cases = commands.add_parser("cases", help=HELP, description="Inspect the case catalogue.")
    actions = cases.add_subparsers(dest="cases_command", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="list cases: id, feature, tier, spec clause, requests, max output tokens",
        description="List the cases with their feature, tier, spec clause, request count and worst-case output tokens.",
    )
    listing.add_argument(
        "--tier",
        type=choice("tier", TIERS),
        metavar="{" + ",".join(TIERS) + "}",
        help="only this tier and the cheaper ones",
    )
    listing.add_argument("-k", dest="keyword", metavar="EXPR", help="only cases whose id or feature matches")
    listing.add_argument("--cases", type=Path, metavar="DIR", help="load cases from DIR (default: the built-in cases)")
    add_profile_flag(listing)
    listing.set_defaults(handler=handle_list)
    _register_from_capture(actions)


def _register_from_capture(actions: argparse._SubParsersAction) -> None:
    from conformance.cases import TIERS

    capture = actions.add_parser(
        "from-capture",
        help="turn requests recorded by `conformance proxy` (or --record) into replayable cases",
        description="Write a case file (docs/how-to/cases.md format) with one case per distinct Messages API request "
        "recorded in DIR: the same path, headers and body, expecting it accepted (and streamed when it asked "
        "for a stream). Requests whose recorded answer was transient (429, 5xx, 529) are left out: they say "
        "nothing about what the request should get. Credentials are never written: each case sends the target's "
        "own, and other headers whose name looks like a credential are left out (listed in a comment). "
        "Run the file with `conformance run --cases DIR --tier TIER` (the tier given here).",
        epilog=EXIT_CODES_FROM_CAPTURE,
    )
    capture.add_argument("capture", type=Path, metavar="DIR", help="the proxy's --out (or a --record) directory")
    capture.add_argument(
        "-o", "--output", type=Path, required=True, metavar="FILE", help="case file to write, e.g. cases/clients/x.yaml"
    )
    capture.add_argument(
        "--shorten",
        type=positive(int),
        metavar="N",
        help="replace every text longer than N characters with filler of the same size ({$text: {bytes: ...}})",
    )
    capture.add_argument(
        "--feature", help="feature and id prefix of the cases (default: clients.<the file's name without .yaml>)"
    )
    capture.add_argument(
        "--tier",
        type=choice("tier", TIERS),
        metavar="{" + ",".join(TIERS) + "}",
        default="provider",
        help="tier of the cases (default: %(default)s)",
    )
    capture.add_argument(
        "--keep-model", action="store_true", help="keep the recorded model names instead of $model (the target's)"
    )
    add_public_header(capture)
    capture.set_defaults(handler=handle_from_capture)


def handle_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    cases = selected_cases(args, default_tier=None)
    table = Table(title=f"{len(cases)} {plural(len(cases), 'case')}", title_justify="left")
    for column in ("id", "feature", "tier", "spec", "requests", "max output tokens"):
        table.add_column(column, justify="right" if column in ("requests", "max output tokens") else "left")
    for case in cases:
        table.add_row(case.id, case.feature, case.tier, case.spec, str(case.requests), str(case.max_output_tokens))
    table.add_row(
        "total", "", "", "", str(sum(c.requests for c in cases)), str(sum(c.max_output_tokens for c in cases))
    )
    # Piped or redirected, the table keeps its natural width: ids are never cut to fit 80 columns.
    Console(width=None if sys.stdout.isatty() else 1000).print(table)
    return EXIT_OK


def handle_from_capture(args: argparse.Namespace) -> int:
    from conformance.proxy.capture_cases import CaptureError, Options, build_cases, recorded_exchanges, write_cases

    feature = args.feature or f"clients.{args.output.name.removesuffix('.yaml')}"
    options = Options(
        feature=feature,
        tier=args.tier,
        shorten=args.shorten,
        keep_model=args.keep_model,
        public_headers=frozenset(args.public_header),
    )
    try:
        base_url, exchanges = recorded_exchanges(args.capture)
    except CaptureError as exc:
        raise UsageError(str(exc)) from None
    cases = build_cases(exchanges, base_url, options)
    if not cases:
        raise UsageError(f"{args.capture}: no Messages API request with a lasting answer was recorded there")
    try:
        path = write_cases(cases, args.output, options, str(args.capture))
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print_lines(
        [
            f"{len(cases)} {plural(len(cases), 'case')} from {len(exchanges)} recorded "
            f"{plural(len(exchanges), 'exchange')} written to {path}",
            f"  run them: conformance run --cases {path.parent} --tier {args.tier} --base-url URL",
        ]
    )
    return EXIT_OK
