"""Builders of real-shaped exchanges for the checks' tests.

Every builder returns a correct exchange by default (run_checks finds nothing); tests change
one thing and assert the one finding it causes. The shapes follow what api.anthropic.com sends:
`model` resolved to a dated snapshot, cache fields in usage, `request-id` headers, SSE events
named after their payload type.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from typing import Any

from conformance.checks import CHECKS, run_checks
from conformance.model import Exchange, Finding, Request, Response, Severity, SSEEvent

BASE_URL = "https://gateway.example.test"
MESSAGES_URL = f"{BASE_URL}/v1/messages"
COUNT_TOKENS_URL = f"{BASE_URL}/v1/messages/count_tokens"
MODEL = "claude-sonnet-4-5"
SNAPSHOT = "claude-sonnet-4-5-20250929"
REQUEST_ID = "req_011CTestRequestId00000001"

WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"],
    },
}
SIGNATURE = "EqQBCkYIBxgCKkBk3mJ2mV0xc1GbH2T7ZsF1oQq0M3cXh8vB4rP6dD9sYwK1nE5tU7aL0pR2iC8fJ6gH4jN3mO9kS0q"


# --------------------------------------------------------------------------- requests


def messages_body(**overrides: Any) -> dict[str, Any]:
    """A minimal valid Messages request body."""
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Reply with exactly: ALPHA"}],
    }
    body.update(overrides)
    return body


def request(body: dict[str, Any] | None = None, url: str = MESSAGES_URL) -> Request:
    return Request(
        method="POST",
        url=url,
        headers={"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "[redacted]"},
        body=messages_body() if body is None else body,
    )


def json_headers(**extra: str) -> dict[str, str]:
    headers = {"content-type": "application/json", "request-id": REQUEST_ID}
    headers.update(extra)
    return headers


def stream_headers(**extra: str) -> dict[str, str]:
    return json_headers(**{"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", **extra})


# --------------------------------------------------------------------------- JSON messages


def usage(input_tokens: int = 21, output_tokens: int = 6, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }
    data.update(extra)
    return data


def message(content: list[dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:
    """A Message as a non-stream response body (one text block by default)."""
    data: dict[str, Any] = {
        "model": SNAPSHOT,
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "content": [text_block("ALPHA")] if content is None else content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "stop_details": None,
        "usage": usage(),
    }
    data.update(overrides)
    return data


def text_block(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": text, **extra}


def tool_use_block(
    input: dict[str, Any] | None = None, name: str = "get_weather", id: str = "toolu_01A09q90qw90lq917835lq9"
) -> dict[str, Any]:
    return {"type": "tool_use", "id": id, "name": name, "input": {"city": "Paris"} if input is None else input}


def thinking_block(thinking: str = "The user wants one word.", signature: str = SIGNATURE) -> dict[str, Any]:
    return {"type": "thinking", "thinking": thinking, "signature": signature}


def tool_message(*blocks: dict[str, Any]) -> dict[str, Any]:
    """A tool-calling turn: a preamble, the tool_use block(s), stop_reason tool_use."""
    content = [text_block("I'll check the weather."), *(blocks or (tool_use_block(),))]
    return message(content, stop_reason="tool_use", usage=usage(380, 54))


def message_exchange(
    body: Any = None,
    *,
    request_body: dict[str, Any] | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    text: str | None = None,
) -> Exchange:
    """A non-stream /v1/messages exchange; `body` is the JSON response (a valid Message by default)."""
    body = message() if body is None else body
    return Exchange(
        request=request(request_body),
        response=Response(
            status=status,
            headers=json_headers() if headers is None else headers,
            text=json.dumps(body) if text is None else text,
            json=body if text is None else None,
        ),
    )


def tool_request_body(**overrides: Any) -> dict[str, Any]:
    """A request offering the weather tool (override `tools` to offer others)."""
    body = {
        "max_tokens": 256,
        "tools": [WEATHER_TOOL],
        "messages": [{"role": "user", "content": "What is the weather in Paris? Use the tool."}],
    }
    return messages_body(**{**body, **overrides})


# --------------------------------------------------------------------------- errors, count_tokens


def error_body(error_type: str = "invalid_request_error", message_text: str = "max_tokens: Field required") -> dict:
    return {"type": "error", "error": {"type": error_type, "message": message_text}, "request_id": REQUEST_ID}


def error_exchange(
    status: int = 400,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    text: str | None = None,
    url: str = MESSAGES_URL,
) -> Exchange:
    """An error response; `text` replaces the JSON body with raw text (e.g. an HTML error page)."""
    body = error_body() if body is None and text is None else body
    return Exchange(
        request=request(messages_body(), url=url),
        response=Response(
            status=status,
            headers=json_headers() if headers is None else headers,
            text=json.dumps(body) if text is None else text,
            json=body,
        ),
    )


def count_tokens_exchange(body: Any = None, *, request_body: dict[str, Any] | None = None) -> Exchange:
    body = {"input_tokens": 14} if body is None else body
    request_body = request_body or {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}]}
    return Exchange(
        request=request(request_body, url=COUNT_TOKENS_URL),
        response=Response(status=200, headers=json_headers(), text=json.dumps(body), json=body),
    )


# --------------------------------------------------------------------------- streams


def sse(payload: Any, name: str | None = "", data: str | None = None) -> SSEEvent:
    """One event. `name` defaults to the payload's type (None: no `event:` line); `data` overrides the raw text."""
    raw = json.dumps(payload) if data is None else data
    if name == "":
        name = payload.get("type") if isinstance(payload, dict) else None
    parsed: Any = payload
    error = None
    if data is not None:
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            parsed, error = None, f"not JSON: {exc}"
    return SSEEvent(event=name, data=raw, json=parsed, json_error=error)


