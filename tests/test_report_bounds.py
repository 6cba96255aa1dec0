"""What the reports keep: bounded evidence, strict JSON and XML whatever the values, redaction by value
at every sink, atomic files, and interrupted runs marked in every report."""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from conformance.baseline import Baseline, load_baseline, write_baseline
from conformance.cases import load_cases
from conformance.cassette import load_cassette, write_cassette
from conformance.model import CaseResult, Exchange, Finding, Outcome, Request, Response, RunReport, SSEEvent, TargetInfo
from conformance.redact import REDACTED, Redactor
from conformance.report import clear_reports, evidence, load_report, write_reports
from conformance.report import html as html_report
from conformance.report.console import ConsoleReporter
from conformance.report.evidence import (
    DEPTH_MARKER,
    EVENTS_HEAD,
    EVENTS_TAIL,
    MAX_BODY_CHARS,
    MAX_FINDINGS,
    MAX_TEXT_CHARS,
    EvidenceBudget,
    strict_json,
)
from conformance.report.junit import NOT_RUN_MESSAGE, xml_text
from conformance.report.matrix import build_matrix, write_matrix
from conformance.runner import run_suite
from conformance.target import Target
from tests.hostile import head, hostile_server

URL = "http://gateway.test/v1/messages"
SECRET = "sk-test-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository


def _report(*results: CaseResult, **fields: Any) -> RunReport:
    return RunReport(
        TargetInfo("http://gateway.test", model="m"),
        "2025-01-01T00:00:00Z",
        "2025-01-01T00:01:00Z",
        list(results),
        **fields,
    )


def _result(case_id: str, *exchanges: Exchange, outcome: Outcome = Outcome.FAILED, **fields: Any) -> CaseResult:
    return CaseResult(case_id, "streaming", outcome, exchanges=list(exchanges), **fields)


def _stream(count: int, data_size: int = 20) -> Exchange:
    events = [
        SSEEvent("content_block_delta", json.dumps({"i": i, "pad": "x" * data_size}), t=i / 1000) for i in range(count)
    ]
    text = "".join(f"event: {e.event}\ndata: {e.data}\n\n" for e in events)
    response = Response(200, {"content-type": "text/event-stream"}, text=text, events=events, truncated="too many")
    return Exchange(Request("POST", URL, {}, {"stream": True}), response)


def _strict_load(path: Path) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{path.name} holds the non-JSON constant {constant}")

    return json.loads(path.read_bytes().decode("utf-8"), parse_constant=refuse)


# Bounded evidence


def test_an_endless_stream_keeps_its_first_and_last_events(tmp_path: Path) -> None:
    total = 20_000
    paths = write_reports(_report(_result("streaming.endless", _stream(total))), tmp_path)
    assert paths["json"].stat().st_size < 2 * 1024 * 1024
    (exchange,) = _strict_load(paths["json"])["results"][0]["exchanges"]
    events = exchange["response"]["events"]
    assert len(events) == EVENTS_HEAD + EVENTS_TAIL
    assert json.loads(events[EVENTS_HEAD - 1]["data"])["i"] == EVENTS_HEAD - 1
    assert json.loads(events[EVENTS_HEAD]["data"])["i"] == total - EVENTS_TAIL
    dropped = total - EVENTS_HEAD - EVENTS_TAIL
    assert exchange["evidence_cut"]["events"] == {"kept": EVENTS_HEAD + EVENTS_TAIL, "dropped": dropped, "after": 1000}
    loaded = load_report(paths["json"]).results[0].exchanges[0]
    assert loaded.evidence_cut is not None and len(loaded.response.events) == EVENTS_HEAD + EVENTS_TAIL
    page = paths["html"].read_text(encoding="utf-8")
    assert f"{dropped:,} events not kept" in page and f">{total - 1}<" in page  # indexes as received
    assert f"{dropped:,} events not kept" in paths["junit"].read_text(encoding="utf-8")


