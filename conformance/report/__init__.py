"""The reports of a run: report.json (the source of truth), junit.xml for CI, report.html to read.

Every file is rendered from one document: the run's bounded evidence as strict JSON, redacted
(conformance.report.evidence), made once per run and read back for junit.xml and report.html.
`load_report` reads report.json back so the other reports (and the matrix) can be rebuilt later
from it alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformance.atomic import TEMP_SUFFIX, atomic_write, atomic_write_text
from conformance.model import RunReport
from conformance.redact import Redactor
from conformance.report.evidence import report_document
from conformance.report.html import stream_html
from conformance.report.json_report import json_text, load_report
from conformance.report.junit import render_junit

__all__ = ["REPORT_FILES", "clear_reports", "load_report", "write_reports", "write_reports_from_text"]

REPORT_FILES = {"json": "report.json", "junit": "junit.xml", "html": "report.html"}


def write_reports(report: RunReport, out_dir: Path, redactor: Redactor | None = None) -> dict[str, Path]:
    """Write report.json, junit.xml and report.html into `out_dir` (created if needed).

    Returns their paths keyed "json", "junit" and "html". Each file is replaced atomically; every
    string in them has passed through `redactor` (when given) and the evidence bounds.
    """
    document = report_document(report, redactor)
    return _write_all(Path(out_dir), json_text(document), document)[0]


def write_reports_from_text(text: str, out_dir: Path) -> tuple[dict[str, Path], RunReport]:
    """`write_reports` from report.json's text, made already (the proxy assembles it from results made strict
    and redacted as they were judged): report.json is written first, as it is. Returns the paths and the
    report as the files hold it."""
    return _write_all(Path(out_dir), text, None)


def _write_all(out_dir: Path, text: str, document: dict[str, Any] | None) -> tuple[dict[str, Path], RunReport]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / name for kind, name in REPORT_FILES.items()}
    atomic_write_text(paths["json"], text)
    kept = RunReport.from_dict(document if document is not None else json.loads(text))
    del document
    atomic_write_text(paths["junit"], render_junit(kept))
    atomic_write(paths["html"], lambda handle: handle.writelines(stream_html(kept)))
    return paths, kept


def clear_reports(out_dir: Path) -> list[Path]:
    """Remove the report files (and half-written temporary ones) a previous run left in `out_dir`.

    Called when a run starts, so that a run that ends early never leaves an older run's reports
    looking like its own. Returns what was removed; a missing directory is fine.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    removed = []
    for name in REPORT_FILES.values():
        for path in [out_dir / name, *out_dir.glob(f".{name}.*{TEMP_SUFFIX}")]:
            if path.is_file():
                path.unlink()
                removed.append(path)
    return removed
