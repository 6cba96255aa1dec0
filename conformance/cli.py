"""The `conformance` command: run the suite, serve the reference server, list cases."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import traceback
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from conformance import __version__
from conformance.cases import TIERS, CaseError, load_cases
from conformance.model import Outcome
from conformance.proxy import cli as proxy_cli
from conformance.retry import DEFAULT_RETRIES, MAX_RETRY_WAIT
from conformance.specs import cli as specs_cli
from conformance.target import AUTH_STYLES, DEFAULT_MODEL, DEFAULT_VERSION, Target, TargetError, parse_header
from conformance.transport import Limits

if TYPE_CHECKING:
    from conformance.baseline import Baseline
    from conformance.cases import Case
    from conformance.consumers import Profile
    from conformance.generate.plan import Plan
    from conformance.model import RunReport

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
DEFAULT_OUT = Path("reports/latest")
DEFAULT_MATRIX_OUT = Path("reports/matrix")
DEFAULT_RECHECK_OUT = Path("reports/recheck")
EXIT_CODES_INTERNAL = "3 internal error (a defect of conformance itself)"
_EXIT_CODES_GATE = (
    "0 nothing fails the gate (no case failed or errored; with --baseline, nothing got worse than it; "
    f"--fail-on widens what fails), 1 something does, 2 usage error, {EXIT_CODES_INTERNAL}"
)
EXIT_CODES_GATE = f"Exit codes: {_EXIT_CODES_GATE}."
EXIT_CODES_RUN = (
    f"Exit codes: {_EXIT_CODES_GATE}, 130 interrupted by SIGINT, 143 by SIGTERM (the partial report is written "
    "first); a run whose key the target rejects on its first cases stops early with 1. Details: docs/robustness.md."
)
EXIT_CODES_WRITE = (
    f"Exit codes: 0 written, 2 usage error (bad flags, a missing or unreadable file), {EXIT_CODES_INTERNAL}."
)
# Set to 1 to get the traceback of an internal error as well as its one-line summary.
DEBUG_VARIABLE = "CONFORMANCE_DEBUG"


class UsageError(Exception):
    """Bad flags or files: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the error and where to get help), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _header(value: str) -> tuple[str, str]:
    try:
        return parse_header(value)
    except TargetError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _names(value: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return names


def _positive(kind: type, zero: bool = False) -> object:
    """An argparse type: a number above 0 (`zero`: 0 or more)."""
    wanted = "a whole number, 0 or more" if zero else "a positive number"

    def parse(value: str) -> object:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {value!r}") from None
        if number < 0 or (number == 0 and not zero):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {value!r}")
        return number

    return parse


def add_read_bounds(
    group: argparse._ArgumentGroup, *, silence_default: float, body_help: str, events_help: str
) -> None:
    """Declare --max-silence, --max-body-bytes and --max-events: how much of one response is waited for and read."""
    group.add_argument(
        "--max-silence",
        type=_positive(float),
        default=silence_default,
        metavar="S",
        help="longest wait for the next byte of a response (default: %(default)s)",
    )
    group.add_argument(
        "--max-body-bytes",
        type=_positive(int),
        default=Limits.max_body_bytes,
        metavar="N",
        help=f"{body_help} (default: %(default)s)",
    )
    group.add_argument(
        "--max-events",
        type=_positive(int),
        default=Limits.max_events,
        metavar="N",
        help=f"{events_help} (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="conformance",
        description="Conformance suite for Anthropic-Messages-compatible endpoints "
        "(POST /v1/messages, its SSE stream, /v1/messages/count_tokens).",
        epilog=EXIT_CODES_GATE,
    )
    parser.add_argument("--version", action="version", version=f"conformance {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run the cases against a target (default: the embedded reference server)",
        description="Run the cases against an endpoint and write report.json, junit.xml and report.html. "
        "Without --base-url the embedded reference server is started on a free loopback port.",
        epilog=EXIT_CODES_RUN,
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
        "--auth",
        choices=AUTH_STYLES,
        help="how to send the key (default: the provider profile's; x-api-key for anthropic)",
    )
    target.add_argument(
        "--model",
        help=f"model name to request (default: the provider profile's default model; {DEFAULT_MODEL} for anthropic "
        "and the reference server)",
    )
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
        help="extra header sent with every request (repeatable); its value is a secret, redacted everywhere, "
        "unless NAME is known harmless (anthropic-beta, anthropic-version, content-type, accept, user-agent...) "
        "or marked with --public-header",
    )
    target.add_argument(
        "--public-header",
        action="append",
        default=[],
        metavar="NAME",
        help="the value of this --header is not a secret: keep it readable in reports (repeatable)",
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
        help=f"run the cases of this tier and the cheaper ones: {' < '.join(TIERS)} (default: extended, all but "
        "the provider probes; with --profile, the cases the profile names whatever their tier)",
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
    _add_profile_flag(selection)
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
        "--retries",
        type=_positive(int, zero=True),
        default=DEFAULT_RETRIES,
        metavar="N",
        help="send a request again up to N more times when the answer is transient (429, 529, 503 with "
        f"retry-after, a reset connection, a timeout), waiting as retry-after says, at most {MAX_RETRY_WAIT:g} s; "
        "0 for none (default: %(default)s)",
    )
    add_read_bounds(
        execution,
        silence_default=Limits.max_silence,
        body_help="stop reading a response after N bytes",
        events_help="stop reading a stream after N events",
    )
    output = run.add_argument_group("output")
    output.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help="report directory (default: %(default)s)"
    )
    output.add_argument("-v", "--verbose", action="store_true", help="print every finding while running")
    output.add_argument(
        "--record",
        type=Path,
        metavar="DIR",
        help="also store every exchange (redacted) as a cassette in DIR, for `conformance recheck DIR`",
    )
    _add_gate_flags(run.add_argument_group("CI gate"))
    _add_generation_flags(run.add_argument_group("generated cases and budget (docs/generated.md)"))
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
    _add_profile_flag(listing)
    listing.set_defaults(handler=cmd_cases_list)
    proxy_cli.add_from_capture_parser(case_commands)

    _add_matrix_command(commands)
    _add_baseline_command(commands)
    _add_recheck_command(commands)
    specs_cli.add_parser(commands)
    proxy_cli.add_parser(commands)
    return parser


