"""What every command of `conformance` shares: the parser class, exit codes, argparse types, common flags and
the loaders that turn a bad file into a one-line usage error.

Only the standard library and light conformance modules are imported here: declaring the command line must
cost none of the heavy ones (each handler imports what it needs).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from conformance.baseline import Baseline
    from conformance.cases import Case
    from conformance.consumers import Profile
    from conformance.model import RunReport

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_CODES_INTERNAL = "3 internal error (a defect of conformance itself)"
_EXIT_CODES_GATE = (
    "0 nothing fails the gate (no case failed or errored; with --baseline, nothing got worse than it; "
    f"--fail-on widens what fails), 1 something does, 2 usage error, {EXIT_CODES_INTERNAL}"
)
EXIT_CODES_GATE = f"Exit codes: {_EXIT_CODES_GATE}."
EXIT_CODES_RUN = (
    f"Exit codes: {_EXIT_CODES_GATE}, 130 interrupted by SIGINT, 143 by SIGTERM (the partial report is written "
    "first); a run whose key the target rejects on its first cases stops early with 1; a target that cannot be "
    "reached, or answers 404 where the Messages API should be, stops the run before its cases with 2. "
    "Details: docs/reference/robustness.md."
)
EXIT_CODES_WRITE = (
    f"Exit codes: 0 written, 2 usage error (bad flags, a missing or unreadable file), {EXIT_CODES_INTERNAL}."
)


class UsageError(Exception):
    """Bad flags or files: reported in one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the error and where to get help), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class CommandParser(Parser):
    """The parser of one command: an argument it does not know is its error, so the message names the command
    (`conformance run: error: unrecognized arguments: --bse-url`), not the top-level parser."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def positive(kind: type, zero: bool = False) -> Callable[[str], object]:
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


def header(value: str) -> tuple[str, str]:
    """An argparse type: one NAME:VALUE header."""
    from conformance.target import TargetError, parse_header

    try:
        return parse_header(value)
    except TargetError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def names(value: str) -> frozenset[str]:
    """An argparse type: a comma-separated list of names."""
    found = frozenset(name.strip() for name in value.split(",") if name.strip())
    if not found:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return found


def check_names(kind: str, given: Iterable[str], known: Iterable[str]) -> None:
    """Raise UsageError on the first of `given` that is not `known` (with a "did you mean")."""
    from conformance.vocabulary import UnknownName
    from conformance.vocabulary import check_names as check

    try:
        check(kind, given, known)
    except UnknownName as exc:
        raise UsageError(str(exc)) from None


def choice(kind: str, known: Sequence[str]) -> Callable[[str], str]:
    """An argparse type: one of `known`, a near miss answered with a "did you mean"."""
    from conformance.vocabulary import unknown_name

    def parse(value: str) -> str:
        problem = unknown_name(kind, value, known)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse


def load_profile(name: str) -> Profile:
    """A consumer profile by name or file; an unknown name gets a "did you mean"."""
    from conformance.consumers import ProfileError, get_profile, profile_names
    from conformance.vocabulary import unknown_name

    try:
        return get_profile(name)
    except ProfileError as exc:
        known = [] if name.endswith((".yaml", ".yml")) else profile_names()  # names alone: no file is parsed again
        problem = unknown_name("profile", name, known) if known else None
        raise UsageError(f"{problem}; or give a path to a .yaml file" if problem else str(exc)) from None


def add_read_bounds(
    group: argparse._ActionsContainer, *, silence_default: float, body_help: str, events_help: str
) -> None:
    """Declare --max-silence, --max-body-bytes and --max-events: how much of one response is waited for and read."""
    from conformance.transport import Limits

    group.add_argument(
        "--max-silence",
        type=positive(float),
        default=silence_default,
        metavar="S",
        help="longest wait for the next byte of a response (default: %(default)s)",
    )
    group.add_argument(
        "--max-body-bytes",
        type=positive(int),
        default=Limits.max_body_bytes,
        metavar="N",
        help=f"{body_help} (default: %(default)s)",
    )
    group.add_argument(
        "--max-events",
        type=positive(int),
        default=Limits.max_events,
        metavar="N",
        help=f"{events_help} (default: %(default)s)",
    )


def _profile_names() -> str:
    from conformance.consumers import profile_names

    return ", ".join(profile_names()) or "none"


def add_profile_flag(group: argparse._ActionsContainer) -> None:
    """Declare --profile: the cases one client relies on."""
    group.add_argument(
        "--profile",
        metavar="NAME",
        help=f"only the cases one client relies on: a consumer profile ({_profile_names()}) or a profile .yaml "
        "file; combines with --tier and -k",
    )


def add_gate_flags(group: argparse._ActionsContainer) -> None:
    """Declare --baseline, --fail-on, --min-passed and --fail-on-impact: what makes the exit code 1."""
    from conformance.baseline import DEFAULT_FAIL_ON, FAIL_ON_CHOICES
    from conformance.impact.names import CLIENT_TITLES

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
        help="the least severe outcome that fails the gate, in the order "
        f"{' < '.join(reversed(FAIL_ON_CHOICES))}: each choice also fails on everything more severe, but "
        "breaks fails only the cases whose answers break a real client, whatever their outcome (default: %(default)s)",
    )
    group.add_argument(
        "--min-passed",
        type=positive(int, zero=True),
        default=1,
        metavar="N",
        help="fail the gate when fewer than N cases passed, so that a run skipping (almost) everything cannot "
        "pass; 0 to allow it (default: %(default)s)",
    )
    group.add_argument(
        "--fail-on-impact",
        action="append",
        choices=sorted(CLIENT_TITLES),
        metavar="CLIENT",
        help="--fail-on breaks, counting only the cases that break this client (repeatable; one of "
        f"{', '.join(sorted(CLIENT_TITLES))}); needs the clients' impact (docs/how-to/impact.md)",
    )


def print_lines(lines: Iterable[str]) -> None:
    """Plain lines that may quote the endpoint: control characters are shown, never obeyed."""
    from rich.console import Console
    from rich.text import Text

    from conformance.report.console import _safe

    console = Console(highlight=False)
    for line in lines:
        console.print(Text(_safe(line)), soft_wrap=True)


def load_catalogue(directory: Path | None) -> list[Case]:
    """The cases of `directory` (the built-in ones without it)."""
    from conformance.cases import CaseError, load_cases

    try:
        return load_cases(directory)
    except CaseError as exc:
        raise UsageError(str(exc)) from None


def selected_cases(
    args: argparse.Namespace, default_tier: str | None = "extended", allow_empty: bool = False
) -> list[Case]:
    """The cases --cases, --tier, -k and --profile select; none is a usage error unless `allow_empty`."""
    from conformance.consumers import select_cases

    cases = load_catalogue(args.cases)
    profile = load_profile(args.profile) if args.profile else None
    chosen = select_cases(cases, args.tier, args.keyword, profile, default_tier)
    if not chosen and not allow_empty:
        raise UsageError(no_match_message(cases, args.tier, default_tier))
    return chosen


def no_match_message(cases: list[Case], tier: str | None, default_tier: str | None) -> str:
    """Why nothing was selected, with the --tier that would select something when the tier is what excluded it."""
    from conformance.cases import TIERS

    message = "no case matches the selection (--tier / -k / --profile)"
    effective = tier or default_tier
    if cases and effective is not None:
        allowed = TIERS[: TIERS.index(effective) + 1]
        beyond = sorted({case.tier for case in cases if case.tier not in allowed}, key=TIERS.index)
        if beyond and not any(case.tier in allowed for case in cases):
            message += f": the cases there are of tier {beyond[-1]}; add --tier {beyond[-1]}"
    return message


def load_baseline(path: Path | None) -> Baseline | None:
    """The baseline at `path` (None without one)."""
    from conformance.baseline import BaselineError
    from conformance.baseline import load_baseline as load

    if path is None:
        return None
    try:
        return load(path)
    except BaselineError as exc:
        raise UsageError(str(exc)) from None


def load_report(path: Path) -> RunReport:
    """A report.json."""
    from conformance.report import load_report as load

    try:
        return load(path)
    except FileNotFoundError:
        raise UsageError(f"no report at {path}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def judge_gate(args: argparse.Namespace, report: RunReport, baseline: Baseline | None) -> tuple[list[str], int]:
    """The gate's verdict as lines (none when only the default gate is in play) and the exit code.

    The verdict is spelled out when a baseline, a stricter --fail-on or too few passed cases decide it;
    then it is the run's only PASS or FAIL.
    """
    from conformance.baseline import DEFAULT_FAIL_ON, describe_gate, gate
    from conformance.model import Outcome

    verdict = gate(report.results, baseline, args.fail_on, impact_clients(args, report))
    passed = sum(1 for result in report.results if result.outcome == Outcome.PASSED)
    too_few = passed < args.min_passed
    lines: list[str] = []
    if baseline is not None or args.fail_on != DEFAULT_FAIL_ON or too_few:
        lines = ["", *describe_gate(verdict, args.baseline)]
        if too_few:
            if verdict.ok:
                lines.pop()  # its PASS would contradict the FAIL below
            lines.append(f"  FAIL: {passed} {plural(passed, 'case')} passed, fewer than --min-passed {args.min_passed}")
    return lines, EXIT_OK if verdict.ok and not too_few else EXIT_FAILED


def imply_fail_on(args: argparse.Namespace) -> None:
    """--fail-on-impact CLIENT implies --fail-on breaks: applied once, right after the flags are parsed."""
    from conformance.baseline import BREAKS

    if args.fail_on_impact:
        args.fail_on = BREAKS


def wants_impact(args: argparse.Namespace) -> bool:
    """The gate reads the clients' impact: --fail-on breaks, or --fail-on-impact CLIENT (which implies it)."""
    from conformance.baseline import BREAKS

    return args.fail_on == BREAKS or bool(args.fail_on_impact)


