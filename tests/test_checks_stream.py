"""The stream grammar and the other stream checks."""

from __future__ import annotations

import json

import pytest

from conformance.accumulate import accumulate
from conformance.model import Severity
from conformance.sse import parse_stream
from tests.exchanges import (
    MESSAGE_STOP,
    PING,
    assert_clean,
    block_start,
    block_stop,
    check,
    continuation_stream,
    delta,
    message_delta,
    message_start,
    only_finding,
    program_request_body,
    program_stream,
    replace,
    sse,
    stream_exchange,
    text_block,
    text_stream,
    thinking_block,
    thinking_stream,
    tool_request_body,
    tool_stream,
    tool_use_block,
)

GRAMMAR = "stream.grammar"


@pytest.mark.parametrize("events", [text_stream(), tool_stream(), thinking_stream()], ids=["text", "tool", "thinking"])
def test_well_formed_streams_have_no_findings(events):
    assert_clean(stream_exchange(events, request_body=tool_request_body()))


def test_pings_are_allowed_anywhere_even_before_message_start():
    events = text_stream()
    events = [PING, events[0], PING, events[1], events[3], PING, *events[4:-1], PING, events[-1]]
    assert_clean(stream_exchange(events))


def test_events_without_event_lines_are_a_finding():
    """The SDKs dispatch on the event name: an event without one never reaches the client."""
    exchange = stream_exchange([sse(payload, name=None) for payload in text_stream()])
    finding = only_finding(exchange, GRAMMAR, "stream.format")
    assert finding.message.startswith("event 0: no `event:` line for this message_start event")
    assert "(and 7 more like it, the last at event 7)" in finding.message


def test_a_ping_spliced_into_another_event_leaves_that_event_without_a_name():
    """Bug pattern 45: `event: content_block_delta` + a whole ping event + the delta's `data:` line."""
    raw = (
        "event: message_start\ndata: " + json.dumps(message_start()) + "\n\n"
        "event: content_block_start\ndata: " + json.dumps(block_start(0, {"type": "text", "text": ""})) + "\n\n"
        'event: content_block_delta\nevent: ping\ndata: {"type": "ping"}\n\n'
        "data: " + json.dumps(delta(0, "text_delta", "ALPHA")) + "\n\n"
        "event: content_block_stop\ndata: " + json.dumps(block_stop(0)) + "\n\n"
        "event: message_delta\ndata: " + json.dumps(message_delta()) + "\n\n"
        "event: message_stop\ndata: " + json.dumps(MESSAGE_STOP) + "\n\n"
    )
    finding = only_finding(stream_exchange(parse_stream(raw.encode())), GRAMMAR, "stream.format")
    assert "event 3: no `event:` line for this content_block_delta event" in finding.message


def timed(events: list, times: list[float]):
    exchange = stream_exchange(events)
    for event, t in zip(exchange.response.events, times, strict=True):
        event.t = t
    return exchange


def test_a_quiet_stretch_under_the_limit_is_fine():
    assert_clean(timed(text_stream(), [0.0, 0.1, 30.0, 30.1, 60.0, 60.1, 60.2, 60.3]))


def test_a_stream_silent_for_longer_than_the_limit_is_a_finding():
    """Bug pattern 45: no ping while the model works, and intermediaries drop the connection."""
    exchange = timed(text_stream(), [0.0, 0.1, 50.2, 50.3, 50.4, 50.5, 50.6, 50.7])
    finding = only_finding(exchange, "stream.keepalive", "stream.ping")
    assert finding.message.startswith("50.1 s passed without any event before event 2 (ping)")
    # Streams "may" include pings: a stream without them is within the contract, and warned about.
    assert finding.severity is Severity.WARNING


def test_redacted_thinking_and_server_tool_results_arrive_whole():
    events = [
        message_start(),
        block_start(0, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}),
        block_stop(0),
        block_start(1, {"type": "text", "text": ""}),
        delta(1, "text_delta", "ALPHA"),
        block_stop(1),
        message_delta(),
        MESSAGE_STOP,
    ]
    assert_clean(stream_exchange(events))


def test_a_complete_message_in_message_start_may_be_followed_by_message_stop_alone():
    """The real API answers a code-executed tool call's result so: no block events, no message_delta."""
    exchange = stream_exchange(continuation_stream(), request_body=program_request_body(continued=True))
    assert check(GRAMMAR, exchange) == []
    assert_clean(exchange)


def test_message_stop_right_after_an_unfinished_message_start_is_a_finding():
    start = message_start()
    start["message"]["content"] = [text_block("ALPHA")]
    finding = only_finding(stream_exchange([start, MESSAGE_STOP]), GRAMMAR, "stream.order")
    assert finding.message == (
        "event 1: message_stop without any message_delta before it (and message_start's stop_reason is null, "
        "so nothing ended the message)"
    )