def _profile_names() -> str:
    from conformance.consumers import ProfileError, load_profiles

    try:
        return ", ".join(load_profiles()) or "none"
    except ProfileError:
        return "none readable"


def _add_profile_flag(group: argparse._ActionsContainer) -> None:
    group.add_argument(
        "--profile",
        metavar="NAME",
        help=f"only the cases one client relies on: a consumer profile ({_profile_names()}) or a profile .yaml "
        "file; combines with --tier and -k",
    )


def _add_gate_flags(group: argparse._ActionsContainer) -> None:
    from conformance.baseline import DEFAULT_FAIL_ON, FAIL_ON_CHOICES

    group.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="expectation file from `conformance baseline write`: exit 1 only on a failing case that is not in it "
        "or got worse than it; cases that got better are listed as fixed",
    )
    group.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        default=DEFAULT_FAIL_ON,
        help="the least severe outcome that fails the gate: failed (and error), deviation (and worse) or "
        "unsupported (and worse) (default: %(default)s)",
    )


def _add_generation_flags(group: argparse._ActionsContainer) -> None:
    from conformance.generate.options import DEFAULT_COUNT, DEFAULT_MAX_TOKENS

    group.add_argument(
        "--generated",
        nargs="?",
        const=DEFAULT_COUNT,
        default=0,
        type=_positive(int),
        metavar="N",
        help=f"also run N cases generated from the contract with schemathesis ({DEFAULT_COUNT} without N): "
        "negative ones (invalid requests: must get a 4xx Anthropic error) and, against a loopback target, positive "
        "ones (valid requests: must be accepted); -k filters them too; failures are shrunk and written to "
        "OUT/generated-failures/ as case files and curl scripts",
    )
    group.add_argument(
        "--seed", type=int, metavar="S", help="seed of the generated cases (default: random, printed and recorded)"
    )
    group.add_argument(
        "--generated-positive",
        action="store_true",
        help="also generate positive cases against a target that is not on loopback (they cost output tokens)",
    )
    group.add_argument(
        "--generated-max-tokens",
        type=_positive(int),
        default=DEFAULT_MAX_TOKENS,
        metavar="N",
        help="max_tokens of every generated request (default: %(default)s)",
    )
    group.add_argument(
        "--max-requests",
        type=_positive(int),
        metavar="N",
        help="budget of the whole run: at most N requests (generated cases are left out to fit; shrinking spends "
        "what is left); a selection of hand-written cases above it is a usage error",
    )
    group.add_argument(
        "--max-output-tokens",
        type=_positive(int),
        metavar="N",
        help="budget of the whole run: at most N worst-case output tokens (the sum of max_tokens), as --max-requests",
    )
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (cases, requests, worst-case output tokens, the budget) and send nothing",
    )


