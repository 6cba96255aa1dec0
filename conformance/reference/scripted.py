"""The scripted model: a validated request in, content blocks and a stop reason out, deterministically.

It reads the last user message (its text blocks, and its tool_result blocks) and follows the
prompt patterns documented in docs/reference/reference-server.md: "Reply with exactly: X", "Count from 1
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
from conformance.reference.citations import cited_block
from conformance.reference.conversation import blocks
from conformance.reference.errors import TYPE_TO_STATUS
from conformance.reference.schema_values import example_value
from conformance.reference.tokens import count_output_block, count_text, truncate_text

DEFAULT_REPLY = "Hello! I am the conformance reference model."
MAX_COUNT = 10_000
MAX_PINGS = 1_000
MAX_DELAY_SECONDS = 30.0
ADAPTIVE_THINKING_MIN_MAX_TOKENS = 1024
# Test prompts documented by Anthropic: the API answers the first with stop_reason "refusal" and the
# second (with thinking on) with a redacted_thinking block.
REFUSAL_TRIGGER = (
    "ANTHROPIC_MAGIC_STRING_TRIGGER_REFUSAL_1FAEFB6177B4672DEE07F9D3AFC62588CCD2631EDCF22E8CCC1FB35B501C9C86"
)
REDACTED_THINKING_TRIGGER = (
    "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E193C177646C7398A98432ECCCE4C1253D5E2D82641AC0E52CC2876CB"
)
# Stop reasons "Simulate stop: REASON" can force: those a model cannot be asked for in plain words.
SIMULATED_STOPS = ("pause_turn", "refusal", "model_context_window_exceeded")
REFUSAL_DETAILS: dict[str, Any] = {"type": "refusal", "category": None, "explanation": None}

_EXACT = re.compile(r"reply with exactly:[ \t]*(.*)", re.IGNORECASE)
_COUNT = re.compile(r"count from 1 to (\d+)", re.IGNORECASE)
_SIMULATE_ERROR = re.compile(r"simulate error:\s*([a-z_]+)", re.IGNORECASE)
_SIMULATE_STREAM_ERROR = re.compile(r"simulate stream error:\s*([a-z_]+)", re.IGNORECASE)
_SIMULATE_PINGS = re.compile(r"simulate pings:\s*(\d+)", re.IGNORECASE)
_SIMULATE_STOP = re.compile(r"simulate stop:\s*([a-z_]+)", re.IGNORECASE)
_SIMULATE_DELAY = re.compile(r"simulate delay:\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_SIMULATE_UNKNOWN_EVENT = re.compile(r"simulate unknown event", re.IGNORECASE)
_REDACTED = re.compile(rf"redacted thinking|{REDACTED_THINKING_TRIGGER}", re.IGNORECASE)


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
    # A stop reason to end the answer with (one of SIMULATED_STOPS).
    stop: str | None = None
    # Seconds a stream stays quiet after message_start (pinging meanwhile), as during long thinking.
    delay: float = 0.0
    # A stream carries an event of a type no client knows (forward compatibility).
    unknown_event: bool = False


@dataclass
class Turn:
    """The generated answer, already fitted to max_tokens and stop_sequences."""

    content: list[dict[str, Any]]
    stop_reason: str
    stop_sequence: str | None
    output_tokens: int
    stop_details: dict[str, Any] | None = None


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
    stop = _SIMULATE_STOP.search(prompt.text)
    delay = _SIMULATE_DELAY.search(prompt.text)
    return Directives(
        error=_error_type(error),
        stream_error=_error_type(stream_error),
        pings=min(int(pings.group(1)), MAX_PINGS) if pings else 0,
        stop=stop.group(1).lower() if stop and stop.group(1).lower() in SIMULATED_STOPS else None,
        delay=min(float(delay.group(1)), MAX_DELAY_SECONDS) if delay else 0.0,
        unknown_event=bool(_SIMULATE_UNKNOWN_EVENT.search(prompt.text)),
    )


def _error_type(match: re.Match[str] | None) -> str | None:
    if match is None:
        return None
    name = match.group(1).lower()
    return name if name in TYPE_TO_STATUS else None


def respond(params: dict[str, Any], prompt: Prompt) -> Turn:
    """Generate the answer to a validated Messages request."""
    if REFUSAL_TRIGGER in prompt.text:
        return Turn([], "refusal", None, 1, dict(REFUSAL_DETAILS))
    calls = _tool_calls(params, prompt)
    cited: dict[str, Any] | None = None
    if calls:
        phrase = _tool_phrase([tool["name"] for tool in calls])
        plan = f"call {phrase}"
        forced = (params.get("tool_choice") or {}).get("type") in ("any", "tool")
        text = "" if forced else f"I'll use {phrase}."
    else:
        text, plan, cited = _answer(params, prompt)
        text = text.removeprefix(prompt.prefill)
    planned: list[tuple[dict[str, Any], int]] = []
    thinking = _thinking_block(params, prompt, plan)
    if thinking is not None:
        planned.append(thinking)
    if cited is not None:
        planned.append((cited, count_text(cited["text"])))
    elif text:
        planned.append((_text_block(text), count_text(text)))
    for tool in calls:
        call = {"type": "tool_use", "id": ids.tool_use_id(), "name": tool["name"], "input": _tool_input(tool)}
        planned.append(({**call, "caller": {"type": "direct"}}, count_output_block(call)))
    turn = _fit(planned, params["max_tokens"], params.get("stop_sequences") or [])
    stop = read_directives(prompt).stop
    if stop is not None:
        turn.stop_reason, turn.stop_sequence = stop, None
        turn.stop_details = dict(REFUSAL_DETAILS) if stop == "refusal" else None
    return turn


def _answer(params: dict[str, Any], prompt: Prompt) -> tuple[str, str, dict[str, Any] | None]:
    """The text answer, a short description of it (used in the thinking text), and the cited text
    block that replaces the text when the answer quotes a source."""
    output_format = (params.get("output_config") or {}).get("format")
    if output_format:
        value = example_value(output_format["schema"])
        return json.dumps(value, ensure_ascii=False), "answer with JSON that matches the requested schema", None
    exact = _EXACT.search(prompt.text)
    if exact and exact.group(1).strip():
        return exact.group(1).strip(), "reply with exactly the text I was given", None
    count = _COUNT.search(prompt.text)
    if count:
        limit = min(int(count.group(1)), MAX_COUNT)
        return " ".join(str(number) for number in range(1, limit + 1)), f"count from 1 to {limit}", None
    cited = cited_block(params["messages"])
    if cited is not None:
        return cited["text"], "quote the source that answers the question", cited
    if prompt.tool_results:
        return "\n".join(_report(result) for result in prompt.tool_results), "report what the tool returned", None
    return DEFAULT_REPLY, "greet the user", None


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
                _append_text(content, block, truncate_text(text, remaining))
                return Turn(content, "max_tokens", None, max_tokens)
            used += count_text(text)
            _append_text(content, block, text)
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


def _append_text(content: list[dict[str, Any]], block: dict[str, Any], text: str) -> None:
    """Append `block` (its citations kept) with its text cut to `text`, unless nothing is left."""
    if text:
        content.append({**block, "text": text})


def _cut_at_stop_sequence(text: str, stop_sequences: list[str]) -> tuple[str, str | None]:
    """The text before the earliest stop sequence in it, and that sequence (None if none occurs)."""
    best: tuple[int, str] | None = None
    for sequence in stop_sequences:
        position = text.find(sequence) if sequence else -1
        if position >= 0 and (best is None or position < best[0]):
            best = (position, sequence)
    return (text, None) if best is None else (text[: best[0]], best[1])
