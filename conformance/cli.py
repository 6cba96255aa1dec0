"""The `conformance` command: run the suite, serve the reference server, list cases."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from conformance import __version__
from conformance.cases import TIERS, CaseError, load_cases, select, tiers_up_to
from conformance.model import Outcome
from conformance.target import AUTH_STYLES, DEFAULT_MODEL, DEFAULT_VERSION, Target, TargetError
from conformance.transport import Limits

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_OUT = Path("reports/latest")


class UsageError(Exception):
    """Bad flags or files: reported in one line, exit code 2."""


def _header(value: str) -> tuple[str, str]:
    name, sep, rest = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {value!r}")
    return name.strip().lower(), rest.strip()


def _names(value: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return names


def _positive(kind: type) -> object:
    def parse(value: str) -> object:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}") from None
        if number <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
        return number

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conformance",
        description="Conformance suite for Anthropic-Messages-compatible endpoints "
        "(POST /v1/messages, its SSE stream, /v1/messages/count_tokens).",
        epilog="Exit codes: 0 no case failed or errored, 1 some did, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"conformance {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run the cases against a target (default: the embedded reference server)",
        description="Run the cases against an endpoint and write report.json, junit.xml and report.html. "
        "Without --base-url the embedded reference server is started on a free loopback port.",
        epilog="Exit codes: 0 no case failed or errored, 1 some did, 2 usage error.",
    )
    target = run.add_argument_group("target")
    target.add_argument(
        "--base-url",
        help="the endpoint's base URL, as ANTHROPIC_BASE_URL for the SDKs: /v1/messages is appended "
        "(default: start the embedded reference server)",
    )
    target.add_argument(
        "--api-key",
        help="API key to send (default: $CONFORMANCE_API_KEY, then $ANTHROPIC_API_KEY; a random key for the "
        "reference server). Never written to any report.",
    )
    target.add_argument(
        "--auth", choices=AUTH_STYLES, default="x-api-key", help="how to send the key (default: %(default)s)"
    )
    target.add_argument("--model", default=DEFAULT_MODEL, help="model name to request (default: %(default)s)")
    target.add_argument("--provider", default="anthropic", help="provider profile of the target (default: %(default)s)")
    target.add_argument(
        "--anthropic-version",
        default=DEFAULT_VERSION,
        help="anthropic-version header to send (default: %(default)s)",
    )
    target.add_argument(
        "--header",
        action="append",
        type=_header,
        default=[],
        metavar="NAME:VALUE",
        help="extra header sent with every request (repeatable)",
    )
    target.add_argument(
        "--capabilities",
        type=_names,
        metavar="LIST",
        help="comma-separated capabilities the target claims (e.g. count_tokens,vision,thinking); cases that "
        "need another one are skipped (default: all)",
    )
    selection = run.add_argument_group("selection")
    selection.add_argument(
        "--tier",
        choices=TIERS,
        default="extended",
        help="run the cases of this tier and the cheaper ones: smoke < core < extended (default: %(default)s, all)",
    )
    selection.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPR",
        help="only cases whose id or feature matches: a substring or glob, alternatives separated by commas, "
        "'not EXPR' to exclude",
    )
    selection.add_argument(
        "--cases", type=Path, metavar="DIR", help="load cases from DIR (default: the built-in cases)"
    )
    execution = run.add_argument_group("execution and bounds")
    execution.add_argument(
        "--concurrency", type=_positive(int), default=4, metavar="N", help="cases run at once (default: %(default)s)"
    )
    execution.add_argument(
        "--timeout",
        type=_positive(float),
        default=60.0,
        metavar="S",
        help="per-request limit in seconds (default: %(default)s)",
    )
    execution.add_argument(
        "--max-silence",
        type=_positive(float),
        default=30.0,
        metavar="S",
        help="longest wait for the next byte of a response (default: %(default)s)",
    )
    execution.add_argument(
        "--max-body-bytes",
        type=_positive(int),
        default=8 * 1024 * 1024,
        metavar="N",
        help="stop reading a response after N bytes (default: %(default)s)",
    )
    execution.add_argument(
        "--max-events",
        type=_positive(int),
        default=20_000,
        metavar="N",
        help="stop reading a stream after N events (default: %(default)s)",
    )
    output = run.add_argument_group("output")
    output.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help="report directory (default: %(default)s)"
    )
    output.add_argument("-v", "--verbose", action="store_true", help="print every finding while running")
    run.set_defaults(handler=cmd_run)

    serve = commands.add_parser(
        "serve",
        help="run the embedded reference server in the foreground",
        description="Serve the reference emulation of the Anthropic Messages API until interrupted.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8765, help="port to bind (default: %(default)s)")
    serve.add_argument("--api-key", help="the only API key to accept (default: accept any non-empty key)")
    serve.set_defaults(handler=cmd_serve)

    cases = commands.add_parser("cases", help="inspect the case catalogue", description="Inspect the case catalogue.")
    case_commands = cases.add_subparsers(dest="cases_command", metavar="ACTION", required=True)
    listing = case_commands.add_parser(
        "list",
        help="list cases: id, feature, tier, spec clause, requests, max output tokens",
        description="List the cases with their feature, tier, spec clause, request count and worst-case output tokens.",
    )
    listing.add_argument("--tier", choices=TIERS, help="only this tier and the cheaper ones")
    listing.add_argument("-k", dest="keyword", metavar="EXPR", help="only cases whose id or feature matches")
    listing.add_argument("--cases", type=Path, metavar="DIR", help="load cases from DIR (default: the built-in cases)")
    listing.set_defaults(handler=cmd_cases_list)
    return parser


def _selected_cases(args: argparse.Namespace) -> list:
    try:
        cases = load_cases(args.cases)
    except CaseError as exc:
        raise UsageError(str(exc)) from None
    chosen = select(cases, tiers_up_to(args.tier) if args.tier else None, args.keyword)
    if not chosen:
        raise UsageError("no case matches the selection (--tier / -k)")
    return chosen


def cmd_run(args: argparse.Namespace) -> int:
    from conformance.reference import ReferenceServer
    from conformance.report import write_reports
    from conformance.report.console import ConsoleReporter
    from conformance.runner import run_suite

    cases = _selected_cases(args)
    api_key = args.api_key or os.environ.get("CONFORMANCE_API_KEY") or os.environ.get("ANTHROPIC_API_KEY")
    limits = Limits(
        timeout=args.timeout,
        max_silence=args.max_silence,
        max_body_bytes=args.max_body_bytes,
        max_events=args.max_events,
    )
    with ExitStack() as stack:
        base_url = args.base_url
        if base_url is None:
            api_key = args.api_key or "ref-" + secrets.token_hex(16)
            base_url = stack.enter_context(ReferenceServer(api_key=api_key)).base_url
        try:
            target = Target(
                base_url=base_url,
                api_key=api_key,
                auth=args.auth,
                model=args.model,
                provider=args.provider,
                anthropic_version=args.anthropic_version,
                extra_headers=dict(args.header),
                reference=args.base_url is None,
                capabilities=args.capabilities,
            )
        except TargetError as exc:
            raise UsageError(str(exc)) from None
        reporter = ConsoleReporter(verbose=args.verbose)
        reporter.start(target.info(), len(cases))
        report = asyncio.run(run_suite(target, cases, limits, args.concurrency, reporter.case_done))
    paths = write_reports(report, args.out)
    reporter.finish(report, paths)
    summary = report.summary()
    return EXIT_FAILED if summary[Outcome.FAILED.value] or summary[Outcome.ERROR.value] else EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from conformance.reference import serve_forever

    serve_forever(host=args.host, port=args.port, api_key=args.api_key)
    return EXIT_OK


def cmd_cases_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    cases = _selected_cases(args)
    table = Table(title=f"{len(cases)} cases", title_justify="left")
    for column in ("id", "feature", "tier", "spec", "requests", "max output tokens"):
        table.add_column(column, justify="right" if column in ("requests", "max output tokens") else "left")
    for case in cases:
        table.add_row(case.id, case.feature, case.tier, case.spec, str(case.requests), str(case.max_output_tokens))
    table.add_row(
        "total", "", "", "", str(sum(c.requests for c in cases)), str(sum(c.max_output_tokens for c in cases))
    )
    Console().print(table)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("conformance: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