def _add_matrix_command(commands: argparse._SubParsersAction) -> None:
    matrix = commands.add_parser(
        "matrix",
        help="build the compatibility matrix (features and profiles x targets) from report.json files",
        description="Build matrix.html (one self-contained page), matrix.md (for a GitHub step summary or a README) "
        "and matrix.json from the report.json of several runs. Each target is labelled by provider, model, base "
        "URL host and date; each consumer profile gets a row.",
        epilog=EXIT_CODES_WRITE,
    )
    matrix.add_argument(
        "reports", nargs="+", type=Path, metavar="REPORT.json", help="report.json files, one per target"
    )
    matrix.add_argument(
        "--out", type=Path, default=DEFAULT_MATRIX_OUT, metavar="DIR", help="output directory (default: %(default)s)"
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
        help="name the columns, in the order of the reports (repeatable), e.g. when several runs hit one target",
    )
    matrix.set_defaults(handler=cmd_matrix)


def _add_baseline_command(commands: argparse._SubParsersAction) -> None:
    baseline = commands.add_parser(
        "baseline",
        help="write CI baselines (expectation files) from a report",
        description="Manage baselines: expectation files that let CI gate on regressions only.",
    )
    actions = baseline.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    write = actions.add_parser(
        "write",
        help="record a report's non-passing cases, with their reasons, as a baseline",
        description="Record every case of a report that did not pass (failed, error, deviation, unsupported), "
        "with its outcome and reason, as a YAML baseline for `conformance run --baseline FILE`.",
        epilog=EXIT_CODES_WRITE,
    )
    write.add_argument("report", type=Path, metavar="REPORT.json", help="the run to take the baseline from")
    write.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="baseline file to write")
    write.set_defaults(handler=cmd_baseline_write)


def _add_recheck_command(commands: argparse._SubParsersAction) -> None:
    recheck = commands.add_parser(
        "recheck",
        help="judge a recorded run (a cassette from --record) again, offline",
        description="Re-run every check on the exchanges recorded with `conformance run --record DIR`, with no "
        "network and no cost, and write report.json, junit.xml and report.html. Cases are loaded by id from the "
        "catalogue; a recorded case no longer in it (or whose requests changed) gets the contract checks only.",
        epilog=EXIT_CODES_GATE,
    )
    recheck.add_argument("cassette", type=Path, metavar="DIR", help="the directory given to --record")
    recheck.add_argument("--cases", type=Path, metavar="DIR", help="load cases from DIR (default: the built-in cases)")
    recheck.add_argument(
        "--out", type=Path, default=DEFAULT_RECHECK_OUT, metavar="DIR", help="report directory (default: %(default)s)"
    )
    recheck.add_argument("-v", "--verbose", action="store_true", help="print every finding")
    _add_gate_flags(recheck.add_argument_group("CI gate"))
    recheck.set_defaults(handler=cmd_recheck)


def _load_catalogue(directory: Path | None) -> list[Case]:
    try:
        return load_cases(directory)
    except CaseError as exc:
        raise UsageError(str(exc)) from None


def _profile(name: str) -> Profile:
    from conformance.consumers import ProfileError, get_profile

    try:
        return get_profile(name)
    except ProfileError as exc:
        raise UsageError(str(exc)) from None


def _selected_cases(
    args: argparse.Namespace, default_tier: str | None = "extended", allow_empty: bool = False
) -> list[Case]:
    from conformance.consumers import select_cases

    cases = _load_catalogue(args.cases)
    profile = _profile(args.profile) if args.profile else None
    chosen = select_cases(cases, args.tier, args.keyword, profile, default_tier)
    if not chosen and not allow_empty:
        raise UsageError("no case matches the selection (--tier / -k / --profile)")
    return chosen


def _run_plan(args: argparse.Namespace, cases: list[Case]) -> Plan:
    """The run's cases with the generated ones (-k selects among them too), fitted to the budget."""
    from conformance.cases import select
    from conformance.generate.options import Budget, BudgetError, GenerationOptions
    from conformance.generate.plan import make_plan
    from conformance.specs.profiles import ProfileError
    from conformance.target import is_loopback

    options = None
    if args.generated:
        from conformance.generate.strategy import private_storage

        private_storage()
        options = GenerationOptions(
            count=args.generated,
            seed=args.seed if args.seed is not None else secrets.randbelow(2**32),
            provider=args.provider,
            positive=args.generated_positive or args.base_url is None or is_loopback(args.base_url),
            max_tokens=args.generated_max_tokens,
        )
    keyword = args.keyword
    try:
        plan = make_plan(
            cases,
            options,
            Budget(args.max_requests, args.max_output_tokens),
            (lambda found: select(found, keyword=keyword)) if keyword else None,
        )
    except (BudgetError, ProfileError) as exc:
        raise UsageError(str(exc)) from None
    if not plan.all_cases:
        raise UsageError("no case matches the selection (--tier / -k / --profile)")
    return plan