def test_a_huge_body_keeps_its_first_256_kib(tmp_path: Path) -> None:
    body = {"content": [{"type": "text", "text": "y"}] * 400_000}
    text = json.dumps(body)
    exchange = Exchange(Request("POST", URL, {}, {}), Response(200, {}, text=text, json=body))
    paths = write_reports(_report(_result("messages.huge", exchange)), tmp_path)
    assert paths["json"].stat().st_size < MAX_BODY_CHARS * 2
    response = _strict_load(paths["json"])["results"][0]["exchanges"][0]
    assert response["evidence_cut"]["body"] == {
        "kept_chars": MAX_BODY_CHARS,
        "dropped_chars": len(text) - MAX_BODY_CHARS,
    }
    assert response["response"]["text"] == text[:MAX_BODY_CHARS] and "body" not in response["response"]
    assert "response body: 262,144 characters kept" in paths["html"].read_text(encoding="utf-8")


def test_big_event_data_shares_the_body_bound() -> None:
    exchange = _stream(10, data_size=100_000)
    kept = EvidenceBudget().exchange(exchange)
    assert sum(len(event.data) for event in kept.response.events) <= MAX_BODY_CHARS
    assert kept.evidence_cut["event_data"]["events"] > 0
    assert exchange.response.events[9].data.endswith('"}')  # the input is left alone


@pytest.mark.parametrize(
    "text", ["", "plain", 'a "quoted" word', "back\\slash", "é€😀", "nul\x00", "tab\tand\nline", "\x7f", "\ud800"]
)
def test_an_exchange_costs_its_text_as_written_in_json(text: str) -> None:
    """A text without an escape costs its length; one with escapes costs what json.dumps writes."""
    assert evidence._written_size(text) == len(json.dumps(text, ensure_ascii=False)) - 2


def test_the_run_budget_keeps_summaries_past_it_serving_failures_first() -> None:
    passed = [_result(f"a.passed.{i}", _stream(1000, 400), outcome=Outcome.PASSED) for i in range(3)]
    failed = _result("z.failed", _stream(1000, 400))
    bounded = EvidenceBudget(run_chars=1_000_000).report(_report(*passed, failed))
    assert [r.id for r in bounded.results] == ["a.passed.0", "a.passed.1", "a.passed.2", "z.failed"]
    assert len(bounded.results[-1].exchanges[0].response.events) == 1000  # served first
    last = bounded.results[2].exchanges[0]
    assert last.response.events == [] and "evidence budget" in last.evidence_cut["budget"]
    assert last.response.status == 200 and last.response.headers and last.request.url == URL


def test_messages_headers_and_findings_are_capped() -> None:
    long = "m" * (MAX_TEXT_CHARS * 10)
    exchange = Exchange(Request("POST", URL, {"x-long": long}), Response(500, {long: long}), error=long)
    findings = [Finding("stream.grammar", long) for _ in range(MAX_FINDINGS * 5)]
    kept = EvidenceBudget().result(_result("x", exchange, findings=findings, reason=long))
    assert len(kept.findings) == MAX_FINDINGS + 1 and "800 more findings" in kept.findings[-1].message
    texts = [
        kept.reason,
        kept.findings[0].message,
        kept.exchanges[0].error,
        kept.exchanges[0].request.headers["x-long"],
    ]
    texts += next(iter(kept.exchanges[0].response.headers.items()))
    assert all(len(text) == MAX_TEXT_CHARS and text.endswith("characters not kept]") for text in texts)
    assert EvidenceBudget().result(kept).findings == kept.findings  # idempotent


# Strict JSON whatever the values


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"k": [value]}
    return value


HOSTILE_TEXT = "nul\x00 bell\x07 lone\ud800surrogate replaced\ufffd esc\x1b[31m"


