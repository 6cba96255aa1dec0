"""`conformance proxy` and `conformance cases from-capture`, registered on the main parser by
conformance.cli (`add_parser(commands)` and `add_from_capture_parser(case_commands)`)."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from conformance.cases import TIERS
from conformance.model import Outcome
from conformance.proxy.defaults import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_EXCHANGES, PROXY_MAX_SILENCE, RESULTS_FILE

DEFAULT_LISTEN = "127.0.0.1:8788"
DEFAULT_OUT = Path("reports/proxy")
EXIT_CODES_PROXY = (
    "Exit codes (once stopped with Ctrl+C or SIGTERM): 0 every judged exchange passed, 1 some exchange failed, "
    "errored or could not be judged (an answer the client saw as an error, a stream it could not parse and an "
    "unreachable upstream included), 2 usage error (bad flags, the address cannot be bound)."
)
EXIT_CODES_FROM_CAPTURE = "Exit codes: 0 written, 2 usage error (no capture there, nothing to turn into cases)."


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as {DEFAULT_LISTEN}, got {value!r}")
    return host.strip("[]"), int(port)


def _upstream(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http(s) base URL such as http://127.0.0.1:4000, got {value!r}")
    return value.rstrip("/")


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `proxy` on the main parser's subcommands."""
    from conformance.cli import _positive, add_read_bounds
    from conformance.transport import Limits

    proxy = commands.add_parser(
        "proxy",
        help="relay a real client's traffic to a gateway and judge every exchange on the way",
        description="An HTTP proxy to point a client at (ANTHROPIC_BASE_URL=http://HOST:PORT). Every request is "
        "forwarded to the upstream unchanged and every answer relayed as it arrives, streams included; each "
        f"exchange is recorded (redacted), judged by every contract check, printed and appended to OUT/{RESULTS_FILE}; "
        "report.json, junit.xml, report.html and cassette.json are written on stop (and on SIGUSR1). A check never "
        "changes what the client gets. Stop it with Ctrl+C.",
        epilog=EXIT_CODES_PROXY,
    )
    proxy.add_argument(
        "--listen",
        type=_listen,
        default=_listen(DEFAULT_LISTEN),
        metavar="HOST:PORT",
        help=f"address to listen on (default: {DEFAULT_LISTEN}; loopback only unless you say otherwise)",
    )
    proxy.add_argument(
        "--upstream", type=_upstream, required=True, metavar="URL", help="the gateway's base URL, as ANTHROPIC_BASE_URL"
    )
    proxy.add_argument(
        "--provider", default="anthropic", help="provider profile the upstream is judged by (default: %(default)s)"
    )
    proxy.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help="report directory (default: %(default)s)"
    )
    proxy.add_argument("-v", "--verbose", action="store_true", help="print every finding of every exchange")
    proxy.add_argument(
        "--flush-every",
        type=_positive(float),
        metavar="S",
        help="also write the report files every S seconds while exchanges come in (default: only on stop and "
        "on SIGUSR1)",
    )
    add_public_header(proxy)
    bounds = proxy.add_argument_group("bounds (the relayed traffic is never cut; only the recorded copy is)")
    add_read_bounds(
        bounds,
        silence_default=PROXY_MAX_SILENCE,
        body_help="bytes of each request and response body kept for judging",
        events_help="events of each stream kept for judging",
    )
    bounds.add_argument(
        "--connect-timeout",
        type=_positive(float),
        default=Limits.connect_timeout,
        metavar="S",
        help="longest wait to connect to the upstream (default: %(default)s)",
    )
    bounds.add_argument(
        "--max-exchanges",
        type=_positive(int),
        default=DEFAULT_MAX_EXCHANGES,
        metavar="N",
        help="exchanges recorded and judged; later ones are only relayed (default: %(default)s)",
    )
    bounds.add_argument(
        "--header-timeout",
        type=_positive(float),
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="S",
        help="longest a client may take to send a request's headers before its connection is closed "
        "(default: %(default)s)",
    )
    proxy.set_defaults(handler=cmd_proxy)


def add_public_header(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--public-header",
        action="append",
        default=[],
        metavar="NAME",
        help="a header whose name looks like a credential (*-key, *token*, *secret*, cookie...) but is not one: "
        "kept as it is, not redacted (repeatable)",
    )


