"""`conformance run`: run the cases against a target and write the reports."""

from __future__ import annotations

import argparse
import os
import secrets
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from conformance.cli.common import (
    EXIT_CODES_RUN,
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_gate_flags,
    add_profile_flag,
    add_read_bounds,
    choice,
    header,
    imply_fail_on,
    judge_gate,
    load_baseline,
    load_profile,
    names,
    positive,
    print_lines,
    selected_cases,
    wants_impact,
)
from conformance.request_defaults import AUTH_STYLES, DEFAULT_MODEL, DEFAULT_VERSION

if TYPE_CHECKING:
    from conformance.cases import Case
    from conformance.generate.plan import Plan
    from conformance.model import RunReport

DEFAULT_OUT = Path("reports/latest")


# The one line `conformance --help` shows for this command.
HELP = "run the cases against a target (default: the embedded reference server)"


def register(commands: argparse._SubParsersAction) -> None:
    """Declare `run` and its flags."""
    from conformance.cases import TIERS
    from conformance.retry import DEFAULT_RETRIES, MAX_RETRY_WAIT
    from conformance.transport import Limits

    run = commands.add_parser(
        "run",
        help=HELP,
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
        type=header,
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
        type=str.lower,
        metavar="NAME",
        help="the value of this --header is not a secret: keep it readable in reports (repeatable)",
    )
    target.add_argument(
        "--capabilities",
        type=names,
        metavar="LIST",
        help="comma-separated capabilities the target claims (e.g. count_tokens,vision,thinking); cases that "
        "need another one are skipped; an unknown name is a usage error (default: all)",
    )
    selection = run.add_argument_group("selection")
    selection.add_argument(
        "--tier",
        type=choice("tier", TIERS),
        metavar="{" + ",".join(TIERS) + "}",
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
    add_profile_flag(selection)
    execution = run.add_argument_group("execution and bounds")
    execution.add_argument(
        "--concurrency",
        type=positive(int),
        default=4,
        metavar="N",
        help="cases sending their requests at once (judging a case takes no turn) (default: %(default)s)",
    )
    execution.add_argument(
        "--timeout",
        type=positive(float),
        default=60.0,
        metavar="S",
        help="per-request limit in seconds (default: %(default)s)",
    )
    execution.add_argument(
        "--retries",
        type=positive(int, zero=True),
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
    execution.add_argument(
        "--no-preflight",
        action="store_true",
        help="skip the probe that stops the run at once when the target cannot be reached or answers 404 where "
        "the Messages API should be",
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
    output.add_argument(
        "--impact",
        action="store_true",
        help="at the end, replay every non-passing case's answers to real clients (the SDKs, Claude Code; "
        "installed on demand into .clients/) and record which break or degrade (docs/how-to/impact.md); implied by "
        "--fail-on breaks and --fail-on-impact",
    )
    add_gate_flags(run.add_argument_group("CI gate"))
    _add_generation_flags(run.add_argument_group("generated cases and budget (docs/how-to/generated.md)"))
    run.set_defaults(handler=handle)


def _add_generation_flags(group: argparse._ActionsContainer) -> None:
    from conformance.generate.options import DEFAULT_COUNT, DEFAULT_MAX_TOKENS

    group.add_argument(
        "--generated",
        nargs="?",
        const=DEFAULT_COUNT,
        default=0,
        type=positive(int),
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
        type=positive(int),
        default=DEFAULT_MAX_TOKENS,
        metavar="N",
        help="max_tokens of every generated request (default: %(default)s)",
    )
    group.add_argument(
        "--max-requests",
        type=positive(int),
        metavar="N",
        help="budget of the whole run: at most N requests (generated cases are left out to fit; shrinking spends "
        "what is left); a selection of hand-written cases above it is a usage error",
    )
    group.add_argument(
        "--max-output-tokens",
        type=positive(int),
        metavar="N",
        help="budget of the whole run: at most N worst-case output tokens (the sum of max_tokens), as --max-requests",
    )
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (cases, requests, worst-case output tokens, the budget) and send nothing",
    )


def _check_vocabularies(args: argparse.Namespace) -> None:
    """Capabilities and provider are closed sets: a typo is a usage error, not a run that skips everything."""
    from conformance.cases import CAPABILITIES
    from conformance.cli.common import check_names
    from conformance.specs.profiles import known_providers

    if args.capabilities is not None:
        check_names("capability", args.capabilities, CAPABILITIES)
    check_names("provider", [args.provider], known_providers())


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


def _profile_verdict(name: str, report: RunReport) -> list[str]:
    """The answer to "can I deploy this gateway for this client?"."""
    from conformance.consumers import INCOMPLETE, NOT_READY, breakage, readiness
    from conformance.model import Outcome

    profile = load_profile(name)
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
    phrases = breakage(profile, report.results)  # how many of its cases break its clients, when impact is known
    return ["", f"Profile {profile.name} ({profile.label}): {state.upper()}: {why}", *(f"  {p}" for p in phrases)]


def handle(args: argparse.Namespace) -> int:
    import asyncio

    from conformance.cli.progress import run_progress
    from conformance.durations import REFERENCE, keep_durations, load_durations
    from conformance.generate.session import run_plan
    from conformance.interrupts import Interrupts
    from conformance.preflight import PreflightError, preflight
    from conformance.reference import ReferenceServer
    from conformance.report import clear_reports, write_reports
    from conformance.report.console import ConsoleReporter
    from conformance.retry import RetryPolicy
    from conformance.runner import Stop
    from conformance.target import Target, TargetError
    from conformance.transport import Limits

    imply_fail_on(args)
    _check_vocabularies(args)
    plan = _run_plan(args, selected_cases(args, allow_empty=bool(args.generated)))
    baseline = load_baseline(args.baseline)  # a bad baseline fails a dry run too
    if args.dry_run:
        print_lines(plan.lines(verbose=args.verbose))
        return EXIT_OK
    cases = plan.all_cases
    api_key = args.api_key or os.environ.get("CONFORMANCE_API_KEY") or os.environ.get("ANTHROPIC_API_KEY")
    limits = Limits(
        timeout=args.timeout,
        max_silence=args.max_silence,
        max_body_bytes=args.max_body_bytes,
        max_events=args.max_events,
    )
    stop = Stop()
    with Interrupts(stop) as interrupts, ExitStack() as stack:
        base_url, server = args.base_url, None
        if base_url is None:
            api_key = args.api_key or "ref-" + secrets.token_hex(16)
            server = stack.enter_context(ReferenceServer(api_key=api_key))
            base_url = server.base_url
        try:
            target = Target(
                base_url=base_url,
                api_key=api_key,
                auth=args.auth,
                model=args.model,
                provider=args.provider,
                anthropic_version=args.anthropic_version,
                extra_headers=dict(args.header),
                public_headers=frozenset(args.public_header),
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
        if args.base_url is not None and not args.no_preflight:
            try:
                preflight(target, min(limits.timeout, 10.0))
            except PreflightError as exc:
                raise UsageError(str(exc)) from None
        reporter = ConsoleReporter(verbose=args.verbose, redactor=redactor)
        reporter.start(target.info(), len(cases))
        progress = run_progress(reporter, cases)

        timed = REFERENCE if args.base_url is None else base_url  # whose durations order the cases

        async def run() -> RunReport:
            interrupts.attach(asyncio.get_running_loop())
            return await run_plan(
                target,
                plan,
                limits,
                args.concurrency,
                progress.case_done,
                args.out,
                retry=RetryPolicy(retries=args.retries),
                stop=stop,
                redactor=redactor,
                on_start=getattr(progress, "case_started", None),
                durations=load_durations(timed),
            )

        with progress:  # a live display, or a plain line while no case finishes
            report = asyncio.run(run())
        keep_durations(timed, report.results)
        if (args.impact or wants_impact(args)) and not report.interrupted:
            from conformance.impact.command import say
            from conformance.impact.compute import compute_impact

            compute_impact(report, progress=say)
        if server is not None:
            server.request_stop()  # it shuts down while the reports are written
        try:
            paths = write_reports(report, args.out, redactor=redactor)
            if args.record is not None:
                from conformance.cassette import write_cassette

                paths["record"] = write_cassette(report, cases, args.record, redactor=redactor)
        except OSError as exc:  # a full disk, a directory removed meanwhile: not a defect of the tool
            raise UsageError(f"cannot write {exc.filename or args.out}: {exc.strerror or exc}") from None
        verdict, code = judge_gate(args, report, baseline)
        reporter.finish(report, paths, gate_follows=bool(verdict))
        if args.impact or wants_impact(args):
            from conformance.impact.tally import summary_lines

            print_lines(
                ["", "Client impact (docs/how-to/impact.md):", *(f"  {line}" for line in summary_lines(report.results))]
            )
        if args.profile:
            print_lines(_profile_verdict(args.profile, report))
        if interrupts.exit_code is not None:
            return interrupts.exit_code
        print_lines(verdict)
        return EXIT_FAILED if report.interrupted else code