def _hostile_report() -> RunReport:
    body = {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "huge": 10**5000, "deep": _deep(5000)}
    body[HOSTILE_TEXT] = HOSTILE_TEXT
    events = [SSEEvent(HOSTILE_TEXT, HOSTILE_TEXT, t=0.1, id=HOSTILE_TEXT, json=body)]
    stream = Response(200, {HOSTILE_TEXT: HOSTILE_TEXT}, text=HOSTILE_TEXT, events=events, truncated=HOSTILE_TEXT)
    result = _result(
        f"hostile.{HOSTILE_TEXT}",
        Exchange(Request("POST", URL, {}, body), Response(200, {}, text="{}", json=body)),
        Exchange(Request("POST", URL, {}, {"stream": True}), stream, error=HOSTILE_TEXT),
        findings=[Finding("stream.grammar", HOSTILE_TEXT)],
        reason=HOSTILE_TEXT,
        title=HOSTILE_TEXT,
        input_tokens=10**5000,
        output_tokens=2**80,
        attempts=3,
    )
    return _report(result, generation={"seed": HOSTILE_TEXT, 1: float("nan"), "tokens": 10**5000}, tool_version="t")


class _Strict(HTMLParser):
    def error(self, message: str) -> None:  # pragma: no cover - HTMLParser calls it on what it cannot parse
        raise AssertionError(message)


def _check_text_file(path: Path) -> str:
    """The file decodes as strict UTF-8 and holds no character XML 1.0 (or HTML) forbids."""
    text = path.read_bytes().decode("utf-8")
    assert xml_text(text) == text, path.name
    return text


def test_hostile_values_go_through_every_writer(tmp_path: Path) -> None:
    report = _hostile_report()
    paths = write_reports(report, tmp_path / "run")
    document = _strict_load(paths["json"])
    result = document["results"][0]
    body = result["exchanges"][0]["response"]["body"]
    assert (body["nan"], body["inf"], body["ninf"]) == ("NaN", "Infinity", "-Infinity")
    assert "5001 digits" in body["huge"] and result["output_tokens"] == str(2**80)
    assert DEPTH_MARKER in json.dumps(body["deep"])
    assert document["generation"]["1"] == "NaN"
    ET.fromstring(paths["junit"].read_bytes())
    _Strict().feed(_check_text_file(paths["html"]))
    loaded = load_report(paths["json"])
    assert loaded.results[0].output_tokens == 2**80 and loaded.results[0].attempts == 3

    baseline = write_baseline(Baseline.from_results(report), tmp_path / "baseline.yaml")
    assert load_baseline(baseline).expectations[f"hostile.{HOSTILE_TEXT}".replace("\ud800", "\ufffd")]

    cassette = write_cassette(report, [], tmp_path / "cassette")
    _strict_load(cassette)
    assert load_cassette(cassette).cases[0].exchanges[0].response.status == 200

    for source in (report, loaded):
        matrix_paths = write_matrix(build_matrix([("run", source)]), tmp_path / "matrix")
        _strict_load(matrix_paths["json"])
        _Strict().feed(_check_text_file(matrix_paths["html"]))
        _check_text_file(matrix_paths["md"])

    out = io.StringIO()
    reporter = ConsoleReporter(Console(file=out, width=200, color_system=None), verbose=True)
    reporter.start(report.target, 1)
    reporter.case_done(loaded.results[0])
    reporter.finish(loaded, paths)
    assert "\x00" not in out.getvalue() and "3 attempts" in out.getvalue()


def test_strict_json_keys_are_strings_and_depth_is_bounded() -> None:
    value = strict_json({1: "a", None: "b", (1, 2): "c", 2.5: float("nan"), "deep": _deep(5000)})
    assert set(value) == {"1", "null", "[1, 2]", "2.5", "deep"} and value["2.5"] == "NaN"
    json.dumps(value, allow_nan=False)


# Redaction by value at every sink