def _started_with(*blocks):
    start = message_start()
    start["message"]["content"] = list(blocks)
    return start


def test_blocks_after_message_start_content_continue_at_the_next_index():
    """As the SDKs append: message_start's content holds indexes 0..n-1, block events go on from n."""
    events = [_started_with(text_block("I'll check.")), *replace(tool_stream(), 0)[3:]]
    exchange = stream_exchange(events, request_body=tool_request_body())
    assert check(GRAMMAR, exchange) == []
    rebuilt = accumulate(exchange.response.events).message
    assert [block["type"] for block in rebuilt["content"]] == ["text", "tool_use"]
    assert rebuilt["content"][1]["input"] == {"city": "Paris"}
    assert_clean(exchange)


def test_block_events_for_an_index_message_start_already_holds_are_findings():
    events = [_started_with(text_block("AL")), *text_stream()[1:]]
    found = check(GRAMMAR, stream_exchange(events))
    assert [f.message for f in found] == [
        "event 1: content block 0 starts again (it arrived complete in message_start, event 0); the blocks after "
        "message_start's content start at index 1",
        "event 3: content_block_delta for content block 0, which arrived complete in message_start (event 0) "
        "(and 1 more like it, the last at event 4)",
        "event 5: content_block_stop for content block 0, which arrived complete in message_start (event 0)",
    ]


def test_a_thinking_block_complete_in_message_start_is_signed():
    unsigned = only_finding(
        stream_exchange(
            [_started_with(thinking_block(signature=""), text_block("ALPHA")), message_delta(), MESSAGE_STOP]
        ),
        GRAMMAR,
        "stream.thinking-signature",
    )
    assert unsigned.message == (
        "event 0: thinking block 0 arrives complete in message_start without a signature; a complete thinking "
        "block carries its signature"
    )
    signed = [_started_with(thinking_block(), text_block("ALPHA")), message_delta(), MESSAGE_STOP]
    assert check(GRAMMAR, stream_exchange(signed)) == []


def test_unknown_block_types_take_any_delta():
    events = [
        message_start(),
        block_start(0, {"type": "compaction", "content": None}),
        delta(0, "compaction_delta", "The user asked for one word."),
        block_stop(0),
        message_delta(),
        MESSAGE_STOP,
    ]
    assert_clean(stream_exchange(events))


# --------------------------------------------------------------------------- framing


def test_event_name_must_equal_data_type():
    events = replace(text_stream(), 3, sse(delta(0, "text_delta", "AL"), name="message"))
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.format")
    assert "event 3: the SSE event name 'message' differs from data.type 'content_block_delta'" in finding.message


def test_data_that_is_not_json_is_a_finding():
    events = replace(text_stream(), 3, sse(None, name="content_block_delta", data="{'text': 'AL'}"))
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.format")
    assert finding.message.startswith("event 3: data is not a JSON object (not JSON:")


def test_data_without_type_is_a_finding():
    events = replace(text_stream(), 3, sse({"index": 0, "delta": {"type": "text_delta", "text": "AL"}}, name=None))
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.format")
    assert "event 3: data has no string `type`" in finding.message


def test_a_stream_without_events_is_a_finding():
    finding = only_finding(stream_exchange([]), GRAMMAR, "stream.format")
    assert finding.message == "the stream has no events"


# --------------------------------------------------------------------------- message order


def test_duplicate_message_start_is_a_finding():
    events = text_stream()
    finding = only_finding(stream_exchange([events[0], *events]), GRAMMAR, "stream.order")
    assert finding.message == "event 1: a second message_start (the first was event 0)"


def test_message_start_must_come_first():
    events = text_stream()
    events = [events[1], events[0], *events[2:]]
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.order")
    assert "message_start (event 1) is not the first event: event 0 (content_block_start)" in finding.message


def test_a_stream_without_message_start_is_a_finding():
    finding = only_finding(stream_exchange(text_stream()[1:]), GRAMMAR, "stream.order")
    assert finding.message == "the stream has no message_start event"


def test_message_stop_needs_a_message_delta_before_it():
    events = [e for e in text_stream() if e["type"] != "message_delta"]
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.order")
    assert "message_stop without any message_delta" in finding.message


def test_nothing_may_follow_message_stop():
    events = [*text_stream(), PING, block_start(1, {"type": "text", "text": ""})]
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.order")
    assert finding.message.startswith("event 8 (ping) arrives after message_stop (event 7)")
    assert "(and 1 more like it, the last at event 9)" in finding.message


