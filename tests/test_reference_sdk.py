"""The official anthropic SDK against the reference server: a real client must work end to end.

SDK 2.12 authenticates with `Authorization: Bearer` and sends `anthropic-version: 2026-10-21`,
so these tests also cover that auth style and that version.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import jsonschema
import pytest

from conformance.reference import ReferenceServer

API_KEY = "test-key"
MODEL = "claude-test"
WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
}
THINKING: dict[str, Any] = {"type": "enabled", "budget_tokens": 1024}


@pytest.fixture(scope="module")
def reference_server() -> Iterator[ReferenceServer]:
    with ReferenceServer(api_key=API_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def sdk(reference_server: ReferenceServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=reference_server.base_url, api_key=API_KEY, max_retries=0) as client:
        yield client


def ask(prompt: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}]


def test_create_text(sdk: anthropic.Anthropic) -> None:
    message = sdk.messages.create(model=MODEL, max_tokens=32, messages=ask("Reply with exactly: ALPHA"))
    assert message.content[0].type == "text"
    assert message.content[0].text == "ALPHA"
    assert message.stop_reason == "end_turn"
    assert message.model == MODEL
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == 1
    assert message._request_id is not None and message._request_id.startswith("req_")


def test_create_with_tools_and_tool_result(sdk: anthropic.Anthropic) -> None:
    first = sdk.messages.create(
        model=MODEL,
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=ask("What is the weather in Lisbon?"),
    )
    assert first.stop_reason == "tool_use"
    call = first.content[0]
    assert call.type == "tool_use" and call.name == "get_weather"
    assert isinstance(call.input, dict)
    jsonschema.validate(call.input, WEATHER["input_schema"])
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 degrees."}
    second = sdk.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER],
        messages=[
            *ask("What is the weather in Lisbon?"),
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [result]},
        ],
    )
    assert second.content[0].text == "The tool returned: Sunny, 21 degrees."
    assert second.stop_reason == "end_turn"


def test_stream_text(sdk: anthropic.Anthropic) -> None:
    with sdk.messages.stream(model=MODEL, max_tokens=64, messages=ask("Count from 1 to 12.")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == " ".join(str(n) for n in range(1, 13))
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 12


def test_stream_with_tools(sdk: anthropic.Anthropic) -> None:
    with sdk.messages.stream(
        model=MODEL, max_tokens=200, tools=[WEATHER], messages=ask("Use the get_weather tool for Oslo.")
    ) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["text", "tool_use"]
    jsonschema.validate(final.content[1].input, WEATHER["input_schema"])
    assert final.stop_reason == "tool_use"


def test_stream_max_tokens(sdk: anthropic.Anthropic) -> None:
    with sdk.messages.stream(model=MODEL, max_tokens=5, messages=ask("Count from 1 to 200.")) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens"
    assert final.content[0].text == "1 2 3 4 5"


def test_thinking_create_and_replay(sdk: anthropic.Anthropic) -> None:
    first = sdk.messages.create(
        model=MODEL, max_tokens=1200, thinking=THINKING, messages=ask("Reply with exactly: OSCAR")
    )
    assert [block.type for block in first.content] == ["thinking", "text"]
    assert first.content[0].thinking and first.content[0].signature
    second = sdk.messages.create(
        model=MODEL,
        max_tokens=1200,
        thinking=THINKING,
        messages=[
            *ask("Reply with exactly: OSCAR"),
            {"role": "assistant", "content": first.content},
            *ask("Reply with exactly: PAPA"),
        ],
    )
    assert second.content[-1].text == "PAPA"


def test_thinking_stream(sdk: anthropic.Anthropic) -> None:
    with sdk.messages.stream(
        model=MODEL, max_tokens=1200, thinking=THINKING, messages=ask("Reply with exactly: NOVEMBER")
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert "thinking" in kinds and "signature" in kinds
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].signature
    assert final.content[1].text == "NOVEMBER"


def test_count_tokens_matches_usage(sdk: anthropic.Anthropic) -> None:
    messages = ask("Where is my order 12345?")
    counted = sdk.messages.count_tokens(model=MODEL, messages=messages, tools=[WEATHER], system="Be terse.")
    created = sdk.messages.create(model=MODEL, max_tokens=16, messages=messages, tools=[WEATHER], system="Be terse.")
    assert counted.input_tokens == created.usage.input_tokens > 0


def test_sampling_fields_are_refused_under_the_sdk_version(sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.create(model=MODEL, max_tokens=16, messages=ask("Hi"), extra_body={"temperature": 0.5})
    assert caught.value.status_code == 400
    assert caught.value.body["error"]["message"] == "temperature: Extra inputs are not permitted"


def test_bad_request_error(sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.create(model=MODEL, max_tokens=16, messages=[{"role": "wizard", "content": "Hi"}])
    assert caught.value.request_id is not None and caught.value.request_id.startswith("req_")


def test_authentication_error(reference_server: ReferenceServer) -> None:
    with (
        anthropic.Anthropic(base_url=reference_server.base_url, api_key="wrong", max_retries=0) as client,
        pytest.raises(anthropic.AuthenticationError),
    ):
        client.messages.create(model=MODEL, max_tokens=16, messages=ask("Hi"))


def test_not_found_error(sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        sdk.post("/v1/not-an-endpoint", cast_to=object, body={})


@pytest.mark.parametrize(
    ("error_type", "exception"),
    [("overloaded_error", anthropic.OverloadedError), ("rate_limit_error", anthropic.RateLimitError)],
)
def test_simulated_errors_map_to_sdk_exceptions(
    sdk: anthropic.Anthropic, error_type: str, exception: type[anthropic.APIStatusError]
) -> None:
    with pytest.raises(exception):
        sdk.messages.create(model=MODEL, max_tokens=16, messages=ask(f"Simulate error: {error_type}"))


def test_mid_stream_error_is_raised(sdk: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        sdk.messages.stream(model=MODEL, max_tokens=16, messages=ask("Simulate stream error: overloaded_error")) as s,
    ):
        s.get_final_message()
    assert caught.value.body["error"]["type"] == "overloaded_error"


# --- what the catalogue adds: citations, refusals, quiet streams, unknown events -------------------


def cited_memo() -> list[dict[str, Any]]:
    memo = {"type": "text", "media_type": "text/plain", "data": "The quince is ripe in October. It turns gold."}
    document = {"type": "document", "source": memo, "title": "Memo", "citations": {"enabled": True}}
    return [{"role": "user", "content": [document, {"type": "text", "text": "When is the quince ripe?"}]}]


def test_stream_with_citations_accumulates_like_the_json_answer(sdk: anthropic.Anthropic) -> None:
    plain = sdk.messages.create(model=MODEL, max_tokens=64, messages=cited_memo())
    with sdk.messages.stream(model=MODEL, max_tokens=64, messages=cited_memo()) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].citations is not None
    assert streamed.content[0].citations[0].type == "char_location"
    assert streamed.content[0].citations[0].cited_text == "The quince is ripe in October. "
    assert streamed.content[0].model_dump() == plain.content[0].model_dump()


def test_refusal_and_newer_stop_reasons_parse(sdk: anthropic.Anthropic) -> None:
    refusal = "ANTHROPIC_MAGIC_STRING_TRIGGER_REFUSAL_1FAEFB6177B4672DEE07F9D3AFC62588CCD2631EDCF22E8CCC1FB35B501C9C86"
    with sdk.messages.stream(model=MODEL, max_tokens=32, messages=ask(refusal)) as stream:
        assert stream.get_final_message().stop_reason == "refusal"
    for reason in ("pause_turn", "model_context_window_exceeded"):
        message = sdk.messages.create(model=MODEL, max_tokens=32, messages=ask(f"Simulate stop: {reason}\nHello"))
        assert message.stop_reason == reason


def test_the_sdk_skips_unknown_events_and_pings_of_a_quiet_stream(sdk: anthropic.Anthropic) -> None:
    prompt = "Simulate unknown event\nSimulate delay: 0.6\nReply with exactly: STILL HERE"
    with sdk.messages.stream(model=MODEL, max_tokens=32, messages=ask(prompt)) as stream:
        assert stream.get_final_text() == "STILL HERE"
