"""Semantic checks: what the values of a complete message mean, given the request."""

from __future__ import annotations

import pytest

from conformance.model import Exchange, Severity
from tests.exchanges import (
    CODE_EXECUTION_TOOL,
    MESSAGE_STOP,
    WEATHER_TOOL,
    assert_clean,
    block_start,
    check,
    code_call_block,
    continuation_message,
    continuation_stream,
    count_tokens_exchange,
    message,
    message_delta,
    message_exchange,
    message_start,
    messages_body,
    only_finding,
    program_message,
    program_request_body,
    program_stream,
    replace,
    stream_exchange,
    text_block,
    text_stream,
    thinking_block,
    tool_message,
    tool_request_body,
    tool_stream,
    tool_use_block,
    usage,
)

STOP = "semantics.stop-reason"
USAGE = "semantics.usage"
TOOLS = "semantics.tool-use"


def _tool_exchange(body, tools=None, **request_overrides):
    return message_exchange(body, request_body=tool_request_body(tools=tools or [WEATHER_TOOL], **request_overrides))


def test_a_tool_call_has_no_findings():
    assert_clean(_tool_exchange(tool_message()))


# --------------------------------------------------------------------------- stop_reason


def test_stop_reason_tool_use_needs_a_tool_use_block():
    finding = only_finding(message_exchange(message(stop_reason="tool_use")), STOP, "messages.response.stop_reason")
    assert finding.message == "stop_reason is 'tool_use' but the content has no tool_use block (block types ['text'])"


@pytest.mark.parametrize("reason", ["end_turn", "stop_sequence"])
def test_a_tool_call_that_claims_the_turn_finished(reason):
    body = tool_message()
    body.update(stop_reason=reason, stop_sequence="###" if reason == "stop_sequence" else None)
    finding = only_finding(_tool_exchange(body, stop_sequences=["###"]), STOP, "messages.response.stop_reason")
    assert finding.message.startswith(
        f"the content has tool_use block(s) ['get_weather'] but stop_reason is '{reason}'"
    )


@pytest.mark.parametrize("reason", ["max_tokens", "pause_turn"])
def test_a_tool_call_may_be_cut_or_paused(reason):
    body = tool_message()
    body["stop_reason"] = reason
    assert check(STOP, _tool_exchange(body)) == []


def test_a_null_stop_reason_in_a_complete_message():
    finding = only_finding(message_exchange(message(stop_reason=None)), STOP, "messages.response.stop_reason")
    assert "stop_reason is null in a complete message" in finding.message


def test_a_matched_stop_sequence_is_clean():
    body = message([text_block("def pelican():\n    return 1\n")], stop_reason="stop_sequence", stop_sequence="```")
    assert_clean(message_exchange(body, request_body=messages_body(stop_sequences=["```"])))


@pytest.mark.parametrize(
    ("stop_sequence", "text", "expected"),
    [
        (None, "ALPHA", "stop_reason is 'stop_sequence' but stop_sequence is None"),
        ("END", "ALPHA", "stop_sequence 'END' is not one of the request's stop_sequences ['###']"),
        ("###", "ALPHA ###", "the text contains the stop sequence '###'"),
    ],
    ids=["null", "not-requested", "in-text"],
)
def test_stop_sequence_rules(stop_sequence, text, expected):
    body = message([text_block(text)], stop_reason="stop_sequence", stop_sequence=stop_sequence)
    exchange = message_exchange(body, request_body=messages_body(stop_sequences=["###"]))
    finding = only_finding(exchange, STOP, "messages.request.stop_sequences")
    assert finding.message.startswith(expected)


def test_a_stop_sequence_without_stop_reason_stop_sequence():
    body = message(stop_sequence="###")
    finding = only_finding(message_exchange(body), STOP, "messages.request.stop_sequences")
    assert finding.message.startswith("stop_sequence is '###' but stop_reason is 'end_turn'")


