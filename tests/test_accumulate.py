"""The accumulator rebuilds a streamed Message as the official SDKs do."""

from __future__ import annotations

import time

from conformance.accumulate import accumulate
from conformance.checks import common, run_checks
from tests.exchanges import (
    MESSAGE_STOP,
    block_start,
    block_stop,
    continuation_message,
    continuation_stream,
    delta,
    failures,
    message_delta,
    message_start,
    program_message,
    program_stream,
    sse,
    stream_exchange,
    text_block,
    text_stream,
    tool_request_body,
    tool_stream,
)


def _events(payloads):
    return [sse(payload) for payload in payloads]


def test_a_text_stream_folds_into_its_message():
    rebuilt = accumulate(_events(text_stream()))
    assert rebuilt.message["content"] == [{"type": "text", "text": "ALPHA"}]
    assert rebuilt.message["stop_reason"] == "end_turn"
    assert rebuilt.start_usage["output_tokens"] == 1
    assert [position for position, _ in rebuilt.usage_trail] == [6]
    assert rebuilt.problems == []


def test_tool_input_is_the_parse_of_its_fragments():
    rebuilt = accumulate(_events(tool_stream()))
    assert rebuilt.message["content"][1]["input"] == {"city": "Paris"}
    assert rebuilt.partial_json == {1: '{"city": "Paris"}'}
    assert rebuilt.block_indexes == [0, 1]


def test_message_start_content_is_kept():
    """The SDKs start from message_start.message as it is: a complete message needs no block events."""
    rebuilt = accumulate(_events(continuation_stream()))
    assert rebuilt.message == continuation_message()
    assert rebuilt.block_indexes == [0]


def test_blocks_after_message_start_content_are_appended():
    start = message_start()
    start["message"]["content"] = [text_block("One. ")]
    events = [start, block_start(1, text_block("")), delta(1, "text_delta", "Two."), block_stop(1), message_delta()]
    rebuilt = accumulate(_events([*events, MESSAGE_STOP]))
    assert rebuilt.message["content"] == [text_block("One. "), text_block("Two.")]
    assert rebuilt.block_indexes == [0, 1]


def test_a_tool_call_that_arrives_whole_keeps_its_input():
    rebuilt = accumulate(_events(program_stream()))
    assert rebuilt.message["content"] == program_message()["content"]
    assert 2 not in rebuilt.partial_json


def test_a_null_container_in_message_delta_keeps_the_one_message_start_announced():
    start = {"type": "message_start", "message": {**program_message(), "content": [], "stop_reason": None}}
    end = message_delta("tool_use")
    end["delta"]["container"] = None
    rebuilt = accumulate(_events([start, end, MESSAGE_STOP]))
    assert rebuilt.message["container"] == program_message()["container"]


def test_deltas_for_unstarted_blocks_and_bad_json_are_problems_not_exceptions():
    events = [*tool_stream()[:5], delta(7, "text_delta", "x"), *tool_stream()[5:6], *tool_stream()[7:]]
    rebuilt = accumulate(_events(events))
    assert rebuilt.problems[0] == "content_block_delta for index 7, which was never started"
    assert rebuilt.problems[1].startswith("block 1: the concatenated partial_json is not valid JSON")


def test_folding_is_linear_in_the_size_of_the_stream():
    """300,000 deltas: joined once, this takes about a second; appended string by string, minutes."""
    piece = sse(delta(0, "text_delta", "abcdefghij"))
    head, tail = _events(text_stream()[:2]), _events(text_stream()[-3:])
    events = [*head, *[piece] * 300_000, *tail]
    began = time.monotonic()
    rebuilt = accumulate(events)
    assert len(rebuilt.message["content"][0]["text"]) == 3_000_000
    assert time.monotonic() - began < 30  # a hang guard, not a benchmark


def test_the_checks_of_one_exchange_fold_its_stream_once(monkeypatch):
    folds = []
    monkeypatch.setattr(common, "accumulate", lambda events: folds.append(events) or accumulate(events))
    exchange = stream_exchange(tool_stream(), request_body=tool_request_body())
    assert failures(run_checks(exchange)) == []
    assert folds == [exchange.response.events]
