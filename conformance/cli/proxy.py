"""`conformance proxy`: relay a real client's traffic to a gateway and judge every exchange on the way."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from urllib.parse import urlsplit

from conformance.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_public_header,
    add_read_bounds,
    check_names,
    port_number,
    positive,
    print_lines,
    wait_for_stop,
)
from conformance.proxy.defaults import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_EXCHANGES, PROXY_MAX_SILENCE, RESULTS_FILE

DEFAULT_LISTEN = "127.0.0.1:8788"
DEFAULT_OUT = Path("reports/proxy")
EXIT_CODES_PROXY = (
    "Exit codes (once stopped with Ctrl+C or SIGTERM): 0 every judged exchange passed, 1 some exchange failed, "
    "errored or could not be judged (an answer the client saw as an error, a stream it could not parse and an "
    "unreachable upstream included), 2 usage error (bad flags, the address cannot be bound)."
)


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as {DEFAULT_LISTEN}, got {value!r}")
    return host.strip("[]"), port_number(port)


def _upstream(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http(s) base URL such as http://127.0.0.1:4000, got {value!r}")
    return value.rstrip("/")


# The one line `conformance --help` shows for this command.
HELP = "relay a real client's traffic to a gateway and judge every exchange on the way"


def register(commands: argparse._SubParsersAction) -> None:
    """Declare `proxy` and its flags."""
    from conformance.transport import Limits

    proxy = commands.add_parser(
        "proxy",
        help=HELP,
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
        type=positive(float),
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
        type=positive(float),
        default=Limits.connect_timeout,
        metavar="S",
        help="longest wait to connect to the upstream (default: %(default)s)",
    )
    bounds.add_argument(
        "--max-exchanges",
        type=positive(int),
        default=DEFAULT_MAX_EXCHANGES,
        metavar="N",
        help="exchanges recorded and judged; later ones are only relayed (default: %(default)s)",
    )
    bounds.add_argument(
        "--header-timeout",
        type=positive(float),
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="S",
        help="longest a client may take to send a request's headers before its connection is closed "
        "(default: %(default)s)",
    )
    proxy.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from conformance.model import Outcome
    from conformance.proxy.server import ProxyServer
    from conformance.proxy.session import ProxySession
    from conformance.report.console import ConsoleReporter
    from conformance.specs.profiles import ProfileError, known_providers, load_profile
    from conformance.transport import Limits

    check_names("provider", [args.provider], known_providers())
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
        console=True,
        verbose=args.verbose,
    )
    # Each exchange's line is printed by the judge; this reporter prints the summary on stop, with every
    # credential the session learnt: it prints nothing unredacted.
    reporter = ConsoleReporter(verbose=args.verbose, titles=True, redactor=session.redactor)
    host, port = args.listen
    server = ProxyServer(args.upstream, session, host=host, port=port, header_timeout=args.header_timeout)
    try:
        with server:
            print_lines(
                [
                    f"conformance proxy on {server.base_url} -> {args.upstream} (provider {args.provider})",
                    f"  point a client at it: ANTHROPIC_BASE_URL={server.base_url}",
                    f"  each exchange appended to {args.out / RESULTS_FILE}; the reports written on stop "
                    f"(kill -USR1 {os.getpid()} writes them now); Ctrl+C to stop",
                ]
            )
            wait_for_stop(session.request_flush)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    assert server.report is not None
    reporter.finish(server.report, server.paths)
    tally = session.tally()
    print_lines([tally.line()])
    gated = (Outcome.FAILED, Outcome.ERROR)
    failed = any(result.outcome in gated for result in server.report.results) or tally.not_judged
    return EXIT_FAILED if failed else EXIT_OK