@pytest.mark.parametrize(("output_tokens", "findings"), [(64, 0), (65, 1)])
def test_max_tokens_bounds_the_output(output_tokens, findings):
    body = message(stop_reason="max_tokens", usage=usage(output_tokens=output_tokens))
    found = check(STOP, message_exchange(body, request_body=messages_body(max_tokens=64)))
    assert len(found) == findings
    if findings:
        assert found[0].spec_ref == "messages.request.max_tokens"
        assert (
            found[0].message
            == "stop_reason is 'max_tokens' but usage.output_tokens 65 exceeds the request's max_tokens 64"
        )


def test_stop_reason_of_a_stream_is_judged_on_the_reassembled_message():
    events = replace(text_stream(), 6, message_delta("tool_use"))
    finding = only_finding(stream_exchange(events), STOP, "messages.response.stop_reason")
    assert finding.message.startswith("stop_reason is 'tool_use' but the content has no tool_use block")


# --------------------------------------------------------------------------- usage


def test_usage_without_input_tokens():
    finding = only_finding(message_exchange(message(usage=usage(input_tokens=0))), USAGE, "messages.response.usage")
    assert finding.message.startswith("usage counts no input tokens")


def test_a_fully_cached_prompt_counts_as_input():
    body = message(usage=usage(input_tokens=0, cache_read_input_tokens=2048))
    assert check(USAGE, message_exchange(body)) == []


def test_content_without_output_tokens():
    finding = only_finding(message_exchange(message(usage=usage(output_tokens=0))), USAGE, "messages.response.usage")
    assert finding.message == "the content has 1 block(s) but usage.output_tokens is 0"


def test_an_empty_answer_may_count_no_output():
    assert check(USAGE, message_exchange(message([], usage=usage(output_tokens=0)))) == []


def test_a_programmatic_tool_call_reports_zero_usage():
    """Real traffic: a tool call made by code execution continues a container and counts nothing."""
    assert_clean(message_exchange(continuation_message(), request_body=program_request_body(continued=True)))


def test_a_streamed_programmatic_continuation_is_consistent():
    """The API streams it as a complete message_start (tool_use, stop_reason tool_use, zero usage) and message_stop."""
    exchange = stream_exchange(continuation_stream(), request_body=program_request_body(continued=True))
    assert check(STOP, exchange) == []
    assert check(USAGE, exchange) == []
    assert_clean(exchange)


def test_zero_usage_is_only_right_when_every_block_is_a_call_made_by_code():
    body = continuation_message()
    body["content"].insert(0, text_block("Next city."))
    found = check(USAGE, message_exchange(body, request_body=program_request_body(continued=True)))
    assert [f.message.split(":")[0] for f in found] == [
        "usage counts no input tokens (input_tokens, cache reads and cache writes are all 0) for a non-empty prompt",
        "the content has 2 block(s) but usage.output_tokens is 0",
    ]


def test_the_usage_of_a_programmatic_continuation_still_only_grows():
    start = {"type": "message_start", "message": {**continuation_message(), "usage": usage(0, 5)}}
    exchange = stream_exchange([start, message_delta("tool_use", 3, 0), MESSAGE_STOP],
                               request_body=program_request_body(continued=True))  # fmt: skip
    finding = only_finding(exchange, USAGE, "stream.usage")
    assert finding.message.startswith("usage.output_tokens goes down from 5 (message_start) to 3")


def test_message_start_must_count_the_prompt():
    """Bug pattern 20: zeros in message_start usage."""
    events = replace(text_stream(), 0, message_start(input_tokens=0))
    finding = only_finding(stream_exchange(events), USAGE, "stream.usage")
    assert finding.message.startswith("message_start usage counts no input tokens")


def test_stream_usage_is_cumulative():
    events = text_stream()
    events[0] = message_start(output_tokens=5)
    events[6] = message_delta(output_tokens=3)
    finding = only_finding(stream_exchange(events), USAGE, "stream.usage")
    assert finding.message == (
        "usage.output_tokens goes down from 5 (message_start) to 3 (message_delta event 6); "
        "stream usage counts are cumulative"
    )


def test_usage_with_iterations_describes_the_last_iteration():
    """Real traffic (compaction): message_delta counts may be lower than message_start's."""
    events = replace(text_stream(), 6, message_delta(input_tokens=18, iterations=[{"type": "compaction"}]))
    assert check(USAGE, stream_exchange(events)) == []