def stream_exchange(
    events: Iterable[dict[str, Any] | SSEEvent],
    *,
    request_body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    truncated: str | None = None,
) -> Exchange:
    """A streamed /v1/messages exchange from payload dicts (or ready SSEEvents)."""
    parsed = [item if isinstance(item, SSEEvent) else sse(item) for item in events]
    body = messages_body(stream=True) if request_body is None else {**request_body, "stream": True}
    return Exchange(
        request=request(body),
        response=Response(
            status=200,
            headers=stream_headers() if headers is None else headers,
            text="".join(f"event: {e.event}\ndata: {e.data}\n\n" for e in parsed),
            events=parsed,
            truncated=truncated,
        ),
    )


def message_start(input_tokens: int = 21, output_tokens: int = 1) -> dict[str, Any]:
    start = message([], stop_reason=None, usage=usage(input_tokens, output_tokens))
    return {"type": "message_start", "message": start}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, kind: str, value: Any) -> dict[str, Any]:
    field = {
        "text_delta": "text",
        "input_json_delta": "partial_json",
        "thinking_delta": "thinking",
        "signature_delta": "signature",
        "citations_delta": "citation",
    }.get(kind, "value")
    return {"type": "content_block_delta", "index": index, "delta": {"type": kind, field: value}}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(
    stop_reason: str | None = "end_turn", output_tokens: int = 6, input_tokens: int = 21, **extra: Any
) -> dict[str, Any]:
    counts = {"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None, "stop_details": None},
        "usage": {**counts, "output_tokens": output_tokens, **extra},
    }


PING = {"type": "ping"}
MESSAGE_STOP = {"type": "message_stop"}


def text_stream(chunks: Sequence[str] = ("AL", "PHA")) -> list[dict[str, Any]]:
    """A text answer as the real API streams it (ping right after the first block start)."""
    return [
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        PING,
        *(delta(0, "text_delta", chunk) for chunk in chunks),
        block_stop(0),
        message_delta(),
        MESSAGE_STOP,
    ]


def tool_stream(fragments: Sequence[str] = ("", '{"city": ', '"Paris"}')) -> list[dict[str, Any]]:
    """Text, then a tool_use block whose input arrives in input_json_delta fragments."""
    return [
        message_start(380),
        block_start(0, {"type": "text", "text": ""}),
        delta(0, "text_delta", "I'll check the weather."),
        block_stop(0),
        block_start(1, {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {}}),
        *(delta(1, "input_json_delta", fragment) for fragment in fragments),
        block_stop(1),
        message_delta("tool_use", 54, 380),
        MESSAGE_STOP,
    ]


def thinking_stream() -> list[dict[str, Any]]:
    """A thinking block (signed by signature_delta before its stop), then the answer."""
    return [
        message_start(43),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, "thinking_delta", "The user wants one word."),
        delta(0, "signature_delta", SIGNATURE),
        block_stop(0),
        block_start(1, {"type": "text", "text": ""}),
        delta(1, "text_delta", "ALPHA"),
        block_stop(1),
        message_delta(output_tokens=40, input_tokens=43),
        MESSAGE_STOP,
    ]


# --------------------------------------------------------------------------- programmatic tool calling

