"""A generated failure as files anyone can use: a plain case and a curl command.

`<id>.yaml` is a case file in the format of cases/ (`conformance run --cases DIR` runs it, and it
can be copied into cases/ as it is); `<id>.curl.sh` sends the exact bytes again with curl, the key
taken from `$ANTHROPIC_API_KEY`, never written down.
"""

from __future__ import annotations

import json
import shlex
import textwrap
from pathlib import Path
from typing import Any

import yaml

from conformance.generate.build import GeneratedCase
from conformance.model import CaseResult, Exchange
from conformance.report.json_report import atomic_write_text, headline
from conformance.target import Target

FAILURES_DIR = "generated-failures"
# Headers the script sets itself (credentials) or that curl computes (length, host).
_OWN_HEADERS = frozenset({"x-api-key", "authorization", "content-length", "host"})
_KEY_VARIABLE = "ANTHROPIC_API_KEY"


def case_document(generated: GeneratedCase, result: CaseResult, seed: int) -> str:
    """The case as a cases/ file: one case, with where it came from and why it failed as comments."""
    case = generated.case
    step = case.steps[0]
    request: dict[str, Any] = {"endpoint": step.request.endpoint}
    if step.request.raw_body is not None:
        request["raw_body"] = step.request.raw_body
    else:
        request["body"] = step.request.body
    entry: dict[str, Any] = {"id": case.id, "title": case.title, "spec": case.spec, "tier": case.tier}
    if case.requires:
        entry["requires"] = sorted(case.requires)
    entry["request"] = request
    entry["expect"] = step.expect
    document = {"feature": case.feature, "cases": [entry]}
    header = [
        f"# Generated from the contract by `conformance run --generated --seed {seed}`, shrunk to the smallest",
        "# request that still fails. Run it alone with `conformance run --cases DIR`, or copy it into cases/.",
        *(f"# {line}" for line in textwrap.wrap(_printable(f"Failed: {headline(result)}"), 110)),
    ]
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)
    return "\n".join(header) + "\n" + body


def curl_script(generated: GeneratedCase, exchange: Exchange, target: Target) -> str:
    """A POSIX shell script sending the exchange's request again with curl (the body byte for byte)."""
    request = exchange.request
    if request.raw_body is not None:
        content = request.raw_body.encode()
    else:
        content = json.dumps(request.body, ensure_ascii=False).encode()
    headers = [
        f"-H {shlex.quote(f'{name}: {value}')}"
        for name, value in request.headers.items()
        if name.lower() not in _OWN_HEADERS
    ]
    if target.auth == "bearer":
        headers.append(f'-H "authorization: Bearer ${_KEY_VARIABLE}"')
    elif target.auth != "none":
        headers.append(f'-H "x-api-key: ${_KEY_VARIABLE}"')
    lines = [
        "#!/bin/sh",
        f"# {generated.case.id}: {generated.case.title}",
        f"# Usage: {_KEY_VARIABLE}=... sh {generated.case.id}.curl.sh",
        "set -eu",
        f"printf {_printf_format(content)} |",
        f"  curl -sS -N -X {shlex.quote(request.method)} {shlex.quote(request.url)} \\",
        *(f"  {header} \\" for header in headers),
        "  --data-binary @-",
    ]
    return "\n".join(lines) + "\n"


def export_failure(
    generated: GeneratedCase, result: CaseResult, target: Target, seed: int, out_dir: Path
) -> dict[str, str]:
    """Write `<out_dir>/generated-failures/<id>.yaml` and `<id>.curl.sh`; return their paths."""
    directory = Path(out_dir) / FAILURES_DIR
    directory.mkdir(parents=True, exist_ok=True)
    case_path = directory / f"{generated.case.id}.yaml"
    atomic_write_text(case_path, case_document(generated, result, seed))
    paths = {"yaml": str(case_path)}
    sent = next((exchange for exchange in result.exchanges if exchange.error is None), None)
    if sent is not None:
        curl_path = directory / f"{generated.case.id}.curl.sh"
        atomic_write_text(curl_path, curl_script(generated, sent, target))
        curl_path.chmod(0o755)
        paths["curl"] = str(curl_path)
    return paths


def clear_exports(out_dir: Path) -> None:
    """Remove the exports of an earlier run into the same directory (only the files it writes)."""
    directory = Path(out_dir) / FAILURES_DIR
    for pattern in ("*.yaml", "*.curl.sh"):
        for path in directory.glob(pattern):
            path.unlink()


def _printable(text: str) -> str:
    """Text from the endpoint, fit for a YAML comment (which may hold printable characters only)."""
    return "".join(char if char.isprintable() else " " for char in text)


def _printf_format(content: bytes) -> str:
    """The bytes as a single-quoted printf format: printable ASCII as it is, the rest escaped in octal."""
    out = []
    for byte in content:
        char = chr(byte)
        if char == "%":
            out.append("%%")
        elif char == "\\":
            out.append("\\\\")
        elif char == "'" or not 0x20 <= byte < 0x7F:
            out.append(f"\\{byte:03o}")
        else:
            out.append(char)
    return "'" + "".join(out) + "'"
