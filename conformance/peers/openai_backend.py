"""A scripted OpenAI-compatible backend (Chat Completions and Responses), for testing gateways that
translate Anthropic Messages <-> OpenAI (as LiteLLM does for most of its users).

It answers with the reference server's scripted model, so the same prompts ("Reply with exactly:
X", "Use the NAME tool", "Count from 1 to N", "Simulate error: TYPE") mean the same thing behind a
translating gateway as they do against the reference server: any difference the suite then finds
is the gateway's translation. Non-stream and stream answers, tool calls, finish reasons
stop / length / tool_calls, OpenAI-shaped errors (also for the requests OpenAI itself refuses, such as a
tool_choice outside "none", "auto", "required" or a named function), and the
Responses API's input_tokens count.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from conformance.reference import ids
from conformance.reference.errors import TYPE_TO_STATUS
from conformance.reference.scripted import Turn, read_directives, read_prompt, respond
from conformance.reference.tokens import count_input

FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
DEFAULT_MAX_TOKENS = 256


def to_anthropic(body: dict[str, Any]) -> dict[str, Any]:
    """The Messages request the scripted model reads, from a chat-completions request."""
    messages: list[dict[str, Any]] = []
    system: list[str] = []
    for message in body.get("messages") or []:
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer"):
            system.append(_text(content))
        elif role == "tool":
            block = {"type": "tool_result", "tool_use_id": message.get("tool_call_id", ""), "content": _text(content)}
            _append(messages, "user", [block])
        elif role == "assistant":
            parts = [{"type": "text", "text": _text(content)}] if _text(content) else []
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                arguments = function.get("arguments") or "{}"
                parts.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": _json(arguments),
                    }
                )
            _append(messages, "assistant", parts or [{"type": "text", "text": ""}])
        else:
            _append(messages, "user", [{"type": "text", "text": _text(content)}])
    params: dict[str, Any] = {
        "model": body.get("model", ""),
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS,
    }
    stop = body.get("stop")
    if stop:
        params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if system:
        params["system"] = "\n".join(system)
    tools = [tool.get("function") or {} for tool in body.get("tools") or [] if tool.get("type") == "function"]
    if tools:
        params["tools"] = [
            {
                "name": f.get("name", ""),
                "description": f.get("description", ""),
                "input_schema": f.get("parameters") or {"type": "object"},
            }
            for f in tools
        ]
        params["tool_choice"] = _tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False:
            params["tool_choice"]["disable_parallel_tool_use"] = True
    return params


FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def chat_problem(body: dict[str, Any]) -> str | None:
    """What an OpenAI endpoint refuses with 400 in a chat-completions request, or None.

    Only rules OpenAI itself enforces: so a translating gateway that forwards an invalid Anthropic
    request meets the refusal it would meet in production, and is judged on how it relays it.
    """
    temperature = body.get("temperature")
    if isinstance(temperature, (int, float)) and not 0 <= temperature <= 2:
        return f"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got {temperature}."
    tools = body.get("tools") or []
    for index, tool in enumerate(tools):
        function = tool.get("function") or {}
        if not FUNCTION_NAME.match(str(function.get("name", ""))):
            return f"Invalid 'tools[{index}].function.name': string does not match pattern '^[a-zA-Z0-9_-]+$'."
        parameters = function.get("parameters")
        if parameters is not None and (not isinstance(parameters, dict) or parameters.get("type") != "object"):
            return f"Invalid schema for function '{function.get('name')}': schema must be of 'type: \"object\"'."
    choice = body.get("tool_choice")
    if choice is not None and not _valid_tool_choice(choice):
        return (
            f"Invalid value for 'tool_choice': {json.dumps(choice)}. Supported values are: 'none', 'auto', "
            "'required', or an object naming a function."
        )
    if choice not in (None, "none", "auto") and not tools:
        return "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified."
    pending: set[str] = set()
    for message in body.get("messages") or []:
        role = message.get("role")
        if pending and role != "tool":
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'."
            )
        if role == "tool":
            if message.get("tool_call_id") not in pending:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a preceding "
                    "message with 'tool_calls'."
                )
            pending.discard(message.get("tool_call_id"))
        elif role == "assistant":
            pending = {call.get("id") for call in message.get("tool_calls") or []}
    return None


TOOL_CHOICE_MODES = ("none", "auto", "required")


def _valid_tool_choice(choice: Any) -> bool:
    """What OpenAI accepts as tool_choice: a mode, or {"type": "function", "function": {"name": ...}}."""
    if isinstance(choice, str):
        return choice in TOOL_CHOICE_MODES
    function = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    return isinstance(function, dict) and isinstance(function.get("name"), str)


def _tool_choice(choice: Any) -> dict[str, Any]:
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
    return {"type": "auto"}


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {}


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Consecutive same-role turns merge, as the Messages API combines them."""
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _tool_calls(turn: Turn) -> list[dict[str, Any]]:
    return [
        {
            "id": block["id"],
            "type": "function",
            "function": {"name": block["name"], "arguments": json.dumps(block["input"])},
        }
        for block in turn.content
        if block["type"] == "tool_use"
    ]


