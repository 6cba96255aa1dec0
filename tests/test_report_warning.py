"""A `warning` case in every report: console, report.json, junit.xml, report.html, the matrix and profiles."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console

from conformance.consumers import READY, READY_WITH_WARNINGS, Profile, readiness
from conformance.model import CaseResult, Exchange, Finding, Outcome, Request, Response, RunReport, Severity, TargetInfo
from conformance.report import write_reports
from conformance.report.console import ConsoleReporter
from conformance.report.matrix import build_matrix, render_matrix_markdown, write_matrix

WHY = "50.1 s passed without any event before event 2 (ping)"
PROFILE = Profile(name="streamer", title="Stream client", features=frozenset({"streaming"}))


def warned_report() -> RunReport:
    exchange = Exchange(
        Request("POST", "http://gw.test/v1/messages", {}, {"model": "m"}), Response(200, {}, json={"ok": 1})
    )
    warned = CaseResult(
        id="streaming.keepalive",
        feature="streaming",
        outcome=Outcome.WARNING,
        reason=WHY,
        findings=[Finding("stream.keepalive", WHY, "stream.ping", Severity.WARNING)],
        exchanges=[exchange],
    )
    passed = CaseResult(id="streaming.text", feature="streaming", outcome=Outcome.PASSED, exchanges=[exchange])
    return RunReport(
        target=TargetInfo("http://gw.test", "gw", "m"),
        started_at="2025-03-04T05:06:07+00:00",
        finished_at="2025-03-04T05:06:08+00:00",
        results=[passed, warned],
    )


def test_console_counts_warnings_explains_them_and_passes() -> None:
    report = warned_report()
    buffer = io.StringIO()
    reporter = ConsoleReporter(Console(file=buffer, width=120))
    reporter.start(report.target, len(report.results))
    for result in report.results:
        reporter.case_done(result)
    reporter.finish(report, {})
    output = buffer.getvalue()
    lines = output.splitlines()
    warned = next(i for i, line in enumerate(lines) if "WARNING" in line and "streaming.keepalive" in line)
    assert lines[warned + 1].strip() == WHY
    assert re.search(r"^\s*warning\s+1\s*$", output, re.MULTILINE)
    assert "PASS  1 passed, 1 warning in" in output
    assert "Failing cases" not in output


def test_report_json_junit_and_html_show_the_warning(tmp_path: Path) -> None:
    paths = write_reports(warned_report(), tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["summary"]["warning"] == 1 and data["summary"]["failed"] == 0
    assert data["results"][1]["outcome"] == "warning"
    assert data["results"][1]["findings"][0]["severity"] == "warning"

    suite = ET.parse(paths["junit"]).getroot().find("testsuite")
    assert suite is not None and suite.attrib["failures"] == "0" and suite.attrib["errors"] == "0"
    case = suite.find("testcase[@name='streaming.keepalive']")
    assert case is not None and case.find("failure") is None and case.find("skipped") is None
    out = case.findtext("system-out") or ""
    assert out.startswith("outcome: warning\nreason: " + WHY)
    assert f"warning: stream.keepalive: {WHY} [stream.ping]" in out

    html = paths["html"].read_text(encoding="utf-8")
    assert re.search(r'data-summary="warning">\s*<div class="n">1</div>', html)
    assert 'class="chip o-warning" data-outcome="warning"' in html  # its own filter toggle
    assert ".o-warning { --c: var(--warning); }" in html and "--warning: #" in html  # its own colour
    assert '<span class="sev sev-warning">warning</span>' in html


def test_matrix_cells_and_profile_rows_show_warnings(tmp_path: Path) -> None:
    matrix = build_matrix([("gw/report.json", warned_report())], [PROFILE])
    streaming = next(row for row in matrix.rows if row.name == "streaming")
    assert streaming.cells[0].worst is Outcome.WARNING
    profile = next(row for row in matrix.rows if row.kind == "profile")
    assert profile.readiness(profile.cells[0]) == READY_WITH_WARNINGS
    assert "🟡 1" in render_matrix_markdown(matrix) and "ready with warnings" in render_matrix_markdown(matrix)
    paths = write_matrix(matrix, tmp_path)
    cell = next(row for row in json.loads(paths["json"].read_text())["rows"] if row["name"] == "streaming")["cells"][0]
    assert cell["worst"] == "warning" and cell["counts"]["warning"] == 1
    html = paths["html"].read_text(encoding="utf-8")
    assert 'data-filter="verdict" data-value="warning"' in html and 'td.cell[data-worst="warning"]' in html


def test_a_profile_with_warnings_is_ready_with_warnings() -> None:
    assert readiness([Outcome.PASSED, Outcome.WARNING]) == READY_WITH_WARNINGS
    assert readiness([Outcome.PASSED, Outcome.DEVIATION]) == READY
    assert readiness([Outcome.WARNING, Outcome.FAILED]) == "not ready"
    assert readiness([Outcome.WARNING, Outcome.SKIPPED]) == "incomplete"
