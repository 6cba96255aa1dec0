"""`conformance specs merge | diff | vendor | drift`: the contracts under specs/, without a request to a target.

`add_parser(commands, help)` registers the `specs` command on the main parser's subcommands. Every
handler returns an exit code: 0 done, 1 the work failed (stale file, unreachable source...),
2 a usage error (unknown provider, bad directory).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.specs.compare import Status
from conformance.specs.diff import KEY_ROWS, SYMBOLS, build_matrix
from conformance.specs.documents import SpecError
from conformance.specs.drift import DEFAULT_SDK_VERSION
from conformance.specs.profiles import ProfileError, known_providers
from conformance.specs.render import FORMATS, write_matrix

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_REPORTS = Path("reports/specs")


def _providers(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of providers")
    return names


def _error(message: str) -> None:
    print(f"conformance specs: error: {message}", file=sys.stderr)


def add_parser(commands: argparse._SubParsersAction, help: str) -> None:
    """Register `specs` (with `help` as its one line) and its subcommands on the main parser's subcommands."""
    specs = commands.add_parser(
        "specs",
        help=help,
        description="Work with the contracts under specs/: Anthropic's canonical contract "
        "(specs/anthropic/openapi.yaml) and each provider's documented contract and profile "
        "(specs/<provider>/openapi.yaml, profile.yaml).",
        epilog="Exit codes: 0 done, 1 the work failed (stale file, unreachable source), 2 usage error.",
    )
    actions = specs.add_subparsers(dest="specs_command", metavar="ACTION", required=True)

    merge = actions.add_parser(
        "merge",
        help="write specs/canonical.yaml: Anthropic's contract annotated with every provider's",
        description="Write specs/canonical.yaml: the canonical contract with, on every schema node, which "
        "providers' docs accept the field and where they are narrower, wider or conflicting; provider-only "
        "fields are added with x-extension: true. Running it twice changes nothing.",
        epilog="Exit codes: 0 written (or up to date), 1 --check found the file stale, 2 usage error.",
    )
    merge.add_argument(
        "--check", action="store_true", help="only check that the committed file is up to date (exit 1 if stale)"
    )
    merge.add_argument("--specs", type=Path, metavar="DIR", help="the specs directory (default: the built-in specs/)")
    merge.set_defaults(handler=cmd_merge)

    diff = actions.add_parser(
        "diff",
        help="the field x provider matrix: where each provider's docs depart from Anthropic's",
        description="Compare every provider's documented contract with Anthropic's, field by field: same, added, "
        "missing, narrower, wider or conflicting. Prints the headline matrix and writes the full one as "
        "matrix.md, matrix.html and matrix.json.",
        epilog="Exit codes: 0 written, 2 usage error (unknown provider, unreadable spec).",
    )
    diff.add_argument(
        "--format",
        action="append",
        choices=FORMATS,
        help="a format to write (repeatable; default: md, html and json)",
    )
    diff.add_argument(
        "--out", type=Path, default=DEFAULT_REPORTS, metavar="DIR", help="report directory (default: %(default)s)"
    )
    diff.add_argument(
        "--providers", type=_providers, metavar="LIST", help="comma-separated providers to compare (default: all)"
    )
    diff.add_argument("--specs", type=Path, metavar="DIR", help="the specs directory (default: the built-in specs/)")
    diff.add_argument("-q", "--quiet", action="store_true", help="print only the paths written")
    diff.set_defaults(handler=cmd_diff)

    vendor = actions.add_parser(
        "vendor",
        help="copy a provider's published OpenAPI into specs/PROVIDER/vendor/ and compare it",
        description="Fetch (URL) or copy (FILE, with the local files its $refs name) a provider's published OpenAPI "
        "document into specs/PROVIDER/vendor/, record its provenance (source, date, sha256 of every file, the "
        "operations found) in provenance.yaml, and print how it differs from the canonical contract.",
        epilog="Exit codes: 0 vendored, 1 the source could not be read or is not an OpenAPI document, 2 usage error.",
    )
    vendor.add_argument("provider", metavar="PROVIDER", help="a provider with a profile under specs/")
    vendor.add_argument(
        "--from", dest="source", required=True, metavar="URL|FILE", help="where the provider publishes its OpenAPI"
    )
    vendor.add_argument("--specs", type=Path, metavar="DIR", help="the specs directory (default: the built-in specs/)")
    vendor.set_defaults(handler=cmd_vendor)

    drift = actions.add_parser(
        "drift",
        help="compare our contract with the official Python SDK's types (installed from PyPI into a cache)",
        description="Install the official Python SDK (`anthropic`, pinned by default) into a cache folder, derive "
        "JSON Schemas from its types (Messages create and count_tokens params, GA and beta; Message; every stream "
        "event; errors; count_tokens response) and print where specs/anthropic/openapi.yaml departs from them: what "
        "our contract lacks or wrongly forbids, what it has that the SDK lacks, and what it accepts without a beta "
        "that the SDK has only in beta, each with the SDK type it comes from. Differences recorded with a reason in "
        "specs/anthropic/drift-allow.yaml are explained; the others are drift.",
        epilog="Exit codes: 0 no unexplained drift, 1 unexplained drift (or the SDK could not be installed or "
        "read), 2 usage error.",
    )
    version = drift.add_mutually_exclusive_group()
    version.add_argument(
        "--sdk-version",
        metavar="V",
        help=f"the `anthropic` release to compare with (default: {DEFAULT_SDK_VERSION}, the one the contract follows)",
    )
    version.add_argument("--latest", action="store_true", help="the newest `anthropic` release on PyPI")
    drift.add_argument(
        "--cache", type=Path, metavar="DIR", help="where SDK releases are installed (default: ~/.cache/conformance/sdk)"
    )
    drift.add_argument("--specs", type=Path, metavar="DIR", help="the specs directory (default: the built-in specs/)")
    drift.add_argument("-v", "--verbose", action="store_true", help="also print the explained differences and why")
    drift.set_defaults(handler=cmd_drift)


