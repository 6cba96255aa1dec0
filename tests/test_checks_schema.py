"""Schema checks: bodies and event payloads against the contract."""

from __future__ import annotations

import pytest

from conformance.checks import nullable, schema
from conformance.model import Severity
from tests.exchanges import (
    assert_clean,
    block_start,
    check,
    count_tokens_exchange,
    delta,
    error_body,
    error_exchange,
    message,
    message_exchange,
    only_finding,
    replace,
    stream_exchange,
    text_block,
    text_stream,
    thinking_block,
    tool_message,
    tool_request_body,
    usage,
)


def test_a_valid_message_has_no_findings():
    assert_clean(message_exchange())


@pytest.mark.parametrize(
    "body",
    [
        {key: value for key, value in message(stop_reason="pause_turn").items() if key != "stop_details"},
        message(stop_reason="model_context_window_exceeded"),
        message(stop_reason="refusal", stop_details={"type": "refusal", "category": "cyber", "explanation": None}),
        message([]),  # an empty content array is legal
        message(container={"id": "container_011CYVPF4iP8oD6Vsz1NhVih", "expires_at": "2026-02-25T20:07:37Z"}),
        message(usage=usage(output_tokens_details={"thinking_tokens": 28}, iterations=[{"type": "message"}])),
        message(usage={"input_tokens": 20, "output_tokens": 10}),  # 2024: no cache fields at all
        message(context_management={"applied_edits": []}),  # unknown top-level keys
        message([thinking_block(), text_block("ALPHA", citations=None)]),
        message([{"type": "mcp_tool_use", "id": "mcptoolu_01", "name": "echo", "server_name": "s", "input": {}}]),
    ],
    ids=["pause_turn-without-stop_details", "context-window", "refusal", "empty", "container", "usage-extras",
         "old-usage", "extra-key", "thinking", "unknown-block"],
)  # fmt: skip
def test_real_message_variants_validate(body):
    assert check("schema.message", message_exchange(body)) == []


def test_a_wrong_type_names_its_json_path():
    body = message([text_block(5)])
    finding = only_finding(message_exchange(body), "schema.message", "messages.response.content")
    assert finding.message == "body.content[0].text: 5 is not of type 'string'"


def test_a_missing_key_is_reported_at_the_root():
    body = message()
    del body["usage"]
    finding = only_finding(message_exchange(body), "schema.message", "messages.response.message")
    assert finding.message == "body: 'usage' is a required property"


def test_a_required_nullable_key_sent_absent_is_a_warning():
    """The API sends stop_sequence as null; the official clients read an absent one as null."""
    body = message()
    del body["stop_sequence"]
    finding = only_finding(message_exchange(body), "schema.message", "messages.response.message")
    assert finding.message.startswith("body: 'stop_sequence' is a required property (its schema allows null")
    assert finding.severity is Severity.WARNING


def test_a_required_key_that_cannot_be_null_sent_absent_still_fails():
    body = message()
    del body["model"]
    finding = only_finding(message_exchange(body), "schema.message", "messages.response.message")
    assert finding.message == "body: 'model' is a required property"
    assert finding.severity is Severity.FAILURE


@pytest.mark.parametrize(("stop_reason", "expected"), [("stop", "'stop' is not one of"), (7, "7 is not of type")])
def test_stop_reason_outside_the_enum(stop_reason, expected):
    finding = only_finding(
        message_exchange(message(stop_reason=stop_reason)), "schema.message", "messages.response.stop_reason"
    )
    assert finding.message.startswith(f"body.stop_reason: {expected}")


def test_usage_problems_cite_the_usage_clause():
    body = message(usage=usage(input_tokens="21"))
    finding = only_finding(message_exchange(body), "schema.message", "messages.response.usage")
    assert finding.message == "body.usage.input_tokens: '21' is not of type 'integer'"


def test_citation_problems_inside_a_nullable_list_are_precise():
    body = message(
        [text_block("Paris", citations=[{"type": "char_location", "cited_text": "Paris", "document_index": 0}])]
    )
    found = check("schema.message", message_exchange(body))
    assert {f.spec_ref for f in found} == {"messages.response.citations"}
    assert [f.message for f in found] == [
        "body.content[0].citations[0]: 'start_char_index' is a required property",
        "body.content[0].citations[0]: 'end_char_index' is a required property",
    ]


