"""Case expectations: each key fails when the answer does not meet it."""

from __future__ import annotations

import json

import pytest

from conformance.checks.expect import check_expectations
from conformance.model import Exchange, Request, Response, Severity, SSEEvent


def exchange(status: int = 200, body: object = None, headers: dict | None = None) -> Exchange:
    return Exchange(
        request=Request(method="POST", url="http://x/v1/messages", body={}),
        response=Response(status=status, headers=headers or {"content-type": "application/json"}, json=body),
    )


def message(text: str = "ALPHA", stop_reason: str = "end_turn", **extra: object) -> dict:
    content = extra.pop("content", [{"type": "text", "text": text}])
    return {"type": "message", "content": content, "stop_reason": stop_reason, "stop_sequence": None, **extra}


def checks(ex: Exchange, expect: dict, history: list | None = None) -> list[str]:
    return [f.check for f in check_expectations(ex, expect, "clause", history)]


def test_meeting_every_expectation_gives_no_finding() -> None:
    expect = {"status": 200, "stream": False, "stop_reason": "end_turn", "text": "ALPHA", "content_types": ["text"]}
    assert checks(exchange(body=message()), expect) == []


@pytest.mark.parametrize(
    ("expect", "check"),
    [
        ({"status": 400}, "expect.status"),
        ({"stop_reason": "max_tokens"}, "expect.stop_reason"),
        ({"stop_sequence": "STOP"}, "expect.stop_sequence"),
        ({"text": "BRAVO"}, "expect.text"),
        ({"text_contains": "BRAVO"}, "expect.text_contains"),
        ({"content_types": ["tool_use"]}, "expect.content_types"),
        ({"tool_use": {"name": "get_weather"}}, "expect.tool_use"),
        ({"stream": True}, "expect.stream"),
        ({"headers": {"request-id": True}}, "expect.headers"),
    ],
)
def test_each_expectation_can_fail(expect: dict, check: str) -> None:
    assert checks(exchange(body=message()), expect) == [check]


def test_accepting_an_invalid_request_is_called_out() -> None:
    [finding] = check_expectations(exchange(body=message()), {"status": 400}, "clause")
    assert "accepted what it should refuse" in finding.message
    assert finding.spec_ref == "clause"


def test_refusing_a_valid_request_quotes_the_error() -> None:
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": "nope"}}
    [finding] = check_expectations(exchange(400, body), {"status": 200}, "clause")
    assert "got 400 (nope)" in finding.message


def test_status_classes_and_alternatives() -> None:
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": "x"}}
    assert checks(exchange(422, error), {"status": "4xx"}) == []
    assert checks(exchange(413, error), {"status": [400, 413]}) == []


def test_error_type_mismatch() -> None:
    body = {"type": "error", "error": {"type": "api_error", "message": "x"}}
    assert checks(exchange(400, body), {"status": 400, "error_type": "invalid_request_error"}) == ["expect.error_type"]


def test_input_tokens_must_grow_over_an_earlier_step() -> None:
    history = [{"response": {"input_tokens": 10}, "message": None}]
    assert checks(exchange(body={"input_tokens": 12}), {"input_tokens_above_step": 0}, history) == []
    assert checks(exchange(body={"input_tokens": 10}), {"input_tokens_above_step": 0}, history) == [
        "expect.input_tokens_above_step"
    ]


def test_no_response_means_no_expectation_findings() -> None:
    ex = Exchange(request=Request(method="POST", url="http://x"), error="connection failed")
    assert check_expectations(ex, {"status": 200}, "clause") == []


# --------------------------------------------------------------------------- the keys added for the catalogue


def stream(*payloads: dict, times: list[float] | None = None) -> Exchange:
    events = [
        SSEEvent(event=p.get("type"), data=json.dumps(p), json=p, t=(times[i] if times else 0.0))
        for i, p in enumerate(payloads)
    ]
    return Exchange(
        request=Request(method="POST", url="http://x/v1/messages", body={"stream": True}),
        response=Response(status=200, headers={"content-type": "text/event-stream"}, events=events),
    )


START = {"type": "message_start", "message": message("", content=[], stop_reason=None)}
STOP = {"type": "message_stop"}
PING = {"type": "ping"}


def tool(name: str = "get_weather", **input_: object) -> dict:
    return {"type": "tool_use", "id": f"toolu_{name}", "name": name, "input": input_ or {"city": "Paris"}}


@pytest.mark.parametrize(
    ("expect", "content", "check"),
    [
        ({"tool_use_count": 2}, [tool()], "expect.tool_use_count"),
        ({"blocks_include": ["thinking"]}, [{"type": "text", "text": "x"}], "expect.blocks_include"),
        ({"citations": True}, [{"type": "text", "text": "x", "citations": None}], "expect.citations"),
        (
            {"citations": False},
            [{"type": "text", "text": "x", "citations": [{"type": "char_location"}]}],
            "expect.citations",
        ),
    ],
)
def test_block_expectations(expect: dict, content: list, check: str) -> None:
    assert checks(exchange(body=message(content=content)), expect) == [check]