def test_a_stream_that_ends_without_message_stop_is_a_finding():
    finding = only_finding(stream_exchange(text_stream()[:-1]), GRAMMAR, "stream.order")
    assert finding.message == "the stream ended without message_stop (the last event was event 6 (message_delta))"


def test_content_block_after_message_delta_is_a_finding():
    events = text_stream()
    late = [block_start(1, {"type": "text", "text": ""}), delta(1, "text_delta", "!"), block_stop(1)]
    found = check(GRAMMAR, stream_exchange([*events[:-1], *late, events[-1]]))
    assert [(f.spec_ref, f.message) for f in found] == [
        ("stream.order", "event 7: content_block_start after message_delta")
    ]


# --------------------------------------------------------------------------- errors


def test_a_stream_may_end_with_an_error_event():
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert_clean(stream_exchange([*text_stream()[:4], error]))


def test_an_error_event_may_be_the_only_event():
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert_clean(stream_exchange([error]))


def test_nothing_may_follow_an_error_event():
    error = {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
    events = [*text_stream()[:4], error, *text_stream()[4:]]
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.error-event")
    assert finding.message.startswith("event 5 (content_block_delta) arrives after error (event 4)")


# --------------------------------------------------------------------------- block lifecycle


def test_message_delta_before_content_block_stop_is_a_finding():
    """Bug pattern 1: the last block is never stopped before message_delta."""
    events = replace(text_stream(), 5)
    found = check(GRAMMAR, stream_exchange(events))
    assert [(f.spec_ref, f.message) for f in found] == [
        (
            "stream.block-lifecycle",
            "event 5: message_delta while content block 0 (started at event 1) was never stopped",
        )
    ]


def test_delta_for_a_block_never_started_is_a_finding():
    """Bug pattern 2: content_block_start missing."""
    events = replace(text_stream(), 1)
    found = check(GRAMMAR, stream_exchange(events))
    assert [f.spec_ref for f in found] == ["stream.block-lifecycle", "stream.block-lifecycle"]
    assert found[0].message == (
        "event 2: content_block_delta for content block 0, which was never started "
        "(and 1 more like it, the last at event 3)"
    )
    assert found[1].message == "event 4: content_block_stop for content block 0, which was never started"


def test_overlapping_blocks_are_a_finding():
    """Bug pattern 3: a thinking block starts while the text block is still open."""
    events = [
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        delta(0, "text_delta", "Let me think."),
        block_start(1, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(1, "thinking_delta", "Hmm."),
        delta(1, "signature_delta", "c2ln"),
        block_stop(1),
        block_stop(0),
        message_delta(),
        MESSAGE_STOP,
    ]
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.block-lifecycle")
    assert "event 3: content block 1 starts while block 0 (started at event 1) is still open" in finding.message


def test_restarting_an_index_is_a_finding():
    events = text_stream()
    events = [*events[:5], block_start(0, {"type": "text", "text": ""}), block_stop(0), *events[5:]]
    found = check(GRAMMAR, stream_exchange(events))
    assert [f.spec_ref for f in found] == ["stream.block-lifecycle", "stream.block-lifecycle"]
    assert found[0].message.startswith("event 5: content block 0 starts again (it started at event 1)")
    assert found[1].message == "event 7: content_block_stop for content block 0 after its content_block_stop (event 6)"


@pytest.mark.parametrize("first_index", [1, 5])
def test_indexes_start_at_zero_and_go_up_by_one(first_index):
    events = [
        message_start(),
        block_start(first_index, {"type": "text", "text": ""}),
        delta(first_index, "text_delta", "ALPHA"),
        block_stop(first_index),
        message_delta(),
        MESSAGE_STOP,
    ]
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.block-lifecycle")
    assert f"content block index {first_index} where 0 was expected" in finding.message


# --------------------------------------------------------------------------- delta types


def test_thinking_delta_in_a_text_block_is_a_finding():
    """Bug pattern 4."""
    events = replace(text_stream(), 3, delta(0, "thinking_delta", "hmm"))
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.delta-type")
    assert finding.message == (
        "event 3: thinking_delta on text block 0; a text block takes citations_delta, text_delta"
    )


def test_empty_input_json_delta_in_a_text_block_is_a_finding():
    """Bug pattern 15: an empty payload of the wrong kind."""
    events = replace(text_stream(), 4, delta(0, "input_json_delta", ""))
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.delta-type")
    assert "event 4: input_json_delta with an empty partial_json on text block 0" in finding.message


def test_text_delta_in_a_tool_use_block_is_a_finding():
    events = replace(tool_stream(), 6, delta(1, "text_delta", '{"city": '))
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.delta-type")
    assert "text_delta on tool_use block 1; a tool_use block takes input_json_delta" in finding.message


def test_delta_after_the_block_stopped_is_a_finding():
    events = text_stream()
    events = [*events[:6], delta(0, "text_delta", "late"), *events[6:]]
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.block-lifecycle")
    assert "event 6: content_block_delta for content block 0 after its content_block_stop (event 5)" in finding.message


# --------------------------------------------------------------------------- thinking signatures


def test_thinking_block_without_signature_delta_is_a_finding():
    events = replace(thinking_stream(), 3)
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.thinking-signature")
    assert "thinking block 0 stopped without a signature_delta" in finding.message


def test_two_signature_deltas_are_a_finding():
    events = thinking_stream()
    events = [*events[:4], events[3], *events[4:]]
    finding = only_finding(stream_exchange(events), GRAMMAR, "stream.thinking-signature")
    assert "got 2 signature_delta events" in finding.message


def test_a_signature_in_the_start_event_is_enough():
    events = replace(thinking_stream(), 1, block_start(0, {"type": "thinking", "thinking": "", "signature": "c2ln"}))
    events = replace(events, 3)
    assert check(GRAMMAR, stream_exchange(events)) == []


# --------------------------------------------------------------------------- the other stream checks


def test_done_sentinel_is_its_own_finding():
    """Bug pattern 8: `data: [DONE]` after message_stop."""
    exchange = stream_exchange([*text_stream(), sse(None, name=None, data="[DONE]")])
    finding = only_finding(exchange, "stream.done-sentinel", "stream.no-done-sentinel")
    assert finding.message.startswith("event 8: `data: [DONE]`")
    assert check(GRAMMAR, exchange) == []


def test_unknown_event_types_are_notes_not_failures():
    events = [*text_stream()[:5], {"type": "content_block_annotation", "index": 0}, *text_stream()[5:]]
    exchange = stream_exchange(events)
    finding = only_finding(exchange, "stream.unknown-event", "stream.unknown-events")
    assert finding.severity is Severity.NOTE
    assert "unknown event type 'content_block_annotation'" in finding.message
    assert_clean(exchange)


def test_a_truncated_stream_is_a_finding_and_not_also_a_missing_message_stop():
    exchange = stream_exchange(text_stream()[:4], truncated="max_events (4) reached")
    finding = only_finding(exchange, "stream.truncated", "stream.format")
    assert finding.message == "the stream was cut off by the suite after 4 events: max_events (4) reached"
    assert check(GRAMMAR, exchange) == []


def test_text_blocks_must_start_empty():
    exchange = stream_exchange(replace(tool_stream(), 1, block_start(0, {"type": "text", "text": "AL"})))
    finding = only_finding(exchange, "stream.block-start", "stream.block-lifecycle")
    assert "text block 0 starts with text 'AL'; it must start empty" in finding.message


def test_tool_input_whole_in_the_start_and_in_deltas_is_a_finding():
    """The SDKs replace the start's input with the deltas': one of the two ways, not both."""
    start = block_start(1, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}})
    exchange = stream_exchange(replace(tool_stream(), 4, start), request_body=tool_request_body())
    finding = only_finding(exchange, "stream.block-start", "stream.tool-input")
    assert finding.message.startswith(
        "event 4: tool_use block 1 starts with input {'city': 'Paris'} and also receives input_json_delta"
    )