def _secret_report() -> RunReport:
    events = [SSEEvent(f"evt-{SECRET}", f'{{"text": "{SECRET}"}}', id=SECRET, json={"text": SECRET})]
    response = Response(200, {f"x-{SECRET}": SECRET, "content-type": "text/event-stream"}, text=SECRET, events=events)
    result = _result(
        f"leak.{SECRET}",
        Exchange(Request("POST", f"{URL}?k={SECRET}", {"x-api-key": SECRET}, {"system": SECRET}), response),
        Exchange(Request("POST", URL), None, error=f"refused {SECRET}"),
        findings=[Finding("expect.text", f"expected the text 'ALPHA', got 'key={SECRET}'")],
        reason=f"because {SECRET}",
        title=SECRET,
    )
    return _report(result, interrupted=SECRET, not_run=[f"later.{SECRET}"])


def test_every_sink_redacts_by_value(tmp_path: Path) -> None:
    report, redactor = _secret_report(), Redactor([SECRET])
    paths = write_reports(report, tmp_path / "run", redactor=redactor)
    written = [*paths.values(), write_cassette(report, [], tmp_path / "cassette", redactor=redactor)]
    written.append(write_baseline(Baseline.from_results(report), tmp_path / "baseline.yaml", redactor=redactor))
    written += write_matrix(build_matrix([("run", report)], redactor=redactor), tmp_path / "matrix").values()
    out = io.StringIO()
    reporter = ConsoleReporter(Console(file=out, width=300, color_system=None), verbose=True, redactor=redactor)
    reporter.start(report.target, 2)
    reporter.case_done(report.results[0])
    reporter.finish(report, paths)
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert SECRET not in text and REDACTED.strip("[]") in text, path.name
    assert SECRET not in out.getvalue() and REDACTED in out.getvalue()
    assert SECRET in report.results[0].reason  # the report itself is left alone


# Atomic files, never stale


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_reports(_report(_result("first", _stream(3))), tmp_path)
    before = (tmp_path / "report.html").read_text(encoding="utf-8")

    def broken(report: RunReport) -> Any:
        yield "<!doctype html><p>half"
        raise RuntimeError("renderer broke")

    monkeypatch.setattr("conformance.report.stream_html", broken)
    with pytest.raises(RuntimeError):
        write_reports(_report(_result("second", _stream(3))), tmp_path)
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == before
    assert load_report(tmp_path / "report.json").results[0].id == "second"
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]
    assert html_report.stream_html is not broken


def test_clear_reports_removes_the_previous_runs_reports_only(tmp_path: Path) -> None:
    write_reports(_report(_result("old", _stream(3))), tmp_path)
    (tmp_path / ".report.json.abc.tmp").write_text("half")
    (tmp_path / "notes.txt").write_text("mine")
    removed = clear_reports(tmp_path)
    assert sorted(path.name for path in removed) == [".report.json.abc.tmp", "junit.xml", "report.html", "report.json"]
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]
    assert clear_reports(tmp_path / "missing") == []


# An interrupted run, in every report


def test_an_interrupted_run_is_marked_in_every_report(tmp_path: Path) -> None:
    report = _report(
        _result("done.one", _stream(3), outcome=Outcome.PASSED, attempts=2),
        interrupted="SIGINT",
        not_run=["later.one", "later.two"],
    )
    paths = write_reports(report, tmp_path / "run")
    assert (_strict_load(paths["json"])["interrupted"], _strict_load(paths["json"])["not_run"]) == (
        "SIGINT",
        ["later.one", "later.two"],
    )
    suite = ET.fromstring(paths["junit"].read_bytes()).find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("skipped")) == ("3", "2")
    skipped = {case.get("name"): case.find("skipped") for case in suite.iter("testcase")}
    assert all(
        skipped[name] is not None and skipped[name].get("message") == NOT_RUN_MESSAGE
        for name in ("later.one", "later.two")
    )
    page = paths["html"].read_text(encoding="utf-8")
    assert 'id="interrupted"' in page and "interrupted (SIGINT)" in page and "later.two" in page
    assert "2 (retried)" in page
    out = io.StringIO()
    ConsoleReporter(Console(file=out, width=200, color_system=None)).finish(report, paths)
    assert "INTERRUPTED (SIGINT)  2 planned cases did not run" in out.getvalue()
    matrix = write_matrix(build_matrix([("run", load_report(paths["json"]))]), tmp_path / "matrix")
    assert "incomplete (interrupted (SIGINT), 2 not run)" in matrix["md"].read_text(encoding="utf-8")
    assert "incomplete" in matrix["html"].read_text(encoding="utf-8")
    target = _strict_load(matrix["json"])["targets"][0]
    assert (target["complete"], target["interrupted"], target["not_run"]) == (False, "SIGINT", 2)
    complete = write_reports(_report(_result("done.one", _stream(3))), tmp_path / "whole")
    assert 'id="interrupted"' not in complete["html"].read_text(encoding="utf-8")


