"""Client impact without the clients: the oracle, the replay server (byte for byte, on loopback), the
calls a report gives to replay, and impact in the model, the gate, the profiles, the matrix and the
command line. tests/test_impact_clients.py runs the real clients."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx
import pytest

from conformance.baseline import BREAKS, failing_outcomes, gate
from conformance.cli import main
from conformance.cli.common import UsageError, impact_clients
from conformance.clients.versions import TYPESCRIPT_SDK
from conformance.consumers import Profile, breakage
from conformance.impact.calls import ABORT, COMPLETE, HOLD, Call, Unreplayable, calls_of
from conformance.impact.compute import compute_impact
from conformance.impact.names import BREAKS as BREAKS_EFFECT
from conformance.impact.names import DEGRADES, UNAFFECTED, UNKNOWN
from conformance.impact.oracle import Effect, Observed, expected_answer, judge, wire_content, worst
from conformance.impact.replay import ReplayServer
from conformance.impact.runners import claude_code_observation, parse_lines
from conformance.impact.tally import summary_lines
from conformance.model import CaseResult, Exchange, Outcome, Request, RunReport, TargetInfo
from conformance.report import write_reports
from conformance.report.matrix import build_matrix, render_matrix_markdown
from tests.exchanges import (
    block_start,
    count_tokens_exchange,
    delta,
    error_exchange,
    message_delta,
    message_exchange,
    message_start,
    stream_exchange,
    text_stream,
    tool_request_body,
    tool_stream,
)


def failed(*exchanges: Exchange, case_id: str = "streaming.text", impact: list | None = None) -> CaseResult:
    return CaseResult(case_id, "streaming", Outcome.FAILED, exchanges=list(exchanges), impact=impact or [])


def entry(client: str, effect: str, detail: str = "") -> dict[str, str]:
    return {"client": client, "version": "1", "effect": effect, "detail": detail}


def report_of(*results: CaseResult) -> RunReport:
    return RunReport(TargetInfo("http://127.0.0.1:1"), "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", list(results))


def message(text: str = "ALPHA", stop_reason: str = "end_turn", output_tokens: int = 6, tools: list | None = None):
    usage = {"input_tokens": 21, "output_tokens": output_tokens}
    return {"text": text, "tools": tools or [], "stop_reason": stop_reason, "usage": usage}


# --------------------------------------------------------------------------- the oracle


def test_the_wire_content_is_gathered_whatever_the_framing() -> None:
    events = [message_start(), delta(0, "text_delta", "AL"), delta(0, "text_delta", "PHA"), message_delta()]
    assert wire_content(stream_exchange(events).response)[0] == "ALPHA"  # no block start, no stop: still text
    _, tools, stop_reason = wire_content(stream_exchange(tool_stream()).response)
    assert tools == [("get_weather", {"city": "Paris"})]
    assert stop_reason == "tool_use"


def test_the_contract_answer_takes_the_case_expectations_over_the_wire() -> None:
    response = stream_exchange(text_stream()).response
    assert expected_answer(response, {}, False, {"stop_reason": "stop_sequence"}).stop_reason == "stop_sequence"
    assert expected_answer(response, {}, False, {"status": 400}).is_error
    assert not expected_answer(response, {}, False, None).is_error  # no case: the recorded status stands
    assert expected_answer(response, {}, False, {"status": "4xx"}).wants(404)
    error = error_exchange(500).response
    assert expected_answer(error, {}, False, None).is_error


@pytest.mark.parametrize(
    ("observed", "effect"),
    [
        (Observed(message=message()), UNAFFECTED),
        (Observed(timed_out=True), BREAKS_EFFECT),
        (Observed(error="IndexError: list index out of range"), BREAKS_EFFECT),
        (Observed(message=message(text="")), BREAKS_EFFECT),
        (Observed(message=message(text="AL")), DEGRADES),
        (Observed(message=message(stop_reason="max_tokens")), DEGRADES),
        (Observed(message=message(output_tokens=0)), DEGRADES),
    ],
)
def test_a_message_answer_is_judged_by_what_the_client_made_of_it(observed: Observed, effect: str) -> None:
    expected = expected_answer(stream_exchange(text_stream()).response, {}, False, None)
    assert judge(expected, observed).effect == effect


def test_a_client_refusing_a_max_tokens_stop_refuses_the_contracts_answer_alike() -> None:
    events = [*text_stream()[:-2], message_delta("max_tokens"), text_stream()[-1]]
    expected = expected_answer(stream_exchange(events).response, {}, False, {"stop_reason": "max_tokens"})
    refused = Observed(error="API Error: Claude's response exceeded the 32000 output token maximum.")
    assert judge(expected, refused).effect == UNAFFECTED
    cut_short = expected_answer(stream_exchange(events).response, {}, False, {"stop_reason": "end_turn"})
    assert judge(cut_short, refused).effect == BREAKS_EFFECT


def test_lost_tool_input_degrades_a_client_that_shows_it_but_not_one_that_runs_tools() -> None:
    events = tool_stream(fragments=())
    expected = expected_answer(stream_exchange(events).response, tool_request_body(), False, None)
    got = Observed(message=message("I'll check the weather.", "tool_use", tools=[{"name": "get_weather", "input": {}}]))
    verdict = judge(expected, got)
    assert verdict.effect == DEGRADES and "lacks city" in verdict.detail
    assert judge(expected, Observed(message=message("", "tool_use")), sees_tool_input=False).effect == UNAFFECTED


@pytest.mark.parametrize(
    ("observed", "effect"),
    [
        (Observed(error="BadRequestError: 400 max_tokens: Field required", status=400), UNAFFECTED),
        (Observed(error="API Error: 400 max_tokens: Field required"), UNAFFECTED),
        (Observed(error="InternalServerError: 500 oops", status=500), DEGRADES),
        (Observed(message=message()), DEGRADES),
    ],
)
def test_an_error_answer_is_judged_by_the_error_the_client_raises(observed: Observed, effect: str) -> None:
    expected = expected_answer(error_exchange(400).response, {}, False, {"status": 400})
    assert judge(expected, observed).effect == effect


def test_a_stream_error_must_reach_the_client_as_that_error() -> None:
    expected = expected_answer(stream_exchange(text_stream()).response, {}, False, {"stream_error": "overloaded_error"})
    assert judge(expected, Observed(error="OverloadedError: Overloaded")).effect == UNAFFECTED
    assert judge(expected, Observed(error="APIConnectionError: Connection error.")).effect == DEGRADES
    assert judge(expected, Observed(message=message())).effect == DEGRADES
    api_error = expected_answer(stream_exchange(text_stream()).response, {}, False, {"stream_error": "api_error"})
    assert judge(api_error, Observed(error="InternalServerError: 500 Internal server error")).effect == UNAFFECTED
    assert judge(api_error, Observed(error="APIConnectionError: Connection error.")).effect == DEGRADES


def test_a_case_takes_the_worst_effect_of_its_calls() -> None:
    effects = [Effect(UNAFFECTED), Effect(UNKNOWN, "cut"), Effect(DEGRADES, "text"), Effect(UNAFFECTED)]
    assert worst(effects) == Effect(DEGRADES, "text")
    assert worst([Effect(BREAKS_EFFECT, "x"), *effects]).effect == BREAKS_EFFECT


# --------------------------------------------------------------------------- calls of a report


def test_only_messages_and_count_tokens_calls_are_replayed_and_claude_code_only_streams_or_errors() -> None:
    get_models = Exchange(Request("GET", "https://gateway.example.test/v1/models"), None)
    result = failed(
        stream_exchange(text_stream()), message_exchange(), error_exchange(529), count_tokens_exchange(), get_models
    )
    found = calls_of(result, None, 10)
    assert [call.key for call in found if isinstance(call, Call)] == ["10", "11", "12", "13"]
    assert [call.claude_code_sends_it for call in found] == [True, False, True, False]


def test_a_response_cut_short_is_replayed_cut_short_and_one_cut_by_a_bound_is_unknown() -> None:
    closed = stream_exchange(
        text_stream()[:3], truncated="the target closed the connection before the body was complete"
    )
    hung = stream_exchange(text_stream()[:3], truncated="no bytes for 30 s (max silence)")
    bounded = stream_exchange(text_stream(), truncated="the stream exceeded 10 events")
    cut = stream_exchange(text_stream())
    cut.evidence_cut = {"events": {"kept": 2, "dropped": 5}}
    lost = Exchange(stream_exchange(text_stream()).request, None, error="connection refused")
    found = calls_of(failed(closed, hung, bounded, cut, lost), None, 0)
    assert [call.ending for call in found[:2] if isinstance(call, Call)] == [ABORT, HOLD]
    reasons = [call.reason for call in found[2:] if isinstance(call, Unreplayable)]
    assert len(reasons) == 3
    assert "the stream exceeded 10 events" in reasons[0]
    assert "report bounds" in reasons[1]
    assert "connection refused" in reasons[2]
    assert calls_of(failed(cut), None, 0)[0].claude_code_sends_it


# --------------------------------------------------------------------------- the replay server


def test_the_replay_serves_what_was_recorded_whatever_is_asked() -> None:
    streamed = stream_exchange(text_stream()).response
    streamed.text = ""  # as report.json keeps a stream: events only
    error = error_exchange(529, headers={"content-type": "application/json", "x-should-retry": "true"}).response
    with ReplayServer({"0": (streamed, COMPLETE), "1": (error, COMPLETE)}) as server, httpx.Client() as client:
        first = client.post(server.url_for("0") + "/v1/messages", json={"anything": True})
        again = client.post(server.url_for("0") + "/v1/messages?beta=true", content=b"not even JSON")
        failing = client.post(server.url_for("1") + "/v1/messages", json={})
        unknown = client.post(server.url_for("9") + "/v1/messages", json={})
    expected = "".join(
        f"event: {event.event}\ndata: {event.data}\n\n" for event in stream_exchange(text_stream()).response.events
    )
    assert first.status_code == 200 and first.text == expected and again.text == expected
    assert first.headers["content-type"] == streamed.headers["content-type"]
    assert failing.status_code == 529 and failing.headers["x-should-retry"] == "true"
    assert failing.json() == error.json
    assert unknown.status_code == 404


def test_the_replay_keeps_a_recorded_raw_stream_byte_for_byte() -> None:
    raw = 'event: message_start\r\ndata: {"type": "message_start"}\r\n\r\n: a comment\n\n'
    response = stream_exchange(text_stream()).response
    response.text = raw
    with ReplayServer({"0": (response, COMPLETE)}) as server:
        assert httpx.post(server.url_for("0") + "/v1/messages").content == raw.encode()


def test_a_response_the_target_cut_short_is_cut_short_again() -> None:
    response = stream_exchange([message_start(), block_start(0, {"type": "text", "text": ""})]).response
    with ReplayServer({"0": (response, ABORT)}) as server, pytest.raises(httpx.RemoteProtocolError):
        httpx.post(server.url_for("0") + "/v1/messages")


def test_a_response_left_hanging_is_held_until_the_client_gives_up() -> None:
    response = stream_exchange([message_start()]).response
    with (
        ReplayServer({"0": (response, HOLD)}) as server,
        pytest.raises(httpx.ReadTimeout),
        httpx.stream("POST", server.url_for("0") + "/v1/messages", timeout=1.0) as answer,
    ):
        answer.read()


# --------------------------------------------------------------------------- the runners' output


def test_the_scripts_lines_and_claude_codes_result_are_read() -> None:
    lines = "\n".join(
        [
            json.dumps({"key": "0", "message": message()}),
            "a stray warning",
            json.dumps({"key": "1", "error": "BadRequestError: 400 bad", "status": 400}),
        ]
    )
    observed = parse_lines(lines)
    assert observed["0"].message == message() and observed["1"] == Observed(
        error="BadRequestError: 400 bad", status=400
    )
    result = {"type": "result", "subtype": "success", "is_error": False, "result": "ALPHA", "stop_reason": "end_turn"}
    result["usage"] = {"input_tokens": 9, "output_tokens": 1}
    seen = claude_code_observation(0, "warning: something\n" + json.dumps(result))
    assert seen.message == {**message(), "usage": {"input_tokens": 9, "output_tokens": 1}}
    failure = {**result, "is_error": True, "result": "API Error: 400 bad", "terminal_reason": "api_error"}
    assert claude_code_observation(1, json.dumps(failure)) == Observed(error="API Error: 400 bad")
    assert claude_code_observation(None, "") == Observed(timed_out=True)


# --------------------------------------------------------------------------- impact everywhere


def test_impact_goes_through_report_json_and_is_shown_in_report_html(tmp_path: Path) -> None:
    detail = "IndexError: <list index out of range>"
    result = failed(stream_exchange(text_stream()), impact=[entry("python-sdk", BREAKS, detail)])
    paths = write_reports(report_of(result), tmp_path)
    document = json.loads(paths["json"].read_text())
    assert document["results"][0]["impact"] == [entry("python-sdk", BREAKS, detail)]
    assert RunReport.from_dict(document).results[0].impact == [entry("python-sdk", BREAKS, detail)]
    page = paths["html"].read_text()
    assert "Client impact" in page and "IndexError: &lt;list index out of range&gt;" in page
    assert "Python SDK: breaks 1" in page
    assert "impact" not in json.loads(write_reports(report_of(failed()), tmp_path / "none")["json"].read_text())


def test_the_breaks_gate_fails_only_on_cases_that_break_a_client() -> None:
    results = [
        failed(case_id="a", impact=[entry("claude-code", BREAKS), entry("python-sdk", UNAFFECTED)]),
        failed(case_id="b", impact=[entry("python-sdk", BREAKS)]),
        failed(case_id="c", impact=[entry("python-sdk", DEGRADES)]),
    ]
    assert failing_outcomes(BREAKS) == frozenset()
    assert [change.id for change in gate(results, None, BREAKS).regressions] == ["a", "b"]
    assert [change.id for change in gate(results, None, BREAKS, ["claude-code"]).regressions] == ["a"]
    assert gate(results, None, "failed").regressions  # the outcome gates are unchanged


def test_a_gate_on_impact_over_a_report_without_impact_is_a_usage_error() -> None:
    args = argparse.Namespace(fail_on="failed", fail_on_impact=["claude-code"])
    with pytest.raises(UsageError, match="--impact"):
        impact_clients(args, report_of(failed()))
    assert args.fail_on == "failed"  # reading the gate changes no flag
    with_impact = report_of(failed(impact=[entry("claude-code", DEGRADES)]))
    assert impact_clients(args, with_impact) == ("claude-code",)
    assert impact_clients(argparse.Namespace(fail_on="failed", fail_on_impact=None), report_of(failed())) == ()


def test_profiles_and_the_matrix_count_the_cases_that_break_each_client() -> None:
    profile = Profile("sdk", "SDKs", features=frozenset({"streaming"}), clients=("python-sdk", "typescript-sdk"))
    results = [
        failed(case_id="a", impact=[entry("python-sdk", BREAKS), entry("typescript-sdk", UNAFFECTED)]),
        failed(case_id="b", impact=[entry("python-sdk", DEGRADES), entry("typescript-sdk", UNAFFECTED)]),
    ]
    assert breakage(profile, results) == [
        "breaks Python SDK: 1 of its 2 cases",
        "breaks TypeScript SDK: 0 of its 2 cases",
    ]
    assert summary_lines(results) == ["Python SDK: breaks 1, degrades 1", "TypeScript SDK: unaffected 2"]
    markdown = render_matrix_markdown(build_matrix([("r.json", report_of(*results))], [profile]))
    assert "| **Python SDK** (client) | breaks 1 · degrades 1 |" in markdown
    assert "breaks Python SDK: 1 of its 2 cases" in markdown


def test_a_client_that_cannot_be_installed_leaves_its_effects_unknown_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")  # no npm: the TypeScript SDK cannot be installed
    report = compute_impact(report_of(failed(stream_exchange(text_stream()))), [TYPESCRIPT_SDK], tmp_path)
    [impact] = report.results[0].impact
    assert impact["client"] == "typescript-sdk" and impact["effect"] == UNKNOWN
    assert "not run" in impact["detail"] and "npm" in impact["detail"]


def test_the_command_refuses_a_missing_report_or_an_unknown_client_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["impact", str(tmp_path / "nothing.json")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "cannot read report" in error
    with pytest.raises(SystemExit) as stopped:
        main(["impact", str(tmp_path), "--clients", "netscape"])
    assert stopped.value.code == 2
    assert "expected client names" in capsys.readouterr().err


def test_a_report_where_everything_passed_has_nothing_to_replay(tmp_path: Path) -> None:
    passed = CaseResult("text.basic", "text", Outcome.PASSED, exchanges=[message_exchange()])
    write_reports(report_of(passed), tmp_path)
    assert main(["impact", str(tmp_path / "report.json"), "--clients", "python-sdk"]) == 0
    assert "impact" not in json.loads((tmp_path / "report.json").read_text())["results"][0]


def test_a_cassette_is_read_as_the_report_of_its_recorded_cases(tmp_path: Path) -> None:
    from conformance.cassette import write_cassette

    get_models = Exchange(Request("GET", "https://gateway.example.test/v1/models"), None, error="refused")
    write_cassette(report_of(failed(get_models, case_id="models.list")), [], tmp_path / "cassette")
    assert main(["impact", str(tmp_path / "cassette"), "--out", str(tmp_path / "out")]) == 0
    [result] = json.loads((tmp_path / "out" / "report.json").read_text())["results"]
    assert result["id"] == "models.list" and result["outcome"] == "failed" and "impact" not in result