def _specs_dir(args: argparse.Namespace) -> Path | None:
    if args.specs is not None and not (args.specs / "anthropic" / "openapi.yaml").is_file():
        raise ProfileError(f"{args.specs} has no anthropic/openapi.yaml")
    return args.specs


def cmd_merge(args: argparse.Namespace) -> int:
    from conformance.specs.merge import canonical_path, render_canonical

    try:
        directory = _specs_dir(args)
        target = canonical_path(directory)
        text = render_canonical(build_matrix(directory=directory))
    except SpecError as exc:
        _error(str(exc))
        return EXIT_USAGE
    current = target.read_text(encoding="utf-8") if target.is_file() else None
    if args.check:
        if current != text:
            _error(f"{target} is stale: run `conformance specs merge`")
            return EXIT_FAILED
        print(f"{target} is up to date")
        return EXIT_OK
    if current == text:
        print(f"{target} is up to date")
    else:
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    try:
        directory = _specs_dir(args)
        unknown = set(args.providers or []) - set(known_providers(directory))
        if unknown:
            raise ProfileError(f"unknown providers {sorted(unknown)}; known: {', '.join(known_providers(directory))}")
        matrix = build_matrix(args.providers, directory)
    except SpecError as exc:
        _error(str(exc))
        return EXIT_USAGE
    formats = tuple(dict.fromkeys(args.format)) if args.format else FORMATS
    paths = write_matrix(matrix, args.out, formats)
    if not args.quiet:
        counts = matrix.counts()
        print("verdicts per provider: " + ", ".join(f"{SYMBOLS[s]} {s.value}" for s in Status))
        for name in matrix.providers:
            print(f"  {name:<12}" + " ".join(f"{counts[name][s.value]:>6}" for s in Status))
        print()
        width = max(len(row.path) for row in matrix.rows if KEY_ROWS.match(row.path))
        print(" " * width + "  " + " ".join(f"{name[:8]:>8}" for name in matrix.providers))
        for row in matrix.shown():
            if KEY_ROWS.match(row.path):
                cells = (SYMBOLS[row.cells[name].status] for name in matrix.providers)
                print(f"{row.path:<{width}}  " + " ".join(f"{cell:>8}" for cell in cells))
        print()
    for path in paths:
        print(f"wrote {path}")
    return EXIT_OK


