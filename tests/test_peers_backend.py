"""The scripted OpenAI backend answers like an OpenAI endpoint, driven by the same prompts as the
reference server; the process manager starts and stops peers by process group."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

from conformance.peers.openai_backend import create_openai_app
from conformance.peers.process import ManagedProcess, PeerError, free_port
from conformance.reference import ReferenceServer
from conformance.sse import parse_stream

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def backend() -> str:
    with ReferenceServer(app=create_openai_app()) as server:
        yield server.base_url


def chat(backend: str, **body) -> httpx.Response:
    body.setdefault("model", "scripted")
    return httpx.post(backend + "/v1/chat/completions", json=body, timeout=10)


def test_text_answer_and_finish_reason_stop(backend: str) -> None:
    data = chat(backend, messages=[{"role": "user", "content": "Reply with exactly: ALPHA"}]).json()
    assert data["choices"][0]["message"]["content"] == "ALPHA"
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"]["prompt_tokens"] > 0


def test_length_when_max_tokens_cuts(backend: str) -> None:
    data = chat(backend, max_tokens=3, messages=[{"role": "user", "content": "Count from 1 to 50"}]).json()
    assert data["choices"][0]["finish_reason"] == "length"


def test_tool_calls_with_valid_arguments(backend: str) -> None:
    data = chat(
        backend, tools=[WEATHER], tool_choice="required", messages=[{"role": "user", "content": "Oslo?"}]
    ).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert "city" in json.loads(call["function"]["arguments"])


def test_tool_result_round_trip(backend: str) -> None:
    messages = [
        {"role": "user", "content": "Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "Sunny"},
    ]
    data = chat(backend, tools=[WEATHER], messages=messages).json()
    assert data["choices"][0]["message"]["content"] == "The tool returned: Sunny"


def test_stream_chunks_rebuild_text_and_tool_arguments(backend: str) -> None:
    response = chat(
        backend, stream=True, tools=[WEATHER], tool_choice="required", messages=[{"role": "user", "content": "Oslo?"}]
    )
    events = parse_stream(response.content)
    assert events[-1].data == "[DONE]"
    payloads = [e.json for e in events[:-1]]
    arguments = "".join(
        call["function"].get("arguments", "")
        for p in payloads
        for call in p["choices"][0]["delta"].get("tool_calls", [])
    )
    assert "city" in json.loads(arguments)
    assert payloads[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_error_path_is_openai_shaped(backend: str) -> None:
    response = chat(backend, messages=[{"role": "user", "content": "Simulate error: overloaded_error"}])
    assert response.status_code == 529
    assert response.json()["error"]["type"] == "overloaded_error"
    bad = chat(backend, max_tokens="sixteen", messages=[{"role": "user", "content": "hi"}])
    assert bad.status_code == 400 and "error" in bad.json()


def test_responses_api_and_input_tokens(backend: str) -> None:
    body = {
        "model": "scripted",
        "input": [{"role": "user", "content": "Reply with exactly: BRAVO"}],
        "max_output_tokens": 50,
    }
    data = httpx.post(backend + "/v1/responses", json=body, timeout=10).json()
    assert data["status"] == "completed"
    assert data["output"][0]["content"][0]["text"] == "BRAVO"
    streamed = httpx.post(backend + "/v1/responses", json={**body, "stream": True}, timeout=10)
    kinds = [e.event for e in parse_stream(streamed.content)]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    count = httpx.post(backend + "/v1/responses/input_tokens", json=body, timeout=10).json()
    assert count["input_tokens"] > 0


def test_managed_process_starts_and_stops_by_process_group(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with ManagedProcess("http.server", argv, tmp_path / "server.log", cwd=tmp_path) as process:
        process.wait_ready(f"http://127.0.0.1:{port}/", timeout=20)
        pid = process.pid
    assert process.process is None
    with pytest.raises(OSError):
        import os

        os.kill(pid, 0)


def test_a_peer_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('bad config'); sys.exit(3)"]
    with (
        ManagedProcess("broken", argv, tmp_path / "broken.log") as process,
        pytest.raises(PeerError, match="bad config"),
    ):
        process.wait_ready("http://127.0.0.1:9/", timeout=20)


@pytest.mark.parametrize(
    ("body", "wording"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"tools": [{**WEATHER, "function": {**WEATHER["function"], "name": "get weather"}}]}, "function.name"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]}, "schema"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": "any"}, "Supported values are"),
        ({"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "get_weather"}}, "Supported values are"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function"}}, "Supported values are"),
        (
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "tool_call_id": "x", "content": "1"}]},
            "role 'tool'",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c1", "type": "function", "function": WEATHER["function"]}],
                    },
                    {"role": "user", "content": "Never mind."},
                ]
            },
            "must be followed by tool messages",
        ),
    ],
    ids=[
        "temperature",
        "function-name",
        "parameters",
        "tool-choice",
        "tool-choice-any",
        "tool-choice-anthropic-object",
        "tool-choice-unnamed-function",
        "orphan-tool",
        "unanswered-call",
    ],
)
def test_what_openai_refuses_is_refused(backend: str, body: dict, wording: str) -> None:
    body = {"messages": [{"role": "user", "content": "Hello."}], **body}
    answer = chat(backend, **body)
    assert answer.status_code == 400
    assert wording in answer.json()["error"]["message"]


def test_parallel_tool_calls_false_allows_one_call(backend: str) -> None:
    time_tool = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    question = [{"role": "user", "content": "Use the get_weather tool and the get_time tool"}]
    both = chat(backend, tools=[WEATHER, time_tool], tool_choice="required", messages=question).json()
    one = chat(
        backend, tools=[WEATHER, time_tool], tool_choice="required", parallel_tool_calls=False, messages=question
    ).json()
    assert len(one["choices"][0]["message"]["tool_calls"]) == 1
    assert len(both["choices"][0]["message"]["tool_calls"]) >= len(one["choices"][0]["message"]["tool_calls"])
