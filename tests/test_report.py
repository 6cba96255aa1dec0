"""The reports: report.json round-trips, junit.xml is what CI parsers expect, report.html is safe and
self-contained, and the console reporter says what failed."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from conformance.model import (
    CaseResult,
    Exchange,
    Finding,
    Outcome,
    Request,
    Response,
    RunReport,
    Severity,
    SSEEvent,
    TargetInfo,
)
from conformance.report import load_report, write_reports, write_reports_from_text
from conformance.report.console import ConsoleReporter
from conformance.report.evidence import EvidenceBudget, report_document, result_text
from conformance.report.html import DISPLAY_LIMIT, render_html
from conformance.report.json_report import assembled_json_text, json_text
from conformance.report.junit import render_junit

INJECTION = "<script>alert(1)</script>"
URL = "https://gateway.example.test/v1/messages"
HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "[redacted]"}


def _request(body: dict | None = None, **extra: object) -> Request:
    body = body or {
        "model": "m",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "Reply with exactly: ALPHA"}],
    }
    return Request("POST", URL, dict(HEADERS), {**body, **extra})


def _stream_events() -> list[SSEEvent]:
    payloads = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 12}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"text": "ALPHA"}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    events = [SSEEvent(name, json.dumps(data), t=0.05 * i, json=data) for i, (name, data) in enumerate(payloads)]
    events.append(SSEEvent("ping", "not json", t=0.3, json_error="not JSON: Expecting value"))
    return events


def make_report() -> RunReport:
    """A run with every outcome, notes, deviations, a stream, a transport error and injection attempts."""
    ok_body = {"id": "msg_1", "type": "message", "role": "assistant", "content": [{"type": "text", "text": "ALPHA"}]}
    results = [
        CaseResult(
            id="messages.basic.text",
            feature="messages",
            outcome=Outcome.PASSED,
            title="A plain text reply",
            spec_ref="messages#response",
            duration=0.41,
            input_tokens=12,
            output_tokens=3,
            findings=[Finding("headers.request_id", "no request-id header", "errors#request-id", Severity.NOTE)],
            exchanges=[Exchange(_request(), Response(200, {"content-type": "application/json"}, json=ok_body))],
        ),
        CaseResult(
            id="streaming.event_order",
            feature="streaming",
            outcome=Outcome.FAILED,
            spec_ref="streaming#event-types",
            duration=0.73,
            input_tokens=12,
            output_tokens=1,
            findings=[
                Finding(
                    "stream.grammar", f"content_block_stop missing before message_stop {INJECTION}", "streaming#flow"
                ),
                Finding("stream.ping", "ping event data is not JSON", "streaming#ping"),
                Finding("stream.timing", "first event after 2s", "", Severity.NOTE),
            ],
            exchanges=[
                Exchange(
                    _request(stream=True),
                    Response(
                        200,
                        {"content-type": "text/event-stream"},
                        events=_stream_events(),
                        elapsed=0.31,
                        first_byte=0.02,
                        truncated="stream ended without message_stop",
                    ),
                )
            ],
        ),
        CaseResult(
            id="errors.invalid_json",
            feature="errors",
            outcome=Outcome.FAILED,
            spec_ref="errors#http-errors",
            duration=0.12,
            findings=[Finding("errors.shape", "error body is HTML, not JSON", "errors#error-shapes")],
            exchanges=[
                Exchange(
                    Request("POST", URL, dict(HEADERS), raw_body="{not json"),
                    Response(502, {"content-type": "text/html"}, text=f"<html><body>{INJECTION}</body></html>"),
                )
            ],
        ),
        CaseResult(
            id="params.top_k",
            feature="params",
            outcome=Outcome.DEVIATION,
            duration=0.2,
            findings=[Finding("semantics.top_k", "top_k is ignored", "messages#top_k", deviation="top_k unsupported")],
            exchanges=[Exchange(_request(top_k=1), Response(200, {}, json={"injected": INJECTION}))],
        ),
        CaseResult(
            id="tools.computer_use",
            feature="tools",
            outcome=Outcome.UNSUPPORTED,
            reason="refused with 400 invalid_request_error",
            exchanges=[
                Exchange(
                    _request(),
                    Response(
                        400, {}, json={"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}
                    ),
                )
            ],
        ),
        CaseResult(
            id="thinking.budget",
            feature="thinking",
            outcome=Outcome.SKIPPED,
            tier="extended",
            reason="capability thinking not claimed",
        ),
        CaseResult(
            id="messages.timeout",
            feature="messages",
            outcome=Outcome.ERROR,
            duration=30.0,
            exchanges=[Exchange(_request(), None, error="ReadTimeout: no response within 30s")],
        ),
    ]
    return RunReport(
        target=TargetInfo(URL.removesuffix("/v1/messages"), provider="examplegw", model="claude-test"),
        started_at="2025-01-02T03:04:05+00:00",
        finished_at="2025-01-02T03:04:17.500000+00:00",
        results=results,
        tool_version="0.1.0",
        planned_requests=8,
        planned_max_output_tokens=256,
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunReport, dict[str, Path]]:
    report = make_report()
    return report, write_reports(report, tmp_path_factory.mktemp("out") / "nested" / "dir")


# report.json


def test_write_reports_writes_all_files(written: tuple[RunReport, dict[str, Path]]) -> None:
    _, paths = written
    assert set(paths) == {"json", "junit", "html"}
    assert {path.name for path in paths.values()} == {"report.json", "junit.xml", "report.html"}
    assert all(path.is_file() for path in paths.values())
    assert not [p for p in paths["json"].parent.iterdir() if p.name.endswith(".tmp")]


def test_report_json_round_trips(written: tuple[RunReport, dict[str, Path]]) -> None:
    report, paths = written
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == report.to_dict()
    assert load_report(paths["json"]).to_dict() == report.to_dict()


@pytest.mark.parametrize("interrupted", [False, True])
def test_report_json_assembled_from_its_results_texts_is_the_text_written_whole(
    tmp_path: Path, interrupted: bool
) -> None:
    """The proxy writes report.json by joining results made strict as they were judged: the same text, byte
    for byte, as the whole document written at once, and the same files from it."""
    report = make_report()
    if interrupted:
        report.interrupted, report.not_run = "SIGTERM", ["tools.later"]
    document = report_document(report)
    whole = json_text(document)
    texts = [result_text(result) for result in EvidenceBudget().report(report).results]  # as the proxy's judge does
    assert assembled_json_text({**document, "results": None}, texts) == whole
    assert assembled_json_text({**document, "results": None}, []) == json_text({**document, "results": []})
    paths, kept = write_reports_from_text(whole, tmp_path / "from-text")
    expected = write_reports(report, tmp_path / "whole")
    assert {kind: path.read_bytes() for kind, path in paths.items()} == {
        kind: path.read_bytes() for kind, path in expected.items()
    }
    assert kept.to_dict() == RunReport.from_dict(document).to_dict()  # the report the other files were made from


def test_an_interrupted_run_and_retried_cases_round_trip(tmp_path: Path) -> None:
    report = make_report()
    report.interrupted, report.not_run = "SIGINT", ["tools.later", "vision.later"]
    report.results[0].attempts = 3
    loaded = load_report(write_reports(report, tmp_path)["json"])
    assert (loaded.interrupted, loaded.not_run, loaded.complete) == ("SIGINT", ["tools.later", "vision.later"], False)
    assert [result.attempts for result in loaded.results][:2] == [3, 1]
    assert make_report().complete


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"schema_version": 1, "target": {}}', "missing results"),
        ('{"schema_version": 99, "target": {}, "results": []}', "newer than this tool"),
        ('{"schema_version": 1, "target": {"base_url": "x"}, "results": [{"id": "a", "outcome": "meh"}]}', "malformed"),
    ],
)
def test_load_report_rejects_what_is_not_a_report(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "report.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as info:
        load_report(path)
    assert str(path) in str(info.value)


# junit.xml


def test_junit_counts_and_properties(written: tuple[RunReport, dict[str, Path]]) -> None:
    _, paths = written
    suites = ET.parse(paths["junit"]).getroot()
    assert suites.tag == "testsuites"
    [suite] = suites.findall("testsuite")
    assert suite.attrib["name"] == "conformance"
    assert {k: suite.attrib[k] for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "7",
        "failures": "2",
        "errors": "1",
        "skipped": "1",
    }
    assert suite.attrib["time"] == "12.500"
    assert suite.attrib["timestamp"] == "2025-01-02T03:04:05+00:00"
    properties = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert properties["base_url"] == "https://gateway.example.test"
    assert properties["provider"] == "examplegw"
    assert properties["model"] == "claude-test"


def test_junit_testcases(written: tuple[RunReport, dict[str, Path]]) -> None:
    _, paths = written
    cases = {case.attrib["name"]: case for case in ET.parse(paths["junit"]).getroot().iter("testcase")}
    assert len(cases) == 7

    failed = cases["streaming.event_order"]
    assert failed.attrib["classname"] == "conformance.streaming"
    assert failed.attrib["time"] == "0.730"
    failure = failed.find("failure")
    assert failure is not None
    assert failure.attrib["message"] == f"content_block_stop missing before message_stop {INJECTION}"
    assert failure.attrib["type"] == "stream.grammar"
    lines = (failure.text or "").splitlines()
    assert lines[0].startswith("stream.grammar: ") and lines[0].endswith("[streaming#flow]")
    assert lines[1] == "stream.ping: ping event data is not JSON [streaming#ping]"
    assert lines[2] == "note: stream.timing: first event after 2s"

    error = cases["messages.timeout"].find("error")
    assert error is not None and "ReadTimeout" in error.attrib["message"]

    skipped = cases["thinking.budget"].find("skipped")
    assert skipped is not None and skipped.attrib["message"] == "capability thinking not claimed"

    for name, outcome in (("params.top_k", "deviation"), ("tools.computer_use", "unsupported")):
        case = cases[name]
        assert case.find("failure") is None and case.find("error") is None and case.find("skipped") is None
        out = case.findtext("system-out") or ""
        assert out.startswith(f"outcome: {outcome}")
    assert "semantics.top_k: top_k is ignored [messages#top_k] (documented deviation: top_k unsupported)" in (
        cases["params.top_k"].findtext("system-out") or ""
    )
    assert "note: headers.request_id" in (cases["messages.basic.text"].findtext("system-out") or "")
    assert cases["messages.basic.text"].find("failure") is None


def test_junit_survives_characters_xml_cannot_hold() -> None:
    report = make_report()
    report.results[1].findings[0] = Finding("stream.grammar", "bad byte \x00 and \x1b[31m", "streaming#flow")
    root = ET.fromstring(render_junit(report).encode("utf-8"))
    failure = root.find(".//testcase[@name='streaming.event_order']/failure")
    assert failure is not None and failure.attrib["message"] == "bad byte \ufffd and \ufffd[31m"


# report.html


def test_html_lists_every_case_failing_first(written: tuple[RunReport, dict[str, Path]]) -> None:
    report, paths = written
    html = paths["html"].read_text(encoding="utf-8")
    ids = re.findall(r'<details class="case [^"]*" id="case-([^"]+)"', html)
    assert ids == [
        "errors.invalid_json",
        "messages.timeout",
        "streaming.event_order",
        "messages.basic.text",
        "params.top_k",
        "thinking.budget",
        "tools.computer_use",
    ]
    assert sorted(ids) == sorted(result.id for result in report.results)


def test_html_escapes_untrusted_text(written: tuple[RunReport, dict[str, Path]]) -> None:
    _, paths = written
    html = paths["html"].read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script") == 1


def test_html_is_self_contained(written: tuple[RunReport, dict[str, Path]]) -> None:
    _, paths = written
    html = paths["html"].read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", html, re.IGNORECASE)
    assert not re.search(r"@import|url\(", html)
    assert not re.search(r"<(?:link|img|iframe|object|embed)\b", html)


def test_html_script_is_allowed_by_its_csp_hash(written: tuple[RunReport, dict[str, Path]]) -> None:
    _, paths = written
    html = paths["html"].read_text(encoding="utf-8")
    [script] = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp is not None
    assert "default-src 'none'" in csp.group(1)
    assert f"script-src 'sha256-{digest}'" in csp.group(1)


def test_html_summary_and_evidence(written: tuple[RunReport, dict[str, Path]]) -> None:
    _, paths = written
    html = paths["html"].read_text(encoding="utf-8")
    counts = dict(re.findall(r'data-summary="(\w+)">\s*<div class="n">(\d+)</div>', html))
    assert counts == {
        "passed": "1",
        "warning": "0",
        "failed": "2",
        "deviation": "1",
        "unsupported": "1",
        "skipped": "1",
        "error": "1",
    }
    assert "of 8 planned" in html and "of at most 256 planned" in html
    assert "claude-test" in html and "examplegw" in html and "2025-01-02 03:04:05 UTC" in html
    assert "message_start" in html and "content_block_delta" in html  # SSE events
    assert "stream ended without message_stop" in html  # truncated flag
    assert "ReadTimeout: no response within 30s" in html  # transport error
    assert "{not json" in html  # raw request body
    assert "&#34;max_tokens&#34;: 16" in html  # pretty request JSON
    assert "top_k unsupported" in html  # documented deviation


def test_html_caps_huge_bodies() -> None:
    report = make_report()
    huge = "x" * (DISPLAY_LIMIT * 3)
    report.results[0].exchanges[0].response = Response(200, {}, text=huge)
    report.results[1].exchanges[0].response.events = [SSEEvent("ping", huge, json_error="no")] * 3
    html = render_html(report)
    assert len(html) < DISPLAY_LIMIT * 3
    assert f"showing {DISPLAY_LIMIT:,} of {len(huge):,} characters" in html
    assert "2 more events not shown" in html


# console


def _console_output(verbose: bool) -> str:
    report = make_report()
    buffer = io.StringIO()
    reporter = ConsoleReporter(Console(file=buffer, width=100), verbose=verbose)
    reporter.start(report.target, len(report.results))
    for result in report.results:
        reporter.case_done(result)
    reporter.finish(report, {"json": Path("out/report.json"), "html": Path("out/report.html")})
    return buffer.getvalue()


def test_console_progress_and_summary() -> None:
    output = _console_output(verbose=False)
    assert "\x1b[" not in output  # not a terminal: plain text
    assert "[1/7] PASSED" in output and "[7/7] ERROR" in output
    lines = output.splitlines()
    failed_line = next(i for i, line in enumerate(lines) if "FAILED      streaming.event_order" in line)
    assert lines[failed_line + 1].strip().startswith("content_block_stop missing")
    assert "stream.ping" not in output  # only the first finding unless verbose
    for outcome, count in (("passed", 1), ("failed", 2), ("deviation", 1), ("unsupported", 1), ("skipped", 1)):
        assert re.search(rf"^\s*{outcome}\s+{count}\s*$", output, re.MULTILINE), outcome
    assert re.search(r"^\s*error\s+1\s*$", output, re.MULTILINE)
    assert "6 of 8 planned" in output
    assert "of at most 256 planned" in output
    summary = output[output.index("Failing cases") :]
    for case_id in ("errors.invalid_json", "streaming.event_order", "messages.timeout"):
        assert case_id in summary
    assert "ReadTimeout" in summary
    assert "out/report.html" in output
    assert "FAIL  1 passed, 2 failed, 1 deviation, 1 unsupported, 1 skipped, 1 error in 12.5s" in output


def test_console_verbose_shows_every_finding_and_escapes_control_codes() -> None:
    output = _console_output(verbose=True)
    assert "stream.ping: ping event data is not JSON [streaming#ping]" in output
    assert "note: headers.request_id" in output
    assert "reason: capability thinking not claimed" in output

    buffer = io.StringIO()
    reporter = ConsoleReporter(Console(file=buffer, width=100))
    reporter.start(TargetInfo("http://x"), 1)
    reporter.case_done(CaseResult("a[bold]b", "f", Outcome.ERROR, reason="evil \x1b]0;title\x07 [red]x[/red]"))
    output = buffer.getvalue()
    assert "\x1b" not in output and "\x07" not in output
    assert "a[bold]b" in output and "\\x1b]0;title\\x07 [red]x[/red]" in output


def test_html_templates_compile_once_per_user_and_a_broken_cache_is_no_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled templates are kept in a private folder of the temporary directory; a cache whose folder
    vanished, or whose entry is damaged, only means compiling again."""
    import tempfile

    from conformance.report.html import _bytecode_cache

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cache = _bytecode_cache()
    assert cache is not None
    import jinja2

    env = jinja2.Environment(loader=jinja2.DictLoader({"t": "{{ 1 + 1 }}"}), bytecode_cache=cache)
    assert env.get_template("t").render() == "2"
    entries = list(Path(cache.directory).glob("__jinja2_*.cache"))
    assert len(entries) == 1
    entries[0].write_bytes(jinja2.bccache.bc_magic + b"\x00garbage")  # a damaged entry: no pickle
    fresh = jinja2.Environment(loader=jinja2.DictLoader({"t": "{{ 1 + 1 }}"}), bytecode_cache=cache)
    assert fresh.get_template("t").render() == "2"
    for entry in Path(cache.directory).iterdir():
        entry.unlink()
    Path(cache.directory).rmdir()  # the folder removed under a running process
    again = jinja2.Environment(loader=jinja2.DictLoader({"t": "{{ 2 + 2 }}"}), bytecode_cache=cache)
    assert again.get_template("t").render() == "4"
    assert "<html" in render_html(make_report())