def test_a_tool_use_block_needs_an_object_input():
    body = tool_message({"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": '{"city": "Paris"}'})
    exchange = message_exchange(body, request_body=tool_request_body())
    finding = only_finding(exchange, "schema.message", "messages.response.tool_use")
    assert finding.message == "body.content[1].input: '{\"city\": \"Paris\"}' is not of type 'object'"


def test_a_2xx_body_that_is_not_json():
    exchange = message_exchange(text="<html>upstream ok</html>")
    finding = only_finding(exchange, "schema.message", "messages.response.message")
    assert finding.message == "the HTTP 200 body is not JSON: '<html>upstream ok</html>'"


def test_an_error_body_with_a_2xx_status():
    finding = only_finding(message_exchange(error_body()), "schema.message", "errors.status-map")
    assert finding.message.startswith("HTTP 200 carries an error body")


# --------------------------------------------------------------------------- count_tokens, errors


def test_count_tokens_body():
    assert_clean(count_tokens_exchange())
    finding = only_finding(
        count_tokens_exchange({"input_tokens": "14"}), "schema.count-tokens", "count_tokens.response"
    )
    assert finding.message == "body.input_tokens: '14' is not of type 'integer'"


def test_count_tokens_body_missing_its_key():
    finding = only_finding(count_tokens_exchange({"tokens": 14}), "schema.count-tokens", "count_tokens.response")
    assert finding.message == "body: 'input_tokens' is a required property"


def test_error_body_with_an_unknown_error_type():
    exchange = error_exchange(400, error_body("error"))
    finding = only_finding(exchange, "schema.error", "errors.envelope")
    assert finding.message.startswith("body.error.type: 'error' is not one of ['invalid_request_error'")


def test_error_body_with_a_non_string_message():
    body = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": {"detail": "bad"}},
        "request_id": None,
    }
    finding = only_finding(error_exchange(400, body), "schema.error", "errors.envelope")
    assert finding.message == "body.error.message: {'detail': 'bad'} is not of type 'string'"


def test_request_too_large_is_a_valid_error_type():
    assert_clean(error_exchange(413, error_body("request_too_large", "Request exceeds the maximum size")))


# --------------------------------------------------------------------------- stream events


def test_stream_event_payloads_are_validated():
    events = replace(text_stream(), 3, {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}})
    finding = only_finding(stream_exchange(events), "schema.stream-event", "stream.delta-type")
    assert finding.message == "event 3 (content_block_delta): data.delta: 'text' is a required property"


def test_the_message_of_message_start_is_validated():
    events = text_stream()
    events[0]["message"]["usage"]["output_tokens"] = -1
    finding = only_finding(stream_exchange(events), "schema.stream-event", "messages.response.usage")
    assert finding.message == (
        "event 0 (message_start): data.message.usage.output_tokens: -1 is less than the minimum of 0"
    )


def test_message_delta_usage_needs_output_tokens():
    events = text_stream()
    events[6]["usage"] = {"input_tokens": 21}
    finding = only_finding(stream_exchange(events), "schema.stream-event", "stream.usage")
    assert finding.message == "event 6 (message_delta): data.usage: 'output_tokens' is a required property"


def test_a_message_delta_without_stop_sequence_is_a_warning():
    events = text_stream()
    del events[6]["delta"]["stop_sequence"]
    [finding] = [f for f in check("schema.stream-event", stream_exchange(events))]
    assert finding.message.startswith(
        "event 6 (message_delta): data.delta: 'stop_sequence' is a required property (its schema allows null"
    )
    assert finding.severity is Severity.WARNING


def test_repeated_event_problems_are_folded_into_one_finding():
    bad = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "content": "x"}}
    events = [*text_stream()[:3], bad, bad, bad, *text_stream()[5:]]
    finding = only_finding(stream_exchange(events), "schema.stream-event", "stream.delta-type")
    assert finding.message.endswith("(and 2 more like it, the last at event 5)")


def test_repeated_event_problems_are_weighed_once(monkeypatch):
    weighed = []

    def counting_weigh(schema_name, instance, problem, root):
        weighed.append((problem.clause, problem.path, problem.message))
        return nullable.weigh(schema_name, instance, problem, root)

    monkeypatch.setattr(schema, "weigh", counting_weigh)
    bad = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "content": "x"}}
    events = [*text_stream()[:3], bad, bad, bad, *text_stream()[5:]]
    check("schema.stream-event", stream_exchange(events))
    assert weighed and len(weighed) == len(set(weighed))


