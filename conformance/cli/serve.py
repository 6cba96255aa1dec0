"""`conformance serve`: the embedded reference server in the foreground."""

from __future__ import annotations

import argparse
import secrets

from conformance.cli.common import EXIT_OK, UsageError, port_number, print_lines, wait_for_stop

DEFAULT_PORT = 8765


# The one line `conformance --help` shows for this command.
HELP = "run the embedded reference server in the foreground"


def register(commands: argparse._SubParsersAction) -> None:
    """Declare `serve` and its flags."""
    serve = commands.add_parser(
        "serve",
        help=HELP,
        description="Serve the reference emulation of the Anthropic Messages API until Ctrl+C or SIGTERM. It prints "
        "the URL it listens on (the real port with --port 0) and the API key it accepts.",
        epilog="Exit codes: 0 stopped, 2 usage error (a bad port, an address that cannot be bound).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="IPv4 address to bind (default: %(default)s)")
    serve.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help="port to bind, 0 for a free one (default: %(default)s)",
    )
    keys = serve.add_mutually_exclusive_group()
    keys.add_argument("--api-key", help="the only API key to accept (default: a random key, printed)")
    keys.add_argument(
        "--any-key", action="store_true", help="accept any non-empty key (then headers.bad-key cannot pass)"
    )
    serve.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from conformance.reference import ReferenceServer

    generated = not args.any_key and not args.api_key
    api_key = None if args.any_key else args.api_key or "ref-" + secrets.token_hex(16)
    server = ReferenceServer(api_key=api_key, host=args.host, port=args.port)
    try:
        server.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    try:
        # A generated key is a throwaway of this process: printing it is how a client learns it.
        key = "any non-empty key" if api_key is None else (api_key if generated else "the --api-key given")
        lines = [f"Reference server listening on {server.base_url} (Ctrl+C to stop)", f"  accepts: {key}"]
        if generated:
            lines.append(f"  conformance run --base-url {server.base_url} --api-key {api_key}")
        print_lines(lines)
        wait_for_stop()
    finally:
        server.stop()
    return EXIT_OK