def _turn_text(turn: Turn) -> str:
    return "".join(block.get("text", "") for block in turn.content if block["type"] == "text")


def completion(body: dict[str, Any], turn: Turn, input_tokens: int) -> dict[str, Any]:
    """A non-stream chat.completion object for the scripted turn."""
    message: dict[str, Any] = {"role": "assistant", "content": _turn_text(turn) or None}
    calls = _tool_calls(turn)
    if calls:
        message["tool_calls"] = calls
    return {
        "id": "chatcmpl-" + ids.message_id().removeprefix("msg_"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [{"index": 0, "message": message, "finish_reason": FINISH_REASONS[turn.stop_reason]}],
        "usage": _usage(input_tokens, turn.output_tokens),
    }


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


async def chunks(body: dict[str, Any], turn: Turn, input_tokens: int) -> AsyncIterator[bytes]:
    """The chat.completion.chunk stream: role, text pieces, tool calls with argument pieces, finish."""
    base = {
        "id": "chatcmpl-" + ids.message_id().removeprefix("msg_"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", ""),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        payload = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(payload)}\n\n".encode()

    yield chunk({"role": "assistant", "content": ""})
    words = _turn_text(turn).split(" ")
    for i, word in enumerate(words):
        if word or i:
            yield chunk({"content": word if i == 0 else " " + word})
    for index, call in enumerate(_tool_calls(turn)):
        arguments = call["function"]["arguments"]
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        yield chunk({"tool_calls": [head]})
        for start in range(0, len(arguments), 8):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[start : start + 8]}}]})
    yield chunk({}, FINISH_REASONS[turn.stop_reason])
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {**base, "choices": [], "usage": _usage(input_tokens, turn.output_tokens)}
        yield f"data: {json.dumps(usage)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def openai_error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status_code=status)


def _answer(chat: dict[str, Any], render: Callable[[dict[str, Any], Turn, int], Response]) -> Response:
    """Run the scripted model on a chat-completions request; `render(params, turn, input_tokens)`."""
    if not isinstance(chat.get("messages"), list) or not chat["messages"]:
        return openai_error(400, "invalid_request_error", "messages must be a non-empty list.")
    problem = chat_problem(chat)
    if problem:
        return openai_error(400, "invalid_request_error", problem)
    params = to_anthropic(chat)
    limit = params["max_tokens"]
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        return openai_error(400, "invalid_request_error", f"Invalid max_tokens {limit!r}: expected an integer >= 1.")
    try:
        prompt = read_prompt(params["messages"])
    except (KeyError, IndexError, TypeError):
        return openai_error(400, "invalid_request_error", "The messages could not be read.")
    directives = read_directives(prompt)
    if directives.error:
        return openai_error(TYPE_TO_STATUS[directives.error], directives.error, f"Simulated {directives.error}.")
    return render(params, respond(params, prompt), count_input(params))


async def chat_completions(request: Request) -> Response:
    body = await _read_json(request)
    if isinstance(body, JSONResponse):
        return body
    return _answer(
        body,
        lambda params, turn, tokens: (
            StreamingResponse(chunks(body, turn, tokens), media_type="text/event-stream")
            if body.get("stream")
            else JSONResponse(completion(body, turn, tokens))
        ),
    )