# A run holds only what its reports keep


def test_a_run_keeps_only_bounded_evidence_of_each_judged_case() -> None:
    async def big_body(writer: Any) -> None:
        writer.write(head(200, "application/json") + b'{"x": "' + b"y" * (3 * MAX_BODY_CHARS))

    async def run() -> RunReport:
        cases = [case for case in load_cases() if case.id == "text.string-content"]
        async with hostile_server(big_body) as base_url:
            return await run_suite(Target(base_url=base_url, api_key="k" * 20), cases)

    (result,) = asyncio.run(run()).results
    response = result.exchanges[0].response
    assert response is not None and len(response.text) == MAX_BODY_CHARS
    assert result.exchanges[0].evidence_cut["body"]["dropped_chars"] == 2 * MAX_BODY_CHARS + len('{"x": "')


PEAK_RSS_BOUND_MB = 500
MIB_BYTES = 1024 * 1024
_BOMB = zlib.compressobj(9, zlib.DEFLATED, 31)
GZIP_BOMB = _BOMB.compress(bytes(100 * MIB_BYTES)) + _BOMB.flush()  # 100 MiB of zeros in about 100 KiB


async def _flood(writer: Any) -> None:
    """Every other answer a 100 MB JSON body, the others a gzip bomb inflating to 100 MiB."""
    _flood.count = getattr(_flood, "count", 0) + 1  # type: ignore[attr-defined]
    if _flood.count % 2:  # type: ignore[attr-defined]
        writer.write(head(200, "application/json", f"content-length: {100 * MIB_BYTES}\r\n"))
        chunk = b"x" * MIB_BYTES
        for _ in range(100):
            writer.write(chunk)
            await writer.drain()
    else:
        writer.write(head(200, "application/json", f"content-encoding: gzip\r\ncontent-length: {len(GZIP_BOMB)}\r\n"))
        writer.write(GZIP_BOMB)


@pytest.fixture
def flooding_target() -> Iterator[str]:
    """A loopback target answering huge bodies and gzip bombs, served from a thread until the test ends."""
    ready, urls, stop = threading.Event(), [], threading.Event()

    async def serve() -> None:
        async with hostile_server(_flood) as base_url:
            urls.append(base_url)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield urls[0]
    stop.set()
    thread.join(10)


def test_peak_memory_and_reports_stay_bounded_whatever_the_target_sends(flooding_target: str, tmp_path: Path) -> None:
    """A subprocess runs the suite against the flood; its own child (the run) is measured by getrusage."""
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "conformance", "run", "--base-url", flooding_target, "--api-key", "k" * 24]
    argv += ["--out", str(out), "-k", "text*,tools*,streaming*,errors*"]  # about a hundred cases
    measure = (
        "import resource, subprocess, sys; "
        "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
        "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", measure, *argv], capture_output=True, text=True, timeout=300)
    code, peak_kib = (int(word) for word in done.stdout.split())
    assert code == 1, done.stderr  # every case fails against this target, and the run still finishes
    assert peak_kib / 1024 < PEAK_RSS_BOUND_MB
    document = _strict_load(out / "report.json")
    assert len(document["results"]) >= 90
    assert (out / "report.json").stat().st_size < 20 * MIB_BYTES