# --------------------------------------------------------------------------- identity, thinking


@pytest.mark.parametrize("key", ["id", "model"])
def test_id_and_model_are_not_empty(key):
    finding = only_finding(message_exchange(message(**{key: ""})), "semantics.identity", "messages.response.message")
    assert finding.message == f"the message {key} is an empty string"


def test_thinking_needs_a_signature():
    """Bug pattern 24."""
    body = message([thinking_block(signature=""), text_block("ALPHA")])
    finding = only_finding(message_exchange(body), "semantics.thinking-signature", "messages.response.thinking")
    assert finding.message.startswith("thinking block content[0] has an empty signature")


def test_signed_thinking_is_clean():
    assert_clean(message_exchange(message([thinking_block(), text_block("ALPHA")])))


# --------------------------------------------------------------------------- tool use


def test_tool_use_ids_are_unique():
    body = tool_message(tool_use_block(), tool_use_block({"city": "Rome"}))
    finding = only_finding(_tool_exchange(body), TOOLS, "messages.response.tool_use")
    assert finding.message.startswith("content[2] reuses the id 'toolu_01A09q90qw90lq917835lq9' of content[1]")


def test_tool_use_must_name_a_declared_tool():
    finding = only_finding(
        _tool_exchange(tool_message(tool_use_block(name="get_time"))), TOOLS, "messages.response.tool_use"
    )
    assert finding.message == "tool_use content[1] calls 'get_time', but the request declared ['get_weather']"


def test_tool_use_without_any_declared_tool():
    finding = only_finding(message_exchange(tool_message()), TOOLS, "messages.response.tool_use")
    assert finding.message.endswith("but the request declared no tools")


def test_versioned_tools_are_declared_by_name():
    memory = {"type": "memory_20250818", "name": "memory"}
    body = tool_message(tool_use_block({"command": "view", "path": "/memories"}, name="memory"))
    assert check(TOOLS, _tool_exchange(body, tools=[memory])) == []


def test_input_against_a_strict_tool_schema_is_a_failure():
    tool = {**WEATHER_TOOL, "strict": True}
    finding = only_finding(_tool_exchange(tool_message(tool_use_block({"city": 7})), tools=[tool]), TOOLS,
                           "messages.response.tool_use")  # fmt: skip
    assert finding.severity is Severity.FAILURE
    assert finding.message == "tool_use content[1] ('get_weather') input.city: 7 is not of type 'string'"


def test_input_against_a_non_strict_tool_schema_is_a_note():
    finding = only_finding(_tool_exchange(tool_message(tool_use_block({"city": "Paris", "unit": "k"}))), TOOLS,
                           "messages.response.tool_use")  # fmt: skip
    assert finding.severity is Severity.NOTE
    assert "input.unit: 'k' is not one of ['c', 'f']" in finding.message


def test_empty_input_for_required_properties_is_a_failure():
    """Bug pattern 14 in a non-stream response: the arguments were dropped."""
    finding = only_finding(_tool_exchange(tool_message(tool_use_block({}))), TOOLS, "messages.response.tool_use")
    assert finding.severity is Severity.FAILURE
    assert finding.message == "tool_use content[1] ('get_weather') input: 'city' is a required property"


def test_a_tool_is_called_by_code_only_when_its_allowed_callers_say_so():
    body = program_request_body(tools=[WEATHER_TOOL, CODE_EXECUTION_TOOL])
    finding = only_finding(message_exchange(program_message(), request_body=body), TOOLS, "messages.response.tool_use")
    assert finding.message == (
        "tool_use content[2] ('get_weather') is called by 'code_execution_20260120', but the tool's "
        "allowed_callers is ['direct']"
    )


def test_a_tool_callable_only_from_code_is_not_called_directly():
    exchange = message_exchange(tool_message(), request_body=program_request_body())
    finding = only_finding(exchange, TOOLS, "messages.response.tool_use")
    assert finding.message == (
        "tool_use content[1] ('get_weather') is called by 'direct', but the tool's allowed_callers is "
        "['code_execution_20260120']"
    )


