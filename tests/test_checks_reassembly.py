"""Reassembly: the whole stream, folded, makes a valid Message."""

from __future__ import annotations

from tests.exchanges import (
    MESSAGE_STOP,
    WEATHER_TOOL,
    assert_clean,
    block_start,
    block_stop,
    check,
    delta,
    message_delta,
    message_exchange,
    message_start,
    messages_body,
    only_finding,
    replace,
    stream_exchange,
    text_stream,
    tool_request_body,
    tool_stream,
)


def _tool_exchange(events, tools=None):
    return stream_exchange(events, request_body=tool_request_body(tools=tools or [WEATHER_TOOL]))


def test_a_tool_stream_reassembles_cleanly():
    assert_clean(_tool_exchange(tool_stream()))


def test_partial_json_that_does_not_parse():
    """Bug pattern 7: a fragment went missing on the way."""
    exchange = _tool_exchange(tool_stream(("", '{"city": ', '"Par')))
    finding = only_finding(exchange, "reassembly", "stream.tool-input")
    assert finding.message.startswith(
        "content block 1 (tool_use 'get_weather'): the concatenated partial_json is not valid JSON"
    )
    assert '\'{"city": "Par\'' in finding.message


def test_partial_json_that_is_not_an_object():
    exchange = _tool_exchange(tool_stream(('["Paris"', "]")))
    finding = only_finding(exchange, "reassembly", "stream.tool-input")
    assert "the concatenated partial_json is a JSON list, not an object" in finding.message


def test_dropped_tool_arguments():
    """Bug pattern 14: start -> stop with input {} and no input_json_delta, for a tool with required input."""
    exchange = _tool_exchange(tool_stream(()))
    finding = only_finding(exchange, "reassembly", "stream.tool-input")
    assert finding.message == (
        "content block 1 (tool_use 'get_weather'): no input_json_delta arrived and the input stayed {}, "
        "but the tool requires ['city']: the tool arguments were dropped"
    )
    assert check("semantics.tool-use", exchange) == []  # reported once


def test_an_empty_input_is_fine_for_a_tool_without_required_properties():
    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
    assert check("reassembly", _tool_exchange(tool_stream(()), tools=[tool])) == []
    assert check("reassembly", _tool_exchange(tool_stream(("",)), tools=[tool])) == []


def test_a_final_stop_reason_is_required():
    events = replace(text_stream(), 6, message_delta(stop_reason=None))
    finding = only_finding(stream_exchange(events), "reassembly", "stream.reassembly")
    assert finding.message == "the reassembled message has stop_reason null: no message_delta set one"


def test_reassembled_message_is_validated_against_the_schema():
    """A text longer than the contract allows only shows once the deltas are joined."""
    chunk = "x" * 1_000_000
    events = [
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        *(delta(0, "text_delta", chunk) for _ in range(6)),
        block_stop(0),
        message_delta(output_tokens=60),
        MESSAGE_STOP,
    ]
    finding = only_finding(stream_exchange(events), "reassembly", "stream.reassembly")
    assert finding.message.startswith("the reassembled message.content[0].text: 'xxx")
    assert finding.message.endswith("…")


def test_streams_the_other_checks_judge_are_skipped():
    cut = stream_exchange(tool_stream(("", '{"city": '))[:8], truncated="timeout")
    errored = stream_exchange(
        [
            *tool_stream(("", '{"ci'))[:7],
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ],
        request_body=tool_request_body(),
    )
    invalid = stream_exchange(replace(tool_stream(("{",)), 5, {"type": "content_block_delta", "index": 1, "delta": {}}))
    for exchange in (cut, errored, invalid):
        assert check("reassembly", exchange) == []


def test_a_non_stream_exchange_is_not_judged():
    assert check("reassembly", message_exchange(request_body=messages_body())) == []


def _cut_by_max_tokens(fragments):
    events = tool_stream(fragments)
    events[-2] = message_delta("max_tokens", 54, 380)
    return _tool_exchange(events)


def test_tool_input_cut_by_max_tokens_may_end_anywhere():
    assert check("reassembly", _cut_by_max_tokens(('{"city": ', '"Par'))) == []


def test_tool_input_cut_by_max_tokens_must_still_begin_as_an_object():
    finding = only_finding(_cut_by_max_tokens(('"Par', "is")), "reassembly", "stream.tool-input")
    assert "the concatenated partial_json is not valid JSON" in finding.message
