"""Error checks: envelopes, the status <-> error type table, mid-stream error events."""

from __future__ import annotations

import pytest

from conformance.checks.errors import expected_error_types
from conformance.model import Severity
from tests.exchanges import (
    COUNT_TOKENS_URL,
    assert_clean,
    check,
    error_body,
    error_exchange,
    only_finding,
    sse,
    stream_exchange,
    text_stream,
)

TABLE = [
    (400, "invalid_request_error"),
    (401, "authentication_error"),
    (402, "billing_error"),
    (403, "permission_error"),
    (404, "not_found_error"),
    (413, "request_too_large"),
    (429, "rate_limit_error"),
    (500, "api_error"),
    (504, "timeout_error"),
    (529, "overloaded_error"),
    (409, "invalid_request_error"),  # unlisted 4xx
    (422, "invalid_request_error"),
    (503, "overloaded_error"),  # unlisted 5xx
    (502, "api_error"),
]


@pytest.mark.parametrize(("status", "error_type"), TABLE)
def test_documented_status_and_type_pairs_are_clean(status, error_type):
    assert_clean(error_exchange(status, error_body(error_type, "something went wrong")))


def test_count_tokens_errors_are_judged_the_same_way():
    assert_clean(
        error_exchange(404, error_body("not_found_error", "model: claude-does-not-exist"), url=COUNT_TOKENS_URL)
    )


def test_status_and_type_must_agree():
    exchange = error_exchange(404, error_body("invalid_request_error", "model: claude-nope"))
    finding = only_finding(exchange, "errors.status-map", "errors.status-map")
    assert finding.message == (
        "HTTP 404 carries error.type 'invalid_request_error'; the contract pairs 404 with not_found_error"
    )


def test_a_5xx_with_a_client_error_type():
    finding = only_finding(
        error_exchange(503, error_body("invalid_request_error")), "errors.status-map", "errors.status-map"
    )
    assert finding.message.endswith("the contract pairs 503 with api_error or overloaded_error")


def test_unknown_error_types_are_left_to_the_schema_check():
    """Bug pattern 31: error.type "error"; one finding, from schema.error, not also from the status map."""
    exchange = error_exchange(400, error_body("error"))
    assert check("errors.status-map", exchange) == []
    assert [f.check for f in check("schema.error", exchange)] == ["schema.error"]


def test_openai_shaped_error_gets_its_own_message():
    """Bug pattern 30."""
    body = {
        "error": {"message": "Invalid model", "type": "invalid_request_error", "code": "model_not_found", "param": None}
    }
    exchange = error_exchange(400, body)
    finding = only_finding(exchange, "errors.envelope", "errors.envelope")
    assert finding.message.startswith("the error body has the OpenAI shape {'error': {'message': 'Invalid model'")
    assert check("schema.error", exchange) == []


def test_an_error_page_that_is_not_json():
    exchange = error_exchange(502, text="<html><body>Bad Gateway</body></html>")
    finding = only_finding(exchange, "errors.envelope", "errors.envelope")
    assert finding.message == "the HTTP 502 error body is not JSON: '<html><body>Bad Gateway</body></html>'"


def test_a_json_error_that_is_not_an_envelope():
    finding = only_finding(error_exchange(422, {"detail": "Field required"}), "errors.envelope", "errors.envelope")
    assert finding.message.startswith("the error body is not an Anthropic error envelope: top-level type is None")


def test_a_json_error_that_is_not_an_object():
    finding = only_finding(error_exchange(400, ["bad request"]), "errors.envelope", "errors.envelope")
    assert finding.message == "the error body is a JSON list, not an object: ['bad request']"


def test_a_missing_request_id_is_a_note_and_null_is_fine():
    body = error_body()
    body["request_id"] = None
    assert check("errors.envelope", error_exchange(400, body)) == []
    del body["request_id"]
    finding = only_finding(error_exchange(400, body), "errors.envelope", "errors.envelope")
    assert finding.severity is Severity.NOTE


def test_expected_error_types():
    assert expected_error_types(418) == {"invalid_request_error"}
    assert expected_error_types(529) == {"overloaded_error"}


# --------------------------------------------------------------------------- mid-stream errors


def test_a_well_formed_error_event_is_clean():
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert_clean(stream_exchange([*text_stream()[:4], error]))


def test_an_openai_shaped_error_event():
    """Bug pattern 32: the upstream error is forwarded in the wrong shape."""
    error = {"error": {"message": "upstream failed", "type": "server_error", "code": 500, "param": None}}
    exchange = stream_exchange([*text_stream()[:4], sse(error, name="error")])
    finding = only_finding(exchange, "errors.stream-event", "stream.error-event")
    assert finding.message.startswith("event 4 (error): the error event has the OpenAI shape")


def test_an_error_event_without_a_message():
    exchange = stream_exchange([*text_stream()[:4], {"type": "error", "error": {"type": "overloaded_error"}}])
    finding = only_finding(exchange, "schema.stream-event", "stream.error-event")
    assert finding.message == "event 4 (error): data.error: 'message' is a required property"
