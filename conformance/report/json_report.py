"""report.json: the source of truth every other report (and the matrix) is rendered from."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from conformance.atomic import atomic_write_text
from conformance.model import CaseResult, Outcome, RunReport, Severity

REQUIRED_KEYS = ("schema_version", "target", "results")


def json_text(document: Any) -> str:
    """A document made by `strict_json` as one line of strict JSON (no NaN) or an error.

    Not indented: only then does the json module use its C encoder, some twenty times faster than the
    pure-Python one an indent needs (`python -m json.tool` indents a file for reading).
    """
    return json.dumps(document, ensure_ascii=False, allow_nan=False) + "\n"


def assembled_json_text(document: dict[str, Any], results: list[str]) -> str:
    """report.json's text (as `json_text` writes it) from a document whose "results" are left out, and the
    JSON text of each result, already strict: joined, not parsed and written again."""
    keys = list(document)
    split = keys.index("results")
    head = json.dumps({key: document[key] for key in keys[:split]}, ensure_ascii=False, allow_nan=False)
    tail = json.dumps({key: document[key] for key in keys[split + 1 :]}, ensure_ascii=False, allow_nan=False)
    return f'{head[:-1]}, "results": [{", ".join(results)}]{", " + tail[1:] if len(tail) > 2 else "}"}\n'


def write_json_document(path: Path, document: Any) -> Path:
    """Write a document made by `strict_json` atomically (see `json_text`)."""
    atomic_write_text(path, json_text(document))
    return path


def parse_timestamp(value: str) -> datetime | None:
    """Parse a report's ISO 8601 timestamp (a trailing "Z" included); None when absent or invalid."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return None


def run_seconds(report: RunReport) -> float:
    """Wall-clock length of the run; the sum of case durations when the timestamps are unusable.

    Cases run concurrently, so the sum overstates the run; it is only the fallback.
    """
    start, end = parse_timestamp(report.started_at), parse_timestamp(report.finished_at)
    if start is not None and end is not None and (start.tzinfo is None) == (end.tzinfo is None) and end >= start:
        return (end - start).total_seconds()
    return sum(result.duration for result in report.results)


def headline(result: CaseResult) -> str:
    """The one line that says why a case is not a plain pass; "" for a pass.

    Every report shows the same line: the first failing finding for failed and deviation cases,
    the transport error for error cases, the reason for skipped, unsupported and warning ones (a
    warning's reason is its first warning).
    """
    if result.outcome is Outcome.PASSED:
        return ""
    failures = [f.message for f in result.findings if f.severity is Severity.FAILURE]
    if result.outcome is Outcome.ERROR:
        candidates = [e.error or "" for e in result.exchanges] + [result.reason, *failures]
    elif result.outcome in (Outcome.FAILED, Outcome.DEVIATION):
        candidates = [*failures, result.reason]
    else:
        candidates = [result.reason, *failures]
    return next((text for text in candidates if text), "")


def load_report(path: str | os.PathLike[str]) -> RunReport:
    """Read a report.json back into a RunReport.

    Raises ValueError naming the file when it is not JSON, not a conformance report, or written
    by a newer schema than this version understands. A missing file raises FileNotFoundError.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}: not a conformance report (invalid JSON: {exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a conformance report (expected a JSON object, got {type(data).__name__})")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ValueError(f"{path}: not a conformance report (missing {', '.join(missing)})")
    version = data["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{path}: not a conformance report (schema_version {version!r} is not an integer)")
    if version > RunReport.SCHEMA_VERSION:
        raise ValueError(
            f"{path}: report schema_version {version} is newer than this tool understands "
            f"({RunReport.SCHEMA_VERSION}); upgrade conformance"
        )
    try:
        return RunReport.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{path}: malformed conformance report ({type(exc).__name__}: {exc})") from exc
