"""A generated failure as files anyone can use: a plain case and a curl command.

`<id>.yaml` is a case file in the format of cases/ (`conformance run --cases DIR` runs it, and it
can be copied into cases/ as it is); `<id>.curl.sh` sends the exact bytes again with curl, the key
taken from `$ANTHROPIC_API_KEY`, never written down.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml

from conformance.atomic import atomic_write_text
from conformance.curl import KEY_VARIABLE, curl_lines
from conformance.generate.build import GeneratedCase
from conformance.model import CaseResult, Exchange
from conformance.report.json_report import headline
from conformance.target import Target

FAILURES_DIR = "generated-failures"


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
    lines = [
        "#!/bin/sh",
        f"# {generated.case.id}: {generated.case.title}",
        f"# Usage: {KEY_VARIABLE}=... sh {generated.case.id}.curl.sh",
        "set -eu",
        *curl_lines(exchange.request, target.auth or "x-api-key"),
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