def impact_clients(args: argparse.Namespace, report: RunReport) -> tuple[str, ...]:
    """The clients whose breakage fails the gate (none named: any). A gate on impact over a report
    without any is a usage error, not a pass."""
    if not wants_impact(args):
        return ()
    from conformance.model import Outcome

    judged = [result for result in report.results if result.outcome not in (Outcome.PASSED, Outcome.SKIPPED)]
    if judged and not any(result.impact for result in judged):
        raise UsageError(
            "--fail-on breaks needs the clients' impact: run with --impact, or `conformance impact REPORT.json` first"
        )
    return tuple(args.fail_on_impact or ())


def plural(count: int, noun: str) -> str:
    """`noun` for one, `noun` + s otherwise."""
    return noun if count == 1 else f"{noun}s"


def port_number(value: str) -> int:
    """An argparse type: a TCP port, 0 (a free one) to 65535."""
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value!r}")
    return int(value)


def wait_for_stop(flush: Callable[[], None] | None = None) -> None:
    """Block until Ctrl+C or SIGTERM (a CI job's stop); SIGUSR1 calls `flush` when there is one."""
    import signal
    import threading
    from types import FrameType

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    handlers = {signal.SIGINT: request_stop, signal.SIGTERM: request_stop}
    if flush is not None:

        def request_flush(signum: int, frame: FrameType | None) -> None:
            flush()

        handlers[signal.SIGUSR1] = request_flush
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def add_public_header(parser: argparse._ActionsContainer) -> None:
    """Declare --public-header for recorded traffic: a header that looks like a credential but is not one."""
    parser.add_argument(
        "--public-header",
        action="append",
        default=[],
        type=str.lower,
        metavar="NAME",
        help="a header whose name looks like a credential (*-key, *token*, *secret*, cookie...) but is not one: "
        "kept as it is, not redacted (repeatable)",
    )