def cmd_vendor(args: argparse.Namespace) -> int:
    from conformance.specs.vendor import VendorError, vendor

    try:
        directory = _specs_dir(args)
        result = vendor(args.provider, args.source, directory)
    except VendorError as exc:
        _error(str(exc))
        return EXIT_FAILED
    except SpecError as exc:
        _error(str(exc))
        return EXIT_USAGE
    provenance = result.provenance
    print(
        f"vendored {provenance['source']} into {result.directory} (root {provenance['root']}, "
        f"{len(provenance['files'])} file(s), OpenAPI {provenance['openapi']})"
    )
    for item in provenance["files"]:
        print(f"  {item['sha256']}  {item['path']} ({item['bytes']} bytes)")
    matrix = result.matrix
    if matrix is None:
        print("no POST .../messages operation found: nothing to compare")
        return EXIT_OK
    name = args.provider
    differing = [row for row in matrix.rows if row.cells[name].status is not Status.SAME]
    shown = [row for row in differing if not matrix.implied(row, name)]
    print(
        f"against the canonical contract: {len(differing)} of {len(matrix.rows)} fields differ "
        f"({len(differing) - len(shown)} inside a missing or added field not listed)"
    )
    for row in shown:
        cell = row.cells[name]
        detail = f"  {cell.detail}" if cell.detail else ""
        print(f"  {SYMBOLS[cell.status]} {cell.status.value:<11} {row.path}{detail}")
    if result.unresolved:
        print(f"{len(result.unresolved)} reference(s) could not be followed, e.g. {result.unresolved[0]}")
    return EXIT_OK


def cmd_drift(args: argparse.Namespace) -> int:
    from conformance.specs.drift import KINDS, DriftError, allow_path, check_version, drift

    version = None if args.latest else (args.sdk_version or DEFAULT_SDK_VERSION)
    try:
        if version is not None:
            check_version(version)
        directory = _specs_dir(args)
    except (DriftError, SpecError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    try:
        print(f"installing anthropic {version or '(latest)'} into the cache (once per release)...", file=sys.stderr)
        result = drift(version, args.cache, directory)
    except DriftError as exc:
        _error(str(exc))
        return EXIT_FAILED
    except SpecError as exc:
        _error(str(exc))
        return EXIT_USAGE
    allow = allow_path(directory)
    print(
        f"anthropic {result.sdk_version} against our contract: "
        f"{len(result.explained) + len(result.unexplained)} differences, {len(result.explained)} explained by "
        f"{allow.name}, {len(result.unexplained)} unexplained"
    )
    for kind, heading in KINDS.items():
        found = [difference for difference in result.unexplained if difference.kind == kind]
        if found:
            print(f"\n{heading} ({len(found)}):")
            for difference in found:
                where = f"  [{difference.sdk_type}]" if difference.sdk_type else ""
                print(f"  {difference.path}: {difference.detail}{where}")
    if args.verbose and result.explained:
        print("\nexplained:")
        for difference, allowance in result.explained:
            print(f"  {difference.kind:<10} {difference.path}: {allowance.reason}")
    if result.unused:
        print(f"\n{len(result.unused)} entries of {allow.name} match nothing in this release:")
        for allowance in result.unused:
            print(f"  {allowance.kind:<10} {allowance.path}")
    return EXIT_FAILED if result.unexplained else EXIT_OK