def test_a_call_made_by_code_names_the_code_execution_call_running_it():
    """The program's server_tool_use is in the same message, or (continuing) in the conversation."""
    assert_clean(message_exchange(program_message(), request_body=program_request_body()))
    exchange = message_exchange(continuation_message(), request_body=program_request_body())
    finding = only_finding(exchange, TOOLS, "messages.response.tool_use")
    assert finding.message == (
        "tool_use content[0] ('get_weather') is called by the program of 'srvtoolu_017SzB73BSitzNFo1Xb3bq7S', "
        "but no server_tool_use with that id is in the message or the conversation"
    )


def test_tool_input_that_arrives_whole_in_a_stream_is_validated():
    tools = [{**WEATHER_TOOL, "allowed_callers": ["code_execution_20260120"], "strict": True}, CODE_EXECUTION_TOOL]
    events = replace(program_stream(), 8, block_start(2, {**code_call_block(), "input": {"city": 7}}))
    exchange = stream_exchange(events, request_body=program_request_body(tools=tools))
    finding = only_finding(exchange, TOOLS, "messages.response.tool_use")
    assert finding.message == "tool_use content[2] ('get_weather') input.city: 7 is not of type 'string'"


def test_streamed_tool_input_is_validated():
    events = tool_stream(("", '{"city": 7}'))
    exchange = stream_exchange(events, request_body=tool_request_body(tools=[{**WEATHER_TOOL, "strict": True}]))
    finding = only_finding(exchange, TOOLS, "messages.response.tool_use")
    assert finding.message == "tool_use content[1] ('get_weather') input.city: 7 is not of type 'string'"


# --------------------------------------------------------------------------- count_tokens


def test_count_tokens_counts_something():
    finding = only_finding(
        count_tokens_exchange({"input_tokens": 0}), "semantics.count-tokens", "count_tokens.response"
    )
    assert finding.message == "input_tokens is 0 for a request with 1 message(s)"


# --------------------------------------------------------------------------- citations

MEMO = "The Ruby language was created in 1993. It was designed to make programmers happy."


def cited_exchange(citation: dict, documents: int = 1) -> Exchange:
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": MEMO},
                "citations": {"enabled": True}}  # fmt: skip
    request_body = messages_body(messages=[{"role": "user", "content": [document] * documents + [text_block("Who?")]}])
    return message_exchange(message([text_block("Created in 1993.", citations=[citation])]), request_body=request_body)


def char_location(start: int = 0, end: int = 39, **overrides: object) -> dict:
    citation = {"type": "char_location", "cited_text": MEMO[start:end], "document_index": 0, "document_title": None,
                "start_char_index": start, "end_char_index": end}  # fmt: skip
    return {**citation, **overrides}


def test_a_char_location_that_slices_its_document_is_fine() -> None:
    assert MEMO[0:39] == "The Ruby language was created in 1993. "
    assert_clean(cited_exchange(char_location()))


@pytest.mark.parametrize(
    ("citation", "words"),
    [
        (char_location(document_index=1), "document_index 1, but the request has 1 document(s)"),
        (char_location(cited_text="The Ruby language was made in 1993. "), "is not the document's characters 0..39"),
        (char_location(end_char_index=500), "outside the document's 81 characters"),
        (
            {"type": "search_result_location", "cited_text": "x", "search_result_index": 0, "source": "s", "title": "t",
             "start_block_index": 0, "end_block_index": 1},
            "search_result_index 0, but the request has 0 search result(s)",
        ),
    ],
)  # fmt: skip
def test_citations_must_point_into_the_request(citation: dict, words: str) -> None:
    finding = only_finding(cited_exchange(citation), "semantics.citations", "messages.response.citations")
    assert words in finding.message


def test_citations_of_web_search_results_are_not_judged() -> None:
    citation = {"type": "web_search_result_location", "cited_text": "x", "url": "https://e.com", "title": "E",
                "encrypted_index": "abc"}  # fmt: skip
    assert check("semantics.citations", cited_exchange(citation)) == []