# --------------------------------------------------------------------------- unknown types (notes)


def test_unknown_block_types_are_noted():
    body = message([{"type": "output_text", "text": "ALPHA"}])
    finding = only_finding(message_exchange(body), "schema.unknown-type", "messages.response.content")
    assert finding.severity is Severity.NOTE
    assert finding.message == "content[0]: content block type 'output_text' is not in the contract (tolerated)"


def test_unknown_delta_and_citation_types_in_streams_are_noted():
    events = replace(
        text_stream(),
        3,
        delta(0, "citations_delta", {"type": "video_location", "cited_text": "x"}),
        delta(0, "emphasis_delta", "AL"),
    )
    found = check("schema.unknown-type", stream_exchange(events))
    assert [(f.spec_ref, f.severity) for f in found] == [
        ("messages.response.citations", Severity.NOTE),
        ("stream.delta-type", Severity.NOTE),
    ]
    assert "citation type 'video_location'" in found[0].message
    assert "event 4 (content_block_delta): delta type 'emphasis_delta'" in found[1].message


def test_block_types_in_stream_starts_are_noted():
    events = replace(text_stream(), 1, block_start(0, {"type": "output_text", "text": ""}))
    finding = only_finding(stream_exchange(events), "schema.unknown-type", "messages.response.content")
    assert "content block type 'output_text'" in finding.message


# --------------------------------------------------------------------------- server tool blocks

SERVER_TOOL_USE = {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_fetch", "input": {"url": "https://x"}}
SERVER_BLOCKS = [
    {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_01", "content": {
        "type": "web_fetch_result", "url": "https://x", "retrieved_at": None,
        "content": {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hi"},
                    "title": None, "citations": None}}},
    {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_01",
     "content": {"type": "web_fetch_tool_result_error", "error_code": "url_not_allowed"}},
    {"type": "code_execution_tool_result", "tool_use_id": "srvtoolu_02", "content": {
        "type": "code_execution_result", "stdout": "4\n", "stderr": "", "return_code": 0, "content": []}},
    {"type": "bash_code_execution_tool_result", "tool_use_id": "srvtoolu_03", "content": {
        "type": "bash_code_execution_result", "stdout": "", "stderr": "", "return_code": 1,
        "content": [{"type": "bash_code_execution_output", "file_id": "file_01"}]}},
    {"type": "text_editor_code_execution_tool_result", "tool_use_id": "srvtoolu_04", "content": {
        "type": "text_editor_code_execution_view_result", "content": "x", "file_type": "text",
        "num_lines": 1, "start_line": 1, "total_lines": 1}},
    {"type": "tool_search_tool_result", "tool_use_id": "srvtoolu_05", "content": {
        "type": "tool_search_tool_search_result", "tool_references": [{"type": "tool_reference", "tool_name": "t"}]}},
    {"type": "tool_search_tool_result", "tool_use_id": "srvtoolu_05", "content": {
        "type": "tool_search_tool_result_error", "error_code": "a_code_from_next_year", "error_message": None}},
    {"type": "container_upload", "file_id": "file_02"},
]  # fmt: skip


@pytest.mark.parametrize(
    "block", SERVER_BLOCKS, ids=[f"{b['type']}-{b.get('content', {}).get('type')}" for b in SERVER_BLOCKS]
)
def test_server_tool_blocks_validate(block):
    body = message([SERVER_TOOL_USE, block], stop_reason="end_turn")
    assert check("schema.message", message_exchange(body)) == []
    assert check("schema.unknown-type", message_exchange(body)) == []  # all known to the contract now


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({"type": "container_upload"}, "'file_id' is a required property"),
        ({"type": "code_execution_tool_result", "tool_use_id": "srvtoolu_02",
          "content": {"type": "code_execution_result", "stderr": "", "return_code": 0, "content": []}},
         "'stdout' is a required property"),
        ({"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_01", "content": {"type": "web_fetch_result"}},
         "'url' is a required property"),
    ],
)  # fmt: skip
def test_broken_server_tool_blocks_cite_their_clause(block, expected):
    body = message([SERVER_TOOL_USE, block])
    found = check("schema.message", message_exchange(body))
    assert found and all(f.spec_ref == "messages.response.server-tool-blocks" for f in found), found
    assert any(expected in f.message for f in found)