CODE_EXECUTION_TOOL: dict[str, Any] = {"type": "code_execution_20260120", "name": "code_execution"}
PROGRAM_ID = "srvtoolu_017SzB73BSitzNFo1Xb3bq7S"
CODE_CALLER: dict[str, Any] = {"type": "code_execution_20260120", "tool_id": PROGRAM_ID}
CONTAINER: dict[str, Any] = {"id": "container_011CYVPF4iP8oD6Vsz1NhVih", "expires_at": "2026-02-25T20:07:39.078916Z"}
PROGRAM_CODE = 'for city in ["Paris", "Oslo"]:\n    print(await get_weather({"city": city}))\n'


def program_block() -> dict[str, Any]:
    """The code execution call that runs a program calling get_weather."""
    return {
        "type": "server_tool_use",
        "id": PROGRAM_ID,
        "name": "code_execution",
        "input": {"code": PROGRAM_CODE},
        "caller": {"type": "direct"},
    }


def code_call_block(city: str = "Paris", id: str = "toolu_011MDRpaZRMRRjtFkJizD6nS") -> dict[str, Any]:
    """A get_weather call made by the program (its caller names the code execution call)."""
    return {**tool_use_block({"city": city}, id=id), "caller": dict(CODE_CALLER)}


def program_request_body(*, continued: bool = False, **overrides: Any) -> dict[str, Any]:
    """A request offering code execution and get_weather callable from code; `continued`: the
    conversation already holds the program's first call and its result."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris and Oslo?"}]
    if continued:
        messages += [
            {"role": "assistant", "content": [text_block("I'll run a program."), program_block(), code_call_block()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": code_call_block()["id"], "content": "18 C"}],
            },
        ]
    tools = [{**WEATHER_TOOL, "allowed_callers": ["code_execution_20260120"]}, CODE_EXECUTION_TOOL]
    body = {"max_tokens": 1024, "tools": tools, "messages": messages}
    return messages_body(**{**body, **({"container": CONTAINER["id"]} if continued else {}), **overrides})


def program_message() -> dict[str, Any]:
    """The first answer: a preamble, the code execution call, and the program's first tool call."""
    content = [text_block("I'll run a program."), program_block(), code_call_block()]
    return message(content, stop_reason="tool_use", container=dict(CONTAINER), usage=usage(3182, 237))


def continuation_message() -> dict[str, Any]:
    """The answer to a code-executed call's result: the program's next call, with zero usage (as the API sends)."""
    zero = {
        "input_tokens": 0,
        "output_tokens": 0,
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
    }
    content = [code_call_block("Oslo", id="toolu_01RXQDRjwv5Un7n98xFahjo8")]
    return message(content, stop_reason="tool_use", container=dict(CONTAINER), usage=zero)


def program_stream() -> list[dict[str, Any]]:
    """The first answer streamed: the code streams in input_json_delta, the program's call arrives whole."""
    code = json.dumps({"code": PROGRAM_CODE})
    return [
        message_start(3182),
        block_start(0, {"type": "text", "text": ""}),
        delta(0, "text_delta", "I'll run a program."),
        block_stop(0),
        block_start(1, {**program_block(), "input": {}}),
        delta(1, "input_json_delta", code[:20]),
        delta(1, "input_json_delta", code[20:]),
        block_stop(1),
        block_start(2, code_call_block()),
        block_stop(2),
        message_delta("tool_use", 237, 3182),
        MESSAGE_STOP,
    ]


def continuation_stream() -> list[dict[str, Any]]:
    """The continuation streamed as the API sends it: the complete message in message_start, then message_stop."""
    return [{"type": "message_start", "message": continuation_message()}, MESSAGE_STOP]


def replace(events: list[dict[str, Any]], position: int, *new: dict[str, Any] | SSEEvent) -> list[Any]:
    """A copy of `events` with the event at `position` replaced by `new` (none: removed)."""
    result: list[Any] = copy.deepcopy(events)
    result[position : position + 1] = list(new)
    return result


# --------------------------------------------------------------------------- assertions


def check(name: str, exchange: Exchange) -> list[Finding]:
    """The findings of one registered check."""
    return CHECKS[name](exchange)


def failures(findings: Iterable[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.severity is Severity.FAILURE]


def assert_clean(exchange: Exchange) -> None:
    """No check finds any failure (notes are allowed)."""
    found = failures(run_checks(exchange))
    assert not found, "\n".join(f"{f.check} [{f.spec_ref}] {f.message}" for f in found)


def only_finding(exchange: Exchange, check_name: str, spec_ref: str) -> Finding:
    """The single finding of `check_name` (which must carry `spec_ref`); returns it for message asserts."""
    found = check(check_name, exchange)
    assert len(found) == 1, [f"{f.check} [{f.spec_ref}] {f.message}" for f in found]
    assert found[0].check == check_name
    assert found[0].spec_ref == spec_ref, found[0]
    return found[0]