def add_from_capture_parser(case_commands: argparse._SubParsersAction) -> None:
    """Register `from-capture` on the subcommands of `conformance cases`."""
    from conformance.cli import _positive

    capture = case_commands.add_parser(
        "from-capture",
        help="turn requests recorded by `conformance proxy` (or --record) into replayable cases",
        description="Write a case file (docs/cases.md format) with one case per distinct Messages API request "
        "recorded in DIR: the same path, headers and body, expecting it accepted (and streamed when it asked "
        "for a stream). Credentials are never written: each case sends the target's own, and other headers "
        "whose name looks like a credential are left out (listed in a comment).",
        epilog=EXIT_CODES_FROM_CAPTURE,
    )
    capture.add_argument("capture", type=Path, metavar="DIR", help="the proxy's --out (or a --record) directory")
    capture.add_argument(
        "-o", "--output", type=Path, required=True, metavar="FILE", help="case file to write, e.g. cases/clients/x.yaml"
    )
    capture.add_argument(
        "--shorten",
        type=_positive(int),
        metavar="N",
        help="replace every text longer than N characters with filler of the same size ({$text: {bytes: ...}})",
    )
    capture.add_argument(
        "--feature", help="feature and id prefix of the cases (default: clients.<the file's name without .yaml>)"
    )
    capture.add_argument("--tier", choices=TIERS, default="provider", help="tier of the cases (default: %(default)s)")
    capture.add_argument(
        "--keep-model", action="store_true", help="keep the recorded model names instead of $model (the target's)"
    )
    add_public_header(capture)
    capture.set_defaults(handler=cmd_from_capture)


def cmd_proxy(args: argparse.Namespace) -> int:
    from conformance.cli import EXIT_FAILED, EXIT_OK, UsageError, _print_lines
    from conformance.proxy.server import ProxyServer
    from conformance.proxy.session import ProxySession
    from conformance.report.console import ConsoleReporter
    from conformance.specs.profiles import ProfileError, load_profile
    from conformance.transport import Limits

    try:
        profile = load_profile(args.provider)
    except ProfileError as exc:
        raise UsageError(str(exc)) from None
    limits = Limits(
        connect_timeout=args.connect_timeout,
        max_silence=args.max_silence,
        max_body_bytes=args.max_body_bytes,
        max_events=args.max_events,
    )
    session = ProxySession(
        args.upstream,
        args.out,
        provider=args.provider,
        profile=profile,
        limits=limits,
        max_exchanges=args.max_exchanges,
        flush_every=args.flush_every,
        public_headers=frozenset(args.public_header),
    )
    # The console learns each credential as the session does: it prints nothing unredacted.
    session.reporter = reporter = ConsoleReporter(verbose=args.verbose, titles=True, redactor=session.redactor)
    host, port = args.listen
    server = ProxyServer(args.upstream, session, host=host, port=port, header_timeout=args.header_timeout)
    try:
        with server:
            _print_lines(
                [
                    f"conformance proxy on {server.base_url} -> {args.upstream} (provider {args.provider})",
                    f"  point a client at it: ANTHROPIC_BASE_URL={server.base_url}",
                    f"  each exchange appended to {args.out / RESULTS_FILE}; the reports written on stop "
                    f"(kill -USR1 {os.getpid()} writes them now); Ctrl+C to stop",
                ]
            )
            _wait_for_stop(session.request_flush)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    assert server.report is not None
    reporter.finish(server.report, server.paths)
    tally = session.tally()
    _print_lines([tally.line()])
    gated = (Outcome.FAILED, Outcome.ERROR)
    failed = any(result.outcome in gated for result in server.report.results) or tally.not_judged
    return EXIT_FAILED if failed else EXIT_OK


def _wait_for_stop(flush: Callable[[], None]) -> None:
    """Block until Ctrl+C or SIGTERM (a CI job's stop) asks the proxy to stop; SIGUSR1 calls `flush`."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def request_flush(signum: int, frame: FrameType | None) -> None:
        flush()

    handlers = {signal.SIGINT: request_stop, signal.SIGTERM: request_stop, signal.SIGUSR1: request_flush}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_from_capture(args: argparse.Namespace) -> int:
    from conformance.cli import EXIT_OK, UsageError, _print_lines
    from conformance.proxy.capture_cases import CaptureError, Options, build_cases, recorded_exchanges, write_cases

    feature = args.feature or f"clients.{args.output.name.removesuffix('.yaml')}"
    options = Options(
        feature=feature,
        tier=args.tier,
        shorten=args.shorten,
        keep_model=args.keep_model,
        public_headers=frozenset(name.lower() for name in args.public_header),
    )
    try:
        base_url, exchanges = recorded_exchanges(args.capture)
    except CaptureError as exc:
        raise UsageError(str(exc)) from None
    cases = build_cases(exchanges, base_url, options)
    if not cases:
        raise UsageError(f"{args.capture}: no Messages API request was recorded there")
    try:
        path = write_cases(cases, args.output, options, str(args.capture))
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    _print_lines([f"{len(cases)} cases from {len(exchanges)} recorded exchanges written to {path}"])
    return EXIT_OK