def test_block_expectations_that_hold() -> None:
    cited = {"type": "text", "text": "x", "citations": [{"type": "char_location"}]}
    body = message(content=[{"type": "thinking", "thinking": "", "signature": "s"}, cited, tool(), tool("get_time")])
    expect = {"tool_use_count": 2, "blocks_include": ["thinking", "tool_use"], "citations": True}
    assert checks(exchange(body=body), expect) == []


def test_stop_details_is_a_subset_match_or_null() -> None:
    refusal = message(stop_reason="refusal", stop_details={"type": "refusal", "category": None, "explanation": None})
    assert checks(exchange(body=refusal), {"stop_details": {"type": "refusal"}}) == []
    assert checks(exchange(body=refusal), {"stop_details": None}) == ["expect.stop_details"]
    assert checks(exchange(body=message(stop_details=None)), {"stop_details": {"type": "refusal"}}) == [
        "expect.stop_details"
    ]


def test_json_output_must_parse_and_match_the_requested_schema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    ex = exchange(body=message('{"n": 3}'))
    ex.request.body = {"output_config": {"format": {"type": "json_schema", "schema": schema}}}
    assert checks(ex, {"json_output": True}) == []
    ex.response.json = message('{"n": "three"}')
    assert checks(ex, {"json_output": True}) == ["expect.json_output"]
    ex.response.json = message("Sure! Here is the JSON: {")
    assert checks(ex, {"json_output": True}) == ["expect.json_output"]


def test_same_content_compares_text_and_tool_calls_but_not_ids_or_thinking() -> None:
    before = message(content=[{"type": "thinking", "thinking": "a", "signature": "s"}, tool()])
    history = [{"message": before, "response": before}]
    same = message(content=[{**tool(), "id": "toolu_other"}])
    assert checks(exchange(body=same), {"same_content_as_step": 0}, history) == []
    other = message(content=[tool(city="Rome")])
    assert checks(exchange(body=other), {"same_content_as_step": 0}, history) == ["expect.same_content_as_step"]


def test_input_tokens_near_an_earlier_step() -> None:
    history = [{"response": {"input_tokens": 100}, "message": None}]
    assert checks(exchange(body={"input_tokens": 120}), {"input_tokens_near_step": 0}, history) == []
    assert checks(exchange(body={"input_tokens": 50}), {"input_tokens_near_step": 0}, history) == [
        "expect.input_tokens_near_step"
    ]
    small = [{"response": {"input_tokens": 8}, "message": None}]
    assert checks(exchange(body={"input_tokens": 12}), {"input_tokens_near_step": 0}, small) == []


def test_stream_error_must_end_the_stream_with_that_type() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert checks(stream(START, PING, error), {"stream_error": "overloaded_error"}) == []
    masked = {"type": "error", "error": {"type": "invalid_request_error", "message": "validation"}}
    assert checks(stream(START, PING, masked), {"stream_error": "overloaded_error"}) == ["expect.stream_error"]
    assert checks(stream(START, PING), {"stream_error": "overloaded_error"}) == ["expect.stream_error"]


def test_event_expectations() -> None:
    events = (START, PING, {"type": "future_thing"}, PING, STOP)
    assert checks(stream(*events), {"event_types_include": ["future_thing"], "min_events": {"ping": 2}}) == []
    assert checks(stream(*events), {"event_types_include": ["other"]}) == ["expect.event_types_include"]
    assert checks(stream(*events), {"min_events": {"ping": 3}}) == ["expect.min_events"]


def test_max_event_gap_uses_arrival_times() -> None:
    assert checks(stream(START, PING, STOP, times=[0.0, 1.0, 1.9]), {"max_event_gap": 1.0}) == []
    [finding] = check_expectations(stream(START, PING, STOP, times=[0.0, 3.5, 3.6]), {"max_event_gap": 2}, "c")
    assert finding.check == "expect.max_event_gap" and "3.5 s" in finding.message


def severities(ex: Exchange, expect: dict) -> dict[str, Severity]:
    return {f.check: f.severity for f in check_expectations(ex, expect, "clause")}


def test_what_the_docs_allow_but_do_not_promise_is_a_warning() -> None:
    """Pings, their cadence and retry-after: expected and missing, they warn; other expectations fail."""
    assert severities(stream(START, STOP), {"min_events": {"ping": 1}}) == {"expect.min_events": Severity.WARNING}
    assert severities(stream(START, STOP), {"event_types_include": ["ping"]}) == {
        "expect.event_types_include": Severity.WARNING
    }
    quiet = stream(START, STOP, times=[0.0, 3.0])
    assert severities(quiet, {"max_event_gap": 1}) == {"expect.max_event_gap": Severity.WARNING}
    limited = exchange(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    assert severities(limited, {"status": 429, "headers": {"retry-after": True}}) == {
        "expect.headers": Severity.WARNING
    }
    assert severities(exchange(body=message()), {"headers": {"request-id": True}}) == {
        "expect.headers": Severity.FAILURE
    }
    assert severities(stream(START, STOP), {"min_events": {"content_block_delta": 1}}) == {
        "expect.min_events": Severity.FAILURE
    }


def test_stream_expectations_fail_on_a_json_answer() -> None:
    assert checks(exchange(body=message()), {"min_events": {"ping": 1}}) == ["expect.min_events"]