def responses_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses API request as the equivalent chat-completions request."""
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    for item in [{"role": "user", "content": items}] if isinstance(items, str) else items or []:
        kind = item.get("type", "message")
        if kind == "function_call":
            call = {"id": item.get("call_id", ""), "type": "function"}
            call["function"] = {"name": item.get("name", ""), "arguments": item.get("arguments", "{}")}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(
                {"role": "tool", "tool_call_id": item.get("call_id", ""), "content": _text(item.get("output"))}
            )
        elif kind == "message":
            messages.append({"role": item.get("role", "user"), "content": _text(item.get("content"))})
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        choice = {"type": "function", "function": {"name": choice.get("name", "")}}
    tools = [
        {"type": "function", "function": {k: tool.get(k) for k in ("name", "description", "parameters")}}
        for tool in body.get("tools") or []
        if tool.get("type") == "function"
    ]
    return {
        "model": body.get("model", ""),
        "messages": messages,
        "max_tokens": body.get("max_output_tokens"),
        "tools": tools,
        "tool_choice": choice,
    }


def _output_items(turn: Turn) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    text = _turn_text(turn)
    if text:
        content = [{"type": "output_text", "text": text, "annotations": []}]
        items.append(
            {
                "type": "message",
                "id": "msg_" + ids.tool_use_id()[6:],
                "status": "completed",
                "role": "assistant",
                "content": content,
            }
        )
    for call in _tool_calls(turn):
        function = call["function"]
        items.append(
            {
                "type": "function_call",
                "id": "fc_" + call["id"].removeprefix("toolu_"),
                "call_id": call["id"],
                "name": function["name"],
                "arguments": function["arguments"],
                "status": "completed",
            }
        )
    return items


def response_object(body: dict[str, Any], turn: Turn, input_tokens: int, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A Responses API `response` object; a max_tokens stop is `incomplete`."""
    incomplete = turn.stop_reason == "max_tokens"
    return {
        "id": "resp_" + ids.message_id().removeprefix("msg_"),
        "object": "response",
        "created_at": int(time.time()),
        "model": body.get("model", ""),
        "status": "incomplete" if incomplete else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "output": items,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": turn.output_tokens,
            "total_tokens": input_tokens + turn.output_tokens,
        },
    }


async def response_events(body: dict[str, Any], turn: Turn, input_tokens: int) -> AsyncIterator[bytes]:
    """The Responses API event stream: created, each output item with its deltas, completed."""
    sequence = 0

    def event(kind: str, **payload: Any) -> bytes:
        nonlocal sequence
        sequence += 1
        data = {"type": kind, "sequence_number": sequence, **payload}
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()

    items = _output_items(turn)
    final = response_object(body, turn, input_tokens, items)
    yield event("response.created", response={**final, "status": "in_progress", "output": [], "usage": None})
    for index, item in enumerate(items):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            text = item["content"][0]["text"]
            yield event(
                "response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []}
            )
            yield event(
                "response.content_part.added", **where, content_index=0, part={"type": "output_text", "text": ""}
            )
            for start in range(0, len(text), 12):
                yield event("response.output_text.delta", **where, content_index=0, delta=text[start : start + 12])
            yield event("response.output_text.done", **where, content_index=0, text=text)
            yield event("response.content_part.done", **where, content_index=0, part=item["content"][0])
        else:
            arguments = item["arguments"]
            yield event(
                "response.output_item.added",
                output_index=index,
                item={**item, "arguments": "", "status": "in_progress"},
            )
            for start in range(0, len(arguments), 8):
                yield event("response.function_call_arguments.delta", **where, delta=arguments[start : start + 8])
            yield event("response.function_call_arguments.done", **where, arguments=arguments)
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.incomplete" if final["status"] == "incomplete" else "response.completed", response=final)


async def _read_json(request: Request) -> dict[str, Any] | JSONResponse:
    try:
        body = await request.json()
    except ValueError:
        return openai_error(400, "invalid_request_error", "The body is not valid JSON.")
    if not isinstance(body, dict):
        return openai_error(400, "invalid_request_error", "The body must be a JSON object.")
    return body


async def responses(request: Request) -> Response:
    body = await _read_json(request)
    if isinstance(body, JSONResponse):
        return body
    chat = responses_to_chat(body)
    return _answer(
        chat,
        lambda params, turn, tokens: (
            StreamingResponse(response_events(body, turn, tokens), media_type="text/event-stream")
            if body.get("stream")
            else JSONResponse(response_object(body, turn, tokens, _output_items(turn)))
        ),
    )


async def input_tokens(request: Request) -> Response:
    body = await _read_json(request)
    if isinstance(body, JSONResponse):
        return body
    params = to_anthropic(responses_to_chat(body))
    return JSONResponse({"object": "response.input_tokens", "input_tokens": count_input(params)})


async def models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": []})


def create_openai_app() -> Starlette:
    """The backend app: POST /v1/chat/completions, /v1/responses and /v1/responses/input_tokens."""
    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/responses", responses, methods=["POST"]),
            Route("/v1/responses/input_tokens", input_tokens, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )
