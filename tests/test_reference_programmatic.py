"""Programmatic tool calling on the reference server, over real HTTP on loopback, shaped as the API answers it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from conformance.accumulate import accumulate
from conformance.checks import run_checks
from conformance.model import Exchange, Request, Response, Severity
from conformance.reference import ReferenceServer
from conformance.reference.programmatic import PROGRAM_CALLS
from conformance.sse import parse_stream
from tests.exchanges import CODE_EXECUTION_TOOL, WEATHER_TOOL

API_KEY = "programmatic-key"
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
TOOLS = [{**WEATHER_TOOL, "allowed_callers": ["code_execution_20260120"]}, CODE_EXECUTION_TOOL]
ASKED = {"role": "user", "content": "Use the get_weather tool from a program, for Paris and Oslo."}


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer(api_key=API_KEY) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: ReferenceServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=HEADERS) as http:
        yield http


def _ask(client: httpx.Client, body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """The final message and, for a stream, its event payloads; every check passes on the exchange."""
    answer = client.post("/v1/messages", json=body)
    assert answer.status_code == 200, answer.text
    stream = parse_stream(answer.content) if body.get("stream") else None
    response = Response(
        status=200,
        headers=dict(answer.headers),
        text=answer.text,
        json=None if stream is not None else answer.json(),
        events=stream,
    )
    exchange = Exchange(request=Request("POST", str(answer.request.url), headers=HEADERS, body=body), response=response)
    failures = [f.message for f in run_checks(exchange) if f.severity is Severity.FAILURE]
    assert failures == []
    if stream is None:
        return answer.json(), None
    return accumulate(stream).message, [event.json for event in stream]


def _body(messages: list[dict[str, Any]], stream: bool, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-test",
        "max_tokens": 1024,
        "stream": stream,
        "tools": TOOLS,
        "messages": messages,
        **extra,
    }


def _answered(call: dict[str, Any], text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": text}]}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_program_calls_the_tool_and_each_result_resumes_it(client: httpx.Client, stream: bool):
    first, _ = _ask(client, _body([ASKED], stream))
    assert [block["type"] for block in first["content"]] == ["text", "server_tool_use", "tool_use"]
    program, call = first["content"][1:]
    assert program["name"] == "code_execution" and "get_weather" in program["input"]["code"]
    assert call["caller"] == {"type": "code_execution_20260120", "tool_id": program["id"]}
    assert first["stop_reason"] == "tool_use" and first["container"]["id"].startswith("container_")
    assert first["usage"]["output_tokens"] > 0

    conversation = [ASKED, {"role": "assistant", "content": first["content"]}, _answered(call, "Paris: 18 C")]
    container = first["container"]["id"]
    for _ in range(PROGRAM_CALLS - 1):
        resumed, _ = _ask(client, _body(conversation, stream, container=container))
        assert [block["type"] for block in resumed["content"]] == ["tool_use"]
        assert resumed["content"][0]["caller"] == call["caller"]
        assert resumed["stop_reason"] == "tool_use" and resumed["container"]["id"] == container
        assert (resumed["usage"]["input_tokens"], resumed["usage"]["output_tokens"]) == (0, 0)
        conversation += [
            {"role": "assistant", "content": resumed["content"]},
            _answered(resumed["content"][0], "Oslo: 9 C"),
        ]

    done, _ = _ask(client, _body(conversation, stream, container=container))
    result, text = done["content"]
    assert result["type"] == "code_execution_tool_result" and result["tool_use_id"] == program["id"]
    assert result["content"]["stdout"] == "Paris: 18 C\nOslo: 9 C\n"
    assert text["text"] == "The program printed: Paris: 18 C Oslo: 9 C"
    assert done["stop_reason"] == "end_turn"


def test_a_resumed_call_streams_complete_in_message_start(client: httpx.Client):
    first, _ = _ask(client, _body([ASKED], False))
    conversation = [ASKED, {"role": "assistant", "content": first["content"]}, _answered(first["content"][2], "18 C")]
    resumed, events = _ask(client, _body(conversation, True))
    assert [event["type"] for event in events] == ["message_start", "message_stop"]
    assert events[0]["message"]["content"] == resumed["content"]
    assert events[0]["message"]["stop_reason"] == "tool_use"


def test_a_call_made_by_the_program_arrives_whole_in_its_block_start(client: httpx.Client):
    message, events = _ask(client, _body([ASKED], True))
    starts = {event["index"]: event["content_block"] for event in events if event["type"] == "content_block_start"}
    assert starts[2] == message["content"][2] and starts[2]["input"] != {}
    assert starts[1]["input"] == {}  # the code itself streams, as the API streams it
    ended = next(event for event in events if event["type"] == "message_delta")
    assert events[0]["message"]["container"] is None and ended["delta"]["container"] == message["container"]
    streamed = {event["index"] for event in events if event["type"] == "content_block_delta"}
    assert 1 in streamed and 2 not in streamed
    assert (
        json.loads("".join(e["delta"]["partial_json"] for e in events if e.get("index") == 1 and "delta" in e))
        == (message["content"][1]["input"])
    )


def test_a_tool_not_offered_to_code_is_called_directly(client: httpx.Client):
    body = _body([ASKED], False, tools=[WEATHER_TOOL, CODE_EXECUTION_TOOL])
    message, _ = _ask(client, body)
    assert [block["type"] for block in message["content"]] == ["text", "tool_use"]
    assert message["content"][1]["caller"] == {"type": "direct"} and message["container"] is None


@pytest.mark.parametrize("choice", [{"type": "auto"}, {"type": "any"}], ids=["auto", "any"])
def test_a_tool_only_code_may_call_is_never_called_directly(client: httpx.Client, choice: dict[str, Any]):
    body = _body([ASKED], False, tools=TOOLS[:1], tool_choice=choice)
    message, _ = _ask(client, body)
    assert message["content"] == [
        {"type": "text", "text": "I can't call get_weather myself: only code execution may call it.", "citations": None}
    ]
    assert message["stop_reason"] == "end_turn"


def test_the_official_sdk_folds_the_program_streams_as_the_checks_do(client: httpx.Client, server: ReferenceServer):
    """The SDK's MessageStream keeps message_start's content and a call's whole input, as our accumulator does."""
    sdk = anthropic.Anthropic(base_url=server.base_url, api_key=API_KEY)
    with sdk.messages.stream(model="claude-test", max_tokens=1024, tools=TOOLS, messages=[ASKED]) as stream:
        first = stream.get_final_message().model_dump(exclude_none=True)
    ours, _ = _ask(client, _body([ASKED], True))
    assert [block["type"] for block in first["content"]] == ["text", "server_tool_use", "tool_use"]
    assert first["content"][2]["input"] == ours["content"][2]["input"] != {}
    conversation = [ASKED, {"role": "assistant", "content": first["content"]}, _answered(first["content"][2], "18 C")]
    with sdk.messages.stream(
        model="claude-test",
        max_tokens=1024,
        tools=TOOLS,
        messages=conversation,
        extra_body={"container": first["container"]["id"]},
    ) as stream:
        kinds = [event.type for event in stream]
        resumed = stream.get_final_message()
    assert kinds == ["message_start", "message_stop"]
    assert resumed.stop_reason == "tool_use" and resumed.content[0].caller.type == "code_execution_20260120"