def _load_baseline(path: Path | None) -> Baseline | None:
    from conformance.baseline import BaselineError, load_baseline

    if path is None:
        return None
    try:
        return load_baseline(path)
    except BaselineError as exc:
        raise UsageError(str(exc)) from None


def _print_lines(lines: list[str]) -> None:
    """Plain lines that may quote the endpoint: control characters are shown, never obeyed."""
    from rich.console import Console
    from rich.text import Text

    from conformance.report.console import _safe

    console = Console(highlight=False)
    for line in lines:
        console.print(Text(_safe(line)), soft_wrap=True)


def _load_report(path: Path) -> RunReport:
    from conformance.report import load_report

    try:
        return load_report(path)
    except FileNotFoundError:
        raise UsageError(f"no report at {path}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def _gate_exit(args: argparse.Namespace, report: RunReport, baseline: Baseline | None) -> int:
    """Print the gate's verdict when a baseline or a stricter --fail-on is in play; return the exit code."""
    from conformance.baseline import DEFAULT_FAIL_ON, describe_gate, gate

    verdict = gate(report.results, baseline, args.fail_on)
    if baseline is not None or args.fail_on != DEFAULT_FAIL_ON:
        _print_lines(["", *describe_gate(verdict, args.baseline)])
    return EXIT_OK if verdict.ok else EXIT_FAILED


def _profile_verdict(name: str, report: RunReport) -> list[str]:
    """The answer to "can I deploy this gateway for this client?"."""
    from conformance.consumers import INCOMPLETE, NOT_READY, readiness

    profile = _profile(name)
    outcomes = [result.outcome for result in profile.select(report.results)]
    state = readiness(outcomes)
    if state == NOT_READY:
        failing = sum(1 for outcome in outcomes if outcome in (Outcome.FAILED, Outcome.ERROR))
        why = f"{failing} of its {len(outcomes)} cases failed or errored"
    elif state == INCOMPLETE:
        why = f"nothing failed, but {outcomes.count(Outcome.SKIPPED)} of its {len(outcomes)} cases were skipped"
    else:
        counts = ", ".join(f"{outcomes.count(o)} {o.value}" for o in Outcome if o in outcomes)
        why = f"the target can serve it ({counts})"
    return ["", f"Profile {profile.name} ({profile.label}): {state.upper()}: {why}"]


def cmd_run(args: argparse.Namespace) -> int:
    from conformance.generate.session import run_plan
    from conformance.interrupts import Interrupts
    from conformance.reference import ReferenceServer
    from conformance.report import clear_reports, write_reports
    from conformance.report.console import ConsoleReporter
    from conformance.retry import RetryPolicy
    from conformance.runner import Stop

    plan = _run_plan(args, _selected_cases(args, allow_empty=bool(args.generated)))
    if args.dry_run:
        _print_lines(plan.lines(verbose=args.verbose))
        return EXIT_OK
    cases = plan.all_cases
    baseline = _load_baseline(args.baseline)
    api_key = args.api_key or os.environ.get("CONFORMANCE_API_KEY") or os.environ.get("ANTHROPIC_API_KEY")
    limits = Limits(
        timeout=args.timeout,
        max_silence=args.max_silence,
        max_body_bytes=args.max_body_bytes,
        max_events=args.max_events,
    )
    stop = Stop()
    with Interrupts(stop) as interrupts, ExitStack() as stack:
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
                public_headers=frozenset(name.lower() for name in args.public_header),
                reference=args.base_url is None,
                capabilities=args.capabilities,
            )
        except TargetError as exc:
            raise UsageError(str(exc)) from None
        redactor = target.redactor()
        try:
            args.out.mkdir(parents=True, exist_ok=True)
            clear_reports(args.out)  # what --out holds is this run's report, never an earlier one
        except OSError as exc:
            raise UsageError(f"cannot write the reports to {args.out}: {exc.strerror or exc}") from None
        reporter = ConsoleReporter(verbose=args.verbose, redactor=redactor)
        reporter.start(target.info(), len(cases))

        async def run() -> RunReport:
            interrupts.attach(asyncio.get_running_loop())
            return await run_plan(
                target,
                plan,
                limits,
                args.concurrency,
                reporter.case_done,
                args.out,
                retry=RetryPolicy(retries=args.retries),
                stop=stop,
                redactor=redactor,
            )

        report = asyncio.run(run())
        try:
            paths = write_reports(report, args.out, redactor=redactor)
            if args.record is not None:
                from conformance.cassette import write_cassette

                paths["record"] = write_cassette(report, cases, args.record, redactor=redactor)
        except OSError as exc:  # a full disk, a directory removed meanwhile: not a defect of the tool
            raise UsageError(f"cannot write {exc.filename or args.out}: {exc.strerror or exc}") from None
        reporter.finish(report, paths)
        if args.profile:
            _print_lines(_profile_verdict(args.profile, report))
        if interrupts.exit_code is not None:
            return interrupts.exit_code
        code = _gate_exit(args, report, baseline)
        return EXIT_FAILED if report.interrupted else code