def test_a_tool_call_made_by_code_arrives_whole_in_its_start():
    """Programmatic tool calling: the API sends the program's call with its input and no input_json_delta."""
    exchange = stream_exchange(program_stream(), request_body=program_request_body())
    assert check("stream.block-start", exchange) == []
    assert_clean(exchange)
    assert accumulate(exchange.response.events).message["content"][2]["input"] == {"city": "Paris"}


def test_a_direct_tool_call_arriving_whole_is_a_note():
    """The SDKs keep it, so it is no failure; clients that read only input_json_delta would see {}."""
    events = [*tool_stream()[:4], block_start(1, tool_use_block()), block_stop(1), *tool_stream()[-2:]]
    exchange = stream_exchange(events, request_body=tool_request_body())
    finding = only_finding(exchange, "stream.block-start", "stream.tool-input")
    assert finding.severity is Severity.NOTE
    assert "tool_use block 1 starts with input {'city': 'Paris'} and no input_json_delta (tolerated" in finding.message
    assert_clean(exchange)


def test_missing_text_in_a_text_block_start_is_a_schema_finding():
    """Bug pattern 11: the consumer's KeyError; the schema requires `text`."""
    exchange = stream_exchange(replace(text_stream(), 1, block_start(0, {"type": "text"})))
    finding = only_finding(exchange, "schema.stream-event", "messages.response.content")
    assert finding.message == "event 1 (content_block_start): data.content_block: 'text' is a required property"
    assert check("stream.block-start", exchange) == []
