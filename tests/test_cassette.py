"""Record and replay: `run --record DIR` keeps the exchanges; `recheck DIR` judges them again offline."""

from __future__ import annotations

import dataclasses
import json
import secrets
import socket
from pathlib import Path

import httpx
import pytest

from conformance.cases import load_cases
from conformance.cassette import (
    CONTRACT_ONLY_CHECK,
    EVIDENCE_CUT_CHECK,
    CassetteError,
    load_cassette,
    recheck,
    write_cassette,
)
from conformance.cli import main
from conformance.model import CaseResult, Exchange, Outcome, Request, Response, RunReport, SSEEvent, TargetInfo
from conformance.reference import ReferenceServer
from conformance.report import load_report
from conformance.report.evidence import EVENTS_HEAD, EVENTS_TAIL, MAX_BODY_CHARS
from tests.broken_gateway import broken_app

SECRET = "test-key-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository
SELECTION = ["-k", "streaming,count_tokens,tools.choice,headers.bad-key", "--tier", "core"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recorded run against a gateway that breaks count_tokens: passes and failures both."""
    root = tmp_path_factory.mktemp("recorded")
    with ReferenceServer(app=broken_app("count_tokens", api_key=SECRET)) as server:
        argv = ["run", "--base-url", server.base_url, "--api-key", SECRET, "--out", str(root / "live")]
        assert main([*argv, "--record", str(root / "cassette"), *SELECTION]) == 1
    return root


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network: any attempt to connect or to send an HTTP request fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("recheck tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(httpx.AsyncClient, "send", refuse)
    monkeypatch.setattr(httpx.Client, "send", refuse)


def outcomes(path: Path) -> dict[str, str]:
    return {result.id: result.outcome.value for result in load_report(path).results}


def test_recheck_reproduces_the_recorded_outcomes_offline(
    recorded: Path, offline: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = recorded / "recheck"
    assert main(["recheck", str(recorded / "cassette"), "--out", str(out)]) == 1  # the same failures
    live = outcomes(recorded / "live" / "report.json")
    assert outcomes(out / "report.json") == live
    assert {"passed", "failed"} <= set(live.values())
    printed = capsys.readouterr().out
    assert f"{len(live)} of {len(live)} outcomes as recorded" in printed
    # The recheck carries the findings and the exchanges, like a live report.
    again = {result.id: result for result in load_report(out / "report.json").results}
    assert again["count_tokens.basic"].findings and again["count_tokens.basic"].exchanges


def test_the_cassette_is_redacted_and_keeps_the_raw_stream(recorded: Path) -> None:
    text = (recorded / "cassette" / "cassette.json").read_text()
    assert SECRET not in text
    cassette = load_cassette(recorded / "cassette")
    assert cassette.target.base_url.startswith("http://127.0.0.1:")
    streamed = next(case for case in cassette.cases if case.id == "streaming.text")
    response = streamed.exchanges[0].response
    assert response is not None and response.events
    assert response.text.startswith("event: message_start")  # the bytes as received, not just the parse
    assert streamed.fingerprint and streamed.outcome is Outcome.PASSED


def test_recheck_with_improved_expectations_changes_the_verdict(recorded: Path) -> None:
    catalogue = load_cases()
    stricter = [
        dataclasses.replace(
            case,
            steps=tuple(
                dataclasses.replace(step, expect={**step.expect, "text": "NOT-WHAT-IT-SAID"}) for step in case.steps
            ),
        )
        if case.id == "streaming.text"
        else case
        for case in catalogue
    ]
    rechecked = recheck(load_cassette(recorded / "cassette"), stricter)
    assert ("streaming.text", Outcome.PASSED, Outcome.FAILED) in rechecked.changed
    assert not rechecked.contract_only


def test_cases_gone_from_the_catalogue_or_changed_get_contract_checks_only(
    recorded: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    catalogue = load_cases()
    changed = [
        dataclasses.replace(
            case,
            steps=(dataclasses.replace(case.steps[0], request=dataclasses.replace(case.steps[0].request, body={})),),
        )
        if case.id == "streaming.text"
        else case
        for case in catalogue
        if case.id != "count_tokens.basic"
    ]
    rechecked = recheck(load_cassette(recorded / "cassette"), changed)
    assert rechecked.contract_only == {
        "count_tokens.basic": "the case is no longer in the catalogue",
        "streaming.text": "the case's requests changed since the recording",
    }
    results = {result.id: result for result in rechecked.report.results}
    # Judged without their expectations: the stream is still valid, the missing case carries a note.
    assert results["streaming.text"].outcome is Outcome.PASSED
    assert any(f.check == CONTRACT_ONLY_CHECK for f in results["count_tokens.basic"].findings)
    assert results["count_tokens.basic"].tier and results["count_tokens.basic"].feature == "count_tokens"

    # The command says so too: a catalogue without one of the recorded cases.
    cases_dir = tmp_path / "cases"
    cases_dir.mkdir()
    (cases_dir / "one.yaml").write_text(
        "feature: streaming\ncases:\n  - id: streaming.text\n    spec: streaming\n"
        "    request: {body: {model: $model, max_tokens: 8, stream: true, messages: []}}\n"
    )
    main(["recheck", str(recorded / "cassette"), "--cases", str(cases_dir), "--out", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert "judged by the contract checks only" in printed
    assert "count_tokens.basic: the case is no longer in the catalogue" in printed


def test_skipped_cases_stay_skipped(tmp_path: Path, offline: None) -> None:
    """A case skipped before sending has nothing to judge: its verdict and reason stand."""
    entry = {"id": "streaming.text", "feature": "streaming", "outcome": "skipped", "reason": "not claimed"}
    data = {"cassette_version": 1, "target": {"base_url": "http://gw.test"}, "cases": [{**entry, "exchanges": []}]}
    (tmp_path / "cassette.json").write_text(json.dumps(data))
    rechecked = recheck(load_cassette(tmp_path), load_cases())
    (only,) = rechecked.report.results
    assert only.outcome is Outcome.SKIPPED and only.reason == "not claimed"
    assert not rechecked.changed


def test_a_recording_cut_by_the_report_bounds_is_rechecked_and_says_so(tmp_path: Path, offline: None) -> None:
    """An endless stream keeps its first and last events and 256 KiB of raw text; recheck judges that and says so."""
    events = [SSEEvent("ping", '{"type": "ping"}', json={"type": "ping"}) for _ in range(8000)]
    text = 'event: ping\ndata: {"type": "ping"}\n\n' * len(events)
    response = Response(200, {"content-type": "text/event-stream"}, text=text, events=events)
    catalogue = load_cases()
    case = next(case for case in catalogue if case.id == "streaming.text")
    result = CaseResult(
        case.id, case.feature, Outcome.FAILED, exchanges=[Exchange(Request("POST", "http://x"), response)]
    )
    report = RunReport(TargetInfo("http://x"), "", "", [result])
    path = write_cassette(report, [case], tmp_path)
    response_data = json.loads(path.read_text(encoding="utf-8"))["cases"][0]["exchanges"][0]
    assert len(response_data["response"]["text"]) == MAX_BODY_CHARS
    assert response_data["evidence_cut"]["events"]["dropped"] == 8000 - EVENTS_HEAD - EVENTS_TAIL
    (rejudged,) = recheck(load_cassette(tmp_path), catalogue).report.results
    (note,) = [finding for finding in rejudged.findings if finding.check == EVIDENCE_CUT_CHECK]
    assert "6,000 events not kept" in note.message and "262,144 characters kept" in note.message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read cassette"),
        ("{not json", "invalid JSON"),
        ('{"results": []}', "not a cassette"),
        ('{"cassette_version": 99, "cases": []}', "newer than this tool"),
        ('{"cassette_version": 1, "cases": [{"id": "x"}]}', "malformed cassette"),
    ],
)
def test_unreadable_cassettes(
    tmp_path: Path, content: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if content is not None:
        (tmp_path / "cassette.json").write_text(content)
    with pytest.raises(CassetteError, match=message):
        load_cassette(tmp_path)
    assert main(["recheck", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_recheck_applies_the_recorded_providers_documented_deviations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ollama documents that tool_choice is not supported: those failures are deviations, live and offline."""
    with ReferenceServer(app=broken_app("tools", api_key=SECRET)) as server:
        argv = [
            "run",
            "--base-url",
            server.base_url,
            "--api-key",
            SECRET,
            "--provider",
            "ollama",
            "--auth",
            "x-api-key",
        ]
        argv += ["-k", "tools.choice,streaming.structure,count_tokens.basic", "--out", str(tmp_path / "live")]
        main([*argv, "--record", str(tmp_path / "cassette")])
    live = outcomes(tmp_path / "live" / "report.json")
    assert "deviation" in live.values()
    main(["recheck", str(tmp_path / "cassette"), "--out", str(tmp_path / "recheck")])
    assert outcomes(tmp_path / "recheck" / "report.json") == live
    capsys.readouterr()