def cmd_serve(args: argparse.Namespace) -> int:
    from conformance.reference import serve_forever

    serve_forever(host=args.host, port=args.port, api_key=args.api_key)
    return EXIT_OK


def cmd_cases_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    cases = _selected_cases(args, default_tier=None)
    table = Table(title=f"{len(cases)} cases", title_justify="left")
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


def cmd_matrix(args: argparse.Namespace) -> int:
    from conformance.consumers import ProfileError, load_profiles
    from conformance.report.matrix import build_matrix, write_matrix

    reports = [(str(path), _load_report(path)) for path in args.reports]
    if len(args.label) > len(reports):
        raise UsageError(f"{len(args.label)} --label for {len(reports)} reports")
    if args.profile:
        profiles = [_profile(name) for name in args.profile]
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
    _print_lines(lines)
    return EXIT_OK


def cmd_baseline_write(args: argparse.Namespace) -> int:
    from conformance.baseline import Baseline, write_baseline

    baseline = Baseline.from_results(_load_report(args.report))
    try:
        path = write_baseline(baseline, args.output)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    counts: dict[str, int] = {}
    for expectation in baseline.expectations.values():
        counts[expectation.outcome.value] = counts.get(expectation.outcome.value, 0) + 1
    detail = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "every case passed"
    _print_lines([f"Baseline of {len(baseline.expectations)} non-passing cases ({detail}) written to {path}"])
    return EXIT_OK


def cmd_recheck(args: argparse.Namespace) -> int:
    from conformance.cassette import CassetteError, load_cassette, recheck
    from conformance.report import write_reports
    from conformance.report.console import ConsoleReporter

    try:
        cassette = load_cassette(args.cassette)
    except CassetteError as exc:
        raise UsageError(str(exc)) from None
    from conformance.specs.profiles import ProfileError as ProviderError
    from conformance.specs.profiles import load_profile

    catalogue = _load_catalogue(args.cases)
    baseline = _load_baseline(args.baseline)
    try:
        provider = load_profile(cassette.target.provider)
    except ProviderError as exc:
        provider = None
        _print_lines([f"warning: {exc}: judged against the canonical contract, without documented deviations"])
    rechecked = recheck(cassette, catalogue, provider)
    report = rechecked.report
    reporter = ConsoleReporter(verbose=args.verbose)
    reporter.start(report.target, len(report.results))
    for result in report.results:
        reporter.case_done(result)
    paths = write_reports(report, args.out)
    reporter.finish(report, paths)
    lines = ["", f"Recheck of {args.cassette} (recorded {cassette.started_at or 'at an unknown time'}), offline:"]
    same = len(report.results) - len(rechecked.changed)
    lines.append(f"  {same} of {len(report.results)} outcomes as recorded")
    if rechecked.changed:
        lines.append(f"  {len(rechecked.changed)} changed with the current checks and cases:")
        lines += [f"    {case_id}: {before.value} -> {after.value}" for case_id, before, after in rechecked.changed]
    if rechecked.contract_only:
        lines.append(f"  {len(rechecked.contract_only)} judged by the contract checks only:")
        lines += [f"    {case_id}: {why}" for case_id, why in sorted(rechecked.contract_only.items())]
    _print_lines(lines)
    return _gate_exit(args, report, baseline)


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
    except Exception as exc:  # a defect of the tool itself, outside any one case
        return _internal_error(exc)


def _internal_error(exc: Exception) -> int:
    """One line on stderr naming the defect and where it happened (the traceback with CONFORMANCE_DEBUG=1).

    The exception's message is left out: it may quote what the target sent, secrets included.
    """
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


if __name__ == "__main__":
    sys.exit(main())
