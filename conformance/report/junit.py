"""junit.xml for CI test reporters (GitLab, Jenkins, GitHub Actions JUnit reporters).

Only `failed` and `error` fail the CI gate, so only they become <failure> and <error>. `skipped`
becomes <skipped>. `warning`, `deviation` and `unsupported` pass, but say what they are (and
why) in <system-out>, as do notes (findings of severity note) on any case.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from conformance.model import CaseResult, Exchange, Finding, Outcome, RunReport, Severity
from conformance.report.evidence import describe_cut
from conformance.report.json_report import headline, run_seconds

NOT_RUN_MESSAGE = "not run: interrupted"

# Characters XML 1.0 cannot carry at all, not even escaped; endpoint-supplied text may hold them.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 (and HTML) cannot carry, each replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def _one_line(text: str) -> str:
    return " ".join(xml_text(text).split())


def finding_line(finding: Finding) -> str:
    """One finding as a line of plain text: `[note: |warning: ]check: message [spec_ref] (deviation: ...)`."""
    line = f"{finding.check}: {finding.message}"
    if finding.severity is not Severity.FAILURE:
        line = f"{finding.severity.value}: {line}"
    if finding.spec_ref:
        line += f" [{finding.spec_ref}]"
    if finding.deviation:
        line += f" (documented deviation: {finding.deviation})"
    return _one_line(line)


def exchange_line(exchange: Exchange) -> str:
    """One exchange as a line of plain text: `step 0: POST url -> 200 (0.123s)`."""
    head = f"step {exchange.step}: {exchange.request.method} {exchange.request.url}"
    if exchange.response is not None:
        response = exchange.response
        kind = f", {len(response.events)} SSE events" if response.events is not None else ""
        head += f" -> {response.status} ({response.elapsed:.3f}s{kind})"
        if response.truncated:
            head += f" [truncated: {response.truncated}]"
    if exchange.error:
        head += f" -> transport error: {exchange.error}"
    for sentence in describe_cut(exchange.evidence_cut):
        head += f" [not kept in the reports: {sentence}]"
    return _one_line(head)


def _first_check(result: CaseResult) -> str:
    failures = [f for f in result.findings if f.severity is Severity.FAILURE] or result.findings
    return failures[0].check if failures else result.outcome.value


def _failure_text(result: CaseResult) -> str:
    lines = [_one_line(f"reason: {result.reason}")] if result.reason else []
    lines += [finding_line(finding) for finding in result.findings]
    lines += [exchange_line(exchange) for exchange in result.exchanges if exchange.error]
    return "\n".join(lines)


def _system_out(result: CaseResult) -> str | None:
    """Evidence for the CI log: outcome, reason, findings not already in <failure>/<error>, exchanges.

    Passed and skipped cases get one only when they carry notes, to keep the file small.
    """
    gated = result.outcome in (Outcome.FAILED, Outcome.ERROR)
    if result.outcome in (Outcome.PASSED, Outcome.SKIPPED):
        findings = [f for f in result.findings if f.severity is Severity.NOTE]
        if not findings:
            return None
    else:
        findings = [] if gated else result.findings
    lines = [f"outcome: {result.outcome.value}"]
    if result.reason and not gated:
        lines.append(_one_line(f"reason: {result.reason}"))
    lines += [finding_line(finding) for finding in findings]
    lines += [exchange_line(exchange) for exchange in result.exchanges]
    return "\n".join(lines)


def _testcase(result: CaseResult) -> ET.Element:
    classname = f"conformance.{result.feature}" if result.feature else "conformance"
    case = ET.Element(
        "testcase", classname=xml_text(classname), name=xml_text(result.id), time=f"{result.duration:.3f}"
    )
    if result.outcome in (Outcome.FAILED, Outcome.ERROR):
        tag = "failure" if result.outcome is Outcome.FAILED else "error"
        message = _one_line(headline(result) or result.outcome.value)
        ET.SubElement(case, tag, message=message, type=xml_text(_first_check(result))).text = _failure_text(result)
    elif result.outcome is Outcome.SKIPPED:
        ET.SubElement(case, "skipped", message=_one_line(result.reason or "skipped"))
    out = _system_out(result)
    if out is not None:
        ET.SubElement(case, "system-out").text = out
    return case


def _not_run(case_id: str) -> ET.Element:
    """A planned case an interrupted run never ran: a skipped testcase, so CI counts it."""
    case = ET.Element("testcase", classname="conformance", name=xml_text(case_id), time="0.000")
    ET.SubElement(case, "skipped", message=NOT_RUN_MESSAGE)
    return case


def render_junit(report: RunReport) -> str:
    """The junit.xml document as text: <testsuites> holding one <testsuite name="conformance">."""
    summary = report.summary()
    counts = {
        "tests": str(len(report.results) + len(report.not_run)),
        "failures": str(summary[Outcome.FAILED.value]),
        "errors": str(summary[Outcome.ERROR.value]),
        "skipped": str(summary[Outcome.SKIPPED.value] + len(report.not_run)),
        "time": f"{run_seconds(report):.3f}",
    }
    root = ET.Element("testsuites", name="conformance", **counts)
    suite = ET.SubElement(root, "testsuite", name="conformance", **counts)
    if report.started_at:
        suite.set("timestamp", xml_text(report.started_at))
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("base_url", report.target.base_url),
        ("provider", report.target.provider),
        ("model", report.target.model),
        ("tool_version", report.tool_version),
        *((("interrupted", report.interrupted),) if report.interrupted else ()),
    ):
        ET.SubElement(properties, "property", name=name, value=xml_text(value))
    generated = report.generated_summary()
    if generated is not None:
        for key in ("cases", "failed", "requests", "input_tokens", "output_tokens"):
            ET.SubElement(properties, "property", name=f"generated_{key}", value=str(generated[key]))
        if report.generation and "seed" in report.generation:
            ET.SubElement(properties, "property", name="generated_seed", value=xml_text(str(report.generation["seed"])))
    suite.extend(_testcase(result) for result in report.results)
    suite.extend(_not_run(case_id) for case_id in report.not_run)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
