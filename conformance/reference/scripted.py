"""The scripted model: a validated request in, content blocks and a stop reason out, deterministically.

It reads the last user message (its text blocks, and its tool_result blocks) and follows the
prompt patterns documented in docs/reference-server.md: "Reply with exactly: X", "Count from 1
to N", tool calls when asked for or forced, a report of tool results, JSON for structured output,
and fault directives ("Simulate error: …") for error-path tests. The answer is then fitted to the
request: stop sequences cut it, and max_tokens bounds it with the same tokenizer usage reports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from conformance.reference import ids, signing
from conformance.reference.conversation import blocks
from conformance.reference.errors import TYPE_TO_STATUS
from conformance.reference.schema_values import example_value
from conformance.reference.tokens import count_output_block, count_text, truncate_text

DEFAULT_REPLY = "Hello! I am the conformance reference model."
MAX_COUNT = 10_000
MAX_PINGS = 1_000
ADAPTIVE_THINKING_MIN_MAX_TOKENS = 1024

_EXACT = re.compile(r"reply with exactly:[ \t]*(.*)", re.IGNORECASE)
_COUNT = re.compile(r"count from 1 to (\d+)", re.IGNORECASE)
_SIMULATE_ERROR = re.compile(r"simulate error:\s*([a-z_]+)", re.IGNORECASE)
_SIMULATE_STREAM_ERROR = re.compile(r"simulate stream error:\s*([a-z_]+)", re.IGNORECASE)
_SIMULATE_PINGS = re.compile(r"simulate pings:\s*(\d+)", re.IGNORECASE)
_REDACTED = re.compile(r"redacted thinking", re.IGNORECASE)


@dataclass(frozen=True)
class Prompt:
    """What the model reads: the last user message, and a trailing assistant prefill if any."""

    text: str = ""
    tool_results: list[dict[str, Any]] = field(default_factory=list)
    prefill: str = ""


@dataclass(frozen=True)
class Directives:
    """Fault injection asked for by the prompt (error types are Anthropic error type names)."""

    error: str | None = None
    stream_error: str | None = None
    pings: int = 0


@dataclass
class Turn:
    """The generated answer, already fitted to max_tokens and stop_sequences."""

    content: list[dict[str, Any]]
    stop_reason: str
    stop_sequence: str | None
    output_tokens: int


def read_prompt(messages: list[dict[str, Any]]) -> Prompt:
    users = [message for message in messages if message["role"] == "user"]
    last = blocks(users[-1]) if users else []
    text = "\n".join(block["text"] for block in last if block["type"] == "text")
    results = [block for block in last if block["type"] == "tool_result"]
    final = messages[-1]
    prefill = ""
    if final["role"] == "assistant":
        prefill = "".join(block["text"] for block in blocks(final) if block["type"] == "text")
    return Prompt(text=text, tool_results=results, prefill=prefill)


def read_directives(prompt: Prompt) -> Directives:
    error = _SIMULATE_ERROR.search(prompt.text)
    stream_error = _SIMULATE_STREAM_ERROR.search(prompt.text)
    pings = _SIMULATE_PINGS.search(prompt.text)
    return Directives(
        error=_error_type(error),
        stream_error=_error_type(stream_error),
        pings=min(int(pings.group(1)), MAX_PINGS) if pings else 0,
    )


def _error_type(match: re.Match[str] | None) -> str | None:
    if match is None:
        return None
    name = match.group(1).lower()
    return name if name in TYPE_TO_STATUS else None


def respond(params: dict[str, Any], prompt: Prompt) -> Turn:
    """Generate the answer to a validated Messages request."""
    calls = _tool_calls(params, prompt)
    if calls:
        phrase = _tool_phrase([tool["name"] for tool in calls])
        plan = f"call {phrase}"
        forced = (params.get("tool_choice") or {}).get("type") in ("any", "tool")
        text = "" if forced else f"I'll use {phrase}."
    else:
        text, plan = _answer(params, prompt)
        text = text.removeprefix(prompt.prefill)
    planned: list[tuple[dict[str, Any], int]] = []
    thinking = _thinking_block(params, prompt, plan)
    if thinking is not None:
        planned.append(thinking)
    if text:
        planned.append((_text_block(text), count_text(text)))
    for tool in calls:
        call = {"type": "tool_use", "id": ids.tool_use_id(), "name": tool["name"], "input": _tool_input(tool)}
        planned.append(({**call, "caller": {"type": "direct"}}, count_output_block(call)))
    return _fit(planned, params["max_tokens"], params.get("stop_sequences") or [])


def _answer(params: dict[str, Any], prompt: Prompt) -> tuple[str, str]:
    """The text answer and a short description of it (used in the thinking text)."""
    output_format = (params.get("output_config") or {}).get("format")
    if output_format:
        value = example_value(output_format["schema"])
        return json.dumps(value, ensure_ascii=False), "answer with JSON that matches the requested schema"
    exact = _EXACT.search(prompt.text)
    if exact and exact.group(1).strip():
        return exact.group(1).strip(), "reply with exactly the text I was given"
    count = _COUNT.search(prompt.text)
    if count:
        limit = min(int(count.group(1)), MAX_COUNT)
        return " ".join(str(number) for number in range(1, limit + 1)), f"count from 1 to {limit}"
    if prompt.tool_results:
        return "\n".join(_report(result) for result in prompt.tool_results), "report what the tool returned"
    return DEFAULT_REPLY, "greet the user"


def _report(result: dict[str, Any]) -> str:
    content = result.get("content")
    if isinstance(content, list):
        content = " ".join(block["text"] if block["type"] == "text" else f"[{block['type']}]" for block in content)
    content = (content or "").strip()
    if result.get("is_error"):
        return f"The tool reported an error: {content}" if content else "The tool reported an error."
    return f"The tool returned: {content}" if content else "The tool returned no content."


def _tool_calls(params: dict[str, Any], prompt: Prompt) -> list[dict[str, Any]]:
    """The custom tools to call, in order; server tools are never called."""
    choice = params.get("tool_choice") or {"type": "auto"}
    tools = [tool for tool in params.get("tools") or [] if tool.get("type") in (None, "custom")]
    if choice["type"] == "none" or not tools:
        return []
    if choice["type"] == "tool":
        return [tool for tool in tools if tool["name"] == choice["name"]]
    mentioned = sorted(
        (position, index, tool)
        for index, tool in enumerate(tools)
        if (position := _mention(prompt.text, tool["name"])) is not None
    )
    calls = [tool for _, _, tool in mentioned]
    if choice["type"] == "any" and not calls:
        calls = tools[:1]
    return calls[:1] if choice.get("disable_parallel_tool_use") else calls


def _mention(text: str, name: str) -> int | None:
    """Where the prompt asks for a tool: "use/call (the) NAME" or "NAME tool"; None if it does not."""
    quoted = rf"[`'\"]?{re.escape(name)}[`'\"]?"
    patterns = (
        rf"\b(?:use|call|invoke|using|calling)\s+(?:the\s+)?{quoted}(?![\w-])",
        rf"(?<![\w-]){quoted}\s+(?:tool|function)s?\b",
    )
    positions = [match.start() for pattern in patterns if (match := re.search(pattern, text, re.IGNORECASE))]
    return min(positions) if positions else None


def _tool_phrase(names: list[str]) -> str:
    """Name the tools as a sentence would: `the a tool`, `the a and b tools`, `the a, b and c tools`."""
    if len(names) == 1:
        return f"the {names[0]} tool"
    return f"the {', '.join(names[:-1])} and {names[-1]} tools"


def _tool_input(tool: dict[str, Any]) -> dict[str, Any]:
    value = example_value(tool["input_schema"])
    return value if isinstance(value, dict) else {}


def _thinking_block(params: dict[str, Any], prompt: Prompt, plan: str) -> tuple[dict[str, Any], int] | None:
    """The thinking block that opens the answer (with its token cost), or None without thinking."""
    config = params.get("thinking") or {}
    if config.get("type") not in ("enabled", "adaptive"):
        return None
    if config["type"] == "adaptive" and params["max_tokens"] < ADAPTIVE_THINKING_MIN_MAX_TOKENS:
        return None
    reasoning = f"The request asks me to {plan}. Nothing else is needed, so I will {plan} now."
    if _REDACTED.search(prompt.text):
        block = {"type": "redacted_thinking", "data": signing.redacted_data(reasoning)}
        return block, count_output_block(block)
    shown = "" if config.get("display") == "omitted" else reasoning
    return {"type": "thinking", "thinking": shown, "signature": signing.sign_thinking(shown)}, count_text(reasoning)


def _fit(planned: list[tuple[dict[str, Any], int]], max_tokens: int, stop_sequences: list[str]) -> Turn:
    """Emit the planned blocks in order until max_tokens runs out or a stop sequence matches.

    A tool call is never cut: once there is any budget left when it starts, it is emitted whole
    and its cost counted up to max_tokens at most.
    """
    content: list[dict[str, Any]] = []
    used = 0
    for block, cost in planned:
        remaining = max_tokens - used
        if block["type"] == "text":
            text, matched = _cut_at_stop_sequence(block["text"], stop_sequences)
            if count_text(text) > remaining:
                _append_text(content, truncate_text(text, remaining))
                return Turn(content, "max_tokens", None, max_tokens)
            used += count_text(text)
            _append_text(content, text)
            if matched is not None:
                return Turn(content, "stop_sequence", matched, max(1, min(max_tokens, used + count_text(matched))))
        elif block["type"] == "tool_use":
            if remaining <= 0:
                return Turn(content, "max_tokens", None, max_tokens)
            content.append(block)
            used = min(max_tokens, used + cost)
        else:
            if cost > remaining:
                if block["type"] == "thinking" and remaining > 0:
                    shown = truncate_text(block["thinking"], remaining)
                    content.append({"type": "thinking", "thinking": shown, "signature": signing.sign_thinking(shown)})
                return Turn(content, "max_tokens", None, max_tokens)
            content.append(block)
            used += cost
    stop_reason = "tool_use" if any(block["type"] == "tool_use" for block in content) else "end_turn"
    return Turn(content, stop_reason, None, max(1, used))


def _text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text, "citations": None}


def _append_text(content: list[dict[str, Any]], text: str) -> None:
    if text:
        content.append(_text_block(text))


def _cut_at_stop_sequence(text: str, stop_sequences: list[str]) -> tuple[str, str | None]:
    """The text before the earliest stop sequence in it, and that sequence (None if none occurs)."""
    best: tuple[int, str] | None = None
    for sequence in stop_sequences:
        position = text.find(sequence) if sequence else -1
        if position >= 0 and (best is None or position < best[0]):
            best = (position, sequence)
    return (text, None) if best is None else (text[: best[0]], best[1])
