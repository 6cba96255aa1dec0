"""Case expectations: each key fails when the answer does not meet it."""

from __future__ import annotations

import pytest

from conformance.checks.expect import check_expectations
from conformance.model import Exchange, Request, Response


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
