"""The reports of a run: report.json (the source of truth), junit.xml for CI, report.html to read.

Every file is rendered from a RunReport; `load_report` reads report.json back so the other
reports (and the matrix) can be rebuilt later from it alone.
"""

from __future__ import annotations

from pathlib import Path

from conformance.model import RunReport
from conformance.report.html import render_html
from conformance.report.json_report import atomic_write_text, load_report, write_json_report
from conformance.report.junit import render_junit

__all__ = ["load_report", "write_reports"]


def write_reports(report: RunReport, out_dir: Path) -> dict[str, Path]:
    """Write report.json, junit.xml and report.html into `out_dir` (created if needed).

    Returns their paths keyed "json", "junit" and "html". Each file is replaced atomically.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "junit": out_dir / "junit.xml", "html": out_dir / "report.html"}
    write_json_report(report, paths["json"])
    atomic_write_text(paths["junit"], render_junit(report))
    atomic_write_text(paths["html"], render_html(report))
    return paths
