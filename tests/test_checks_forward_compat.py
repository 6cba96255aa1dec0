"""Forward compatibility: what the API may add tomorrow must not be flagged today.

The API adds response fields, block types, delta types, event types and stop reasons over
time, and its docs tell clients to tolerate them. The checks may note an unknown type (so a
gateway inventing one shows up), but never fail an exchange for it.
"""

from __future__ import annotations

import pytest

from conformance.checks import run_checks
from conformance.model import Severity
from tests.exchanges import (
    MESSAGE_STOP,
    PING,
    assert_clean,
    block_start,
    block_stop,
    count_tokens_exchange,
    delta,
    error_exchange,
    message,
    message_delta,
    message_exchange,
    message_start,
    stream_exchange,
    text_block,
    text_stream,
    usage,
)

NOTED = {"schema.unknown-type", "stream.unknown-event"}


def assert_tolerated(exchange) -> None:
    assert_clean(exchange)
    notes = {f.check for f in run_checks(exchange) if f.severity is Severity.NOTE}
    assert notes <= NOTED, notes


def test_unknown_fields_everywhere_in_a_message() -> None:
    body = message(
        [text_block("ALPHA", citations=None, annotations=[{"kind": "future"}])],
        context_management={"applied_edits": []},
        usage=usage(output_tokens_details={"thinking_tokens": 0}, iterations=[], cache_hint="warm"),
        container={"id": "container_011", "expires_at": "2026-08-01T00:00:00Z", "skills": []},
    )
    assert_tolerated(message_exchange(body))


@pytest.mark.parametrize(
    ("stop_reason", "extra"),
    [
        ("pause_turn", {}),
        ("refusal", {"stop_details": {"type": "refusal", "category": "cyber", "explanation": "Policy."}}),
        ("refusal", {"stop_details": {"type": "refusal", "category": None, "explanation": None}}),
        ("model_context_window_exceeded", {}),
        ("compaction", {}),
    ],
)
def test_newer_stop_reasons_are_accepted(stop_reason: str, extra: dict) -> None:
    assert_tolerated(message_exchange(message(stop_reason=stop_reason, **extra)))


def test_a_refusal_may_come_with_no_content() -> None:
    assert_tolerated(message_exchange(message([], stop_reason="refusal", usage=usage(output_tokens=1))))


def test_unknown_block_types_in_a_message_are_noted_not_failed() -> None:
    blocks = [
        {"type": "advisor_tool_result", "tool_use_id": "srvtoolu_01", "content": {"advice": "go"}},
        text_block("A"),
    ]
    exchange = message_exchange(message(blocks))
    assert_tolerated(exchange)
    assert any(f.check == "schema.unknown-type" for f in run_checks(exchange))


def test_unknown_events_fields_blocks_and_deltas_in_a_stream() -> None:
    events = [
        {**message_start(), "trace": {"region": "eu"}},
        {"type": "message_annotation", "note": "new"},
        block_start(0, {"type": "compaction", "content": ""}),
        delta(0, "compaction_delta", "summary"),
        block_stop(0),
        block_start(1, {"type": "text", "text": "", "citations": []}),
        PING,
        {**delta(1, "text_delta", "AL"), "sequence": 1},
        delta(1, "text_annotation_delta", {"kind": "emphasis"}),
        delta(1, "text_delta", "PHA"),
        {"type": "content_block_progress", "index": 1, "fraction": 0.5},
        block_stop(1),
        message_delta(stop_reason="end_turn", stop_details=None),
        {"type": "message_metrics", "ttft_ms": 80},
        MESSAGE_STOP,
    ]
    exchange = stream_exchange(events)
    assert_tolerated(exchange)
    noted = {f.check for f in run_checks(exchange) if f.severity is Severity.NOTE}
    assert noted == NOTED


def test_newer_stop_reasons_in_a_stream() -> None:
    events = text_stream()
    events[-2] = message_delta(stop_reason="model_context_window_exceeded")
    assert_tolerated(stream_exchange(events))


def test_unknown_fields_in_error_bodies_and_count_tokens_answers() -> None:
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down.", "retry_in": 3},
            "request_id": "req_011", "docs": "https://docs.claude.com/en/api/errors"}  # fmt: skip
    assert_tolerated(error_exchange(429, body))
    assert_tolerated(count_tokens_exchange({"input_tokens": 14, "context_management": {"original_input_tokens": 20}}))
