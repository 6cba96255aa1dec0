"""Header checks: request-id and Content-Type."""

from __future__ import annotations

import dataclasses

import pytest

from conformance.model import Severity
from tests.exchanges import (
    REQUEST_ID,
    assert_clean,
    check,
    count_tokens_exchange,
    error_body,
    error_exchange,
    json_headers,
    message_exchange,
    messages_body,
    only_finding,
    stream_exchange,
    stream_headers,
    text_stream,
)


@pytest.mark.parametrize(
    "exchange",
    [
        message_exchange(),
        stream_exchange(text_stream()),
        error_exchange(429, error_body("rate_limit_error", "Number of request tokens has exceeded your rate limit")),
        count_tokens_exchange(),
    ],
    ids=["message", "stream", "error", "count_tokens"],
)
def test_correct_headers_have_no_findings(exchange):
    assert_clean(exchange)


@pytest.mark.parametrize(
    "exchange",
    [
        message_exchange(headers={"content-type": "application/json"}),
        stream_exchange(text_stream(), headers={"content-type": "text/event-stream"}),
        error_exchange(401, headers={"content-type": "application/json"}),
    ],
    ids=["message", "stream", "error"],
)
def test_every_response_has_a_request_id(exchange):
    finding = only_finding(exchange, "headers.request-id", "headers.request-id")
    assert finding.message.endswith("response has no request-id header")
    # Only the cases written for it fail on a missing request-id; elsewhere it is a warning.
    assert finding.severity is Severity.WARNING


def test_request_id_header_names_are_case_insensitive():
    assert (
        check(
            "headers.request-id",
            message_exchange(headers={"Request-Id": REQUEST_ID, "Content-Type": "application/json"}),
        )
        == []
    )


def test_an_empty_request_id_is_a_finding():
    finding = only_finding(
        message_exchange(headers=json_headers(**{"request-id": " "})), "headers.request-id", "headers.request-id"
    )
    assert finding.message == "the HTTP 200 response has an empty request-id header"


def test_a_stream_must_be_an_event_stream():
    exchange = stream_exchange(text_stream(), headers=json_headers())
    finding = only_finding(exchange, "headers.content-type", "headers.content-type")
    assert (
        finding.message == "the response to a stream: true request has 'application/json'; expected text/event-stream"
    )


def test_a_stream_request_answered_with_json():
    exchange = message_exchange(request_body=messages_body(stream=True))
    finding = only_finding(exchange, "headers.content-type", "headers.content-type")
    assert "the response to a stream: true request has 'application/json'" in finding.message


def test_a_json_answer_must_be_json():
    exchange = message_exchange(headers=json_headers(**{"content-type": "text/plain; charset=utf-8"}))
    finding = only_finding(exchange, "headers.content-type", "headers.content-type")
    assert finding.message == (
        "the HTTP 200 response to a non-stream request has 'text/plain; charset=utf-8'; expected application/json"
    )


def test_an_error_to_a_stream_request_is_json():
    exchange = error_exchange(400, headers=stream_headers())
    exchange.request.body = messages_body(stream=True)
    finding = only_finding(exchange, "headers.content-type", "headers.content-type")
    assert finding.message.startswith("the HTTP 400 error response has 'text/event-stream; charset=utf-8'")


def test_a_missing_content_type():
    finding = only_finding(
        message_exchange(headers={"request-id": REQUEST_ID}), "headers.content-type", "headers.content-type"
    )
    assert "has no Content-Type header" in finding.message


def test_media_type_parameters_and_case_are_fine():
    headers = json_headers(**{"content-type": "Application/JSON; charset=utf-8"})
    assert check("headers.content-type", message_exchange(headers=headers)) == []


def test_a_head_probe_has_no_media_type_to_judge():
    """Claude Code's `HEAD /` reachability probe: a gateway may answer it with its home page."""
    exchange = message_exchange(headers=json_headers(**{"content-type": "text/html; charset=utf-8"}))
    probe = dataclasses.replace(exchange, request=dataclasses.replace(exchange.request, method="HEAD"))
    assert check("headers.content-type", exchange) != []
    assert check("headers.content-type", probe) == []
