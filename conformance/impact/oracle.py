"""The impact oracle (pure): what the contract's answer to a recorded call would give a client, and
how what a client really made of the recorded answer compares with it.

A client `breaks` when it raises where the contract answers a message, hangs past its bound, or
returns nothing usable (no text, no tool call, where the wire carried some); it `degrades` when it
succeeds but its final message differs from the contract's answer (text or tool input lost, a
wrong or missing stop_reason, zero usage) or when the error it raises is not the contract's (another
status, a message where an error was due); otherwise the recorded difference leaves it `unaffected`.

The contract's answer is read from the recording and the case: the text and tool calls the wire
carried (gathered leniently, whatever the framing), the stop_reason the case expects (or else the
one the wire sent), usage above zero, and the status the case expects.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from conformance.checks.expect import status_problem
from conformance.impact.names import BREAKS, DEGRADES, EFFECTS, UNAFFECTED
from conformance.model import Response
from conformance.report.evidence import one_line

STOP_REASONS = frozenset(
    {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal", "model_context_window_exceeded"}
)
# How the clients word an error type in what they raise, besides naming the type itself.
ERROR_WORDS = {
    "overloaded_error": ("overloaded",),
    "api_error": ("internal server error", "internalservererror"),
    "rate_limit_error": ("rate limit", "ratelimiterror"),
}
_API_ERROR_STATUS = re.compile(r"\bAPI Error: (\d{3})\b")


@dataclass(frozen=True)
class Expected:
    """The contract's answer to one call: an error of a `status` (an int, "4xx" or a list of them,
    as cases write it), or a message (or a token count), possibly ending in a `stream_error`."""

    status: Any
    text: str = ""
    tools: tuple[tuple[str, str], ...] = ()  # (name, input as canonical JSON) per tool call
    required_inputs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tool name -> required keys
    stop_reason: str | None = None
    count_tokens: bool = False
    stream_error: str | None = None
    # The stop_reason the recorded answer itself carried.
    wire_stop_reason: str | None = None

    @property
    def is_error(self) -> bool:
        options = self.status if isinstance(self.status, list) else [self.status]
        return all(_floor(option) >= 400 for option in options)

    def wants(self, status: int) -> bool:
        return status_problem(self.status, status, None) is None

    @property
    def status_text(self) -> str:
        return " or ".join(str(option) for option in (self.status if isinstance(self.status, list) else [self.status]))


def _floor(option: Any) -> int:
    """The lowest status an expected status (200, "4xx") allows."""
    if isinstance(option, int):
        return option
    text = str(option)
    return int(text[0]) * 100 if text[:1].isdigit() else 0


@dataclass(frozen=True)
class Observed:
    """What a client made of the replayed answer: a `message` summary, or an `error` (with the HTTP
    status the client saw, when it says), or nothing within its bound (`timed_out`)."""

    message: dict[str, Any] | None = None
    error: str | None = None
    status: int | None = None
    timed_out: bool = False


@dataclass(frozen=True)
class Effect:
    effect: str
    detail: str = ""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _parsed_input(pieces: list[str], start_input: Any) -> Any:
    joined = "".join(pieces)
    if not joined:
        return start_input if isinstance(start_input, dict) else {}
    try:
        return json.loads(joined)
    except ValueError:
        return {"(unparsable input)": joined}


def wire_content(response: Response) -> tuple[str, list[tuple[str, Any]], str | None]:
    """The text, tool calls and last stop_reason a response carried, gathered leniently: every text
    delta and every input_json_delta counts, whether or not its block was opened or closed."""
    if response.events is None:
        body = response.json if isinstance(response.json, dict) else {}
        blocks = [block for block in body.get("content") or [] if isinstance(block, dict)]
        text = "".join(str(block.get("text", "")) for block in blocks if block.get("type") == "text")
        tools = [(str(b.get("name", "")), b.get("input", {})) for b in blocks if b.get("type") == "tool_use"]
        return text, tools, body.get("stop_reason")
    texts: list[str] = []
    tool_names: dict[int, str] = {}
    tool_starts: dict[int, Any] = {}
    json_pieces: dict[int, list[str]] = {}
    stop_reason = None
    for event in response.events:
        data = event.json if isinstance(event.json, dict) else {}
        kind, index = data.get("type"), data.get("index")
        if kind == "content_block_start" and isinstance(data.get("content_block"), dict):
            block = data["content_block"]
            if block.get("type") == "text":
                texts.append(str(block.get("text") or ""))
            elif block.get("type") == "tool_use" and isinstance(index, int):
                tool_names[index] = str(block.get("name", ""))
                tool_starts[index] = block.get("input")
        elif kind == "content_block_delta" and isinstance(data.get("delta"), dict):
            delta = data["delta"]
            if delta.get("type") == "text_delta":
                texts.append(str(delta.get("text") or ""))
            elif delta.get("type") == "input_json_delta" and isinstance(index, int):
                json_pieces.setdefault(index, []).append(str(delta.get("partial_json") or ""))
        elif kind == "message_delta" and isinstance(data.get("delta"), dict):
            stop_reason = data["delta"].get("stop_reason") or stop_reason
    tools = [
        (name, _parsed_input(json_pieces.get(i, []), tool_starts.get(i))) for i, name in sorted(tool_names.items())
    ]
    return "".join(texts), tools, stop_reason


def required_inputs(request_body: Any) -> dict[str, tuple[str, ...]]:
    """The required input keys of each tool the request offered."""
    required: dict[str, tuple[str, ...]] = {}
    tools = request_body.get("tools") if isinstance(request_body, dict) else None
    for tool in tools if isinstance(tools, list) else []:
        schema = tool.get("input_schema") if isinstance(tool, dict) else None
        keys = schema.get("required") if isinstance(schema, dict) else None
        if isinstance(keys, list):
            required[str(tool.get("name", ""))] = tuple(str(key) for key in keys)
    return required


def expected_answer(
    response: Response, request_body: Any, count_tokens: bool, expect: dict[str, Any] | None = None
) -> Expected:
    """The contract's answer to a call whose recorded response is `response`; `expect` is the case
    step's expectations (status, stop_reason, stream_error) when the case is known, None when not (the
    recorded status is then taken as the contract's)."""
    status = response.status if expect is None else expect.get("status", 200)
    expect = expect or {}
    plain = Expected(status=status, count_tokens=count_tokens)
    if plain.is_error or count_tokens:
        return plain
    text, tools, stop_reason = wire_content(response)
    wanted_stop = expect.get("stop_reason")
    stream_error = expect.get("stream_error")
    return Expected(
        status=status,
        stream_error=stream_error if isinstance(stream_error, str) else None,
        wire_stop_reason=stop_reason,
        text=text,
        tools=tuple((name, _canonical(value)) for name, value in tools),
        required_inputs=required_inputs(request_body),
        stop_reason=wanted_stop if isinstance(wanted_stop, str) else stop_reason,
    )


def judge(expected: Expected, observed: Observed, sees_tool_input: bool = True) -> Effect:
    """The effect on a client of what it made of one replayed answer. `sees_tool_input`: the client
    reports the tool calls it got (Claude Code runs them instead)."""
    if observed.timed_out:
        return Effect(BREAKS, "no answer within the client's bound (hangs)")
    if expected.is_error:
        return _judge_error(expected, observed)
    if expected.stream_error is not None:
        if observed.error is None:
            return Effect(DEGRADES, f"returned a message where the contract raises {expected.stream_error} mid-stream")
        if _names_error(observed.error, expected.stream_error):
            return Effect(UNAFFECTED, one_line(observed.error))
        return Effect(DEGRADES, one_line(f"raised another error than {expected.stream_error}: {observed.error}"))
    if observed.error is not None:
        if expected.stop_reason == expected.wire_stop_reason == "max_tokens":
            # Claude Code refuses an answer cut at max_tokens: the contract's answer, cut there too, alike.
            return Effect(UNAFFECTED, one_line(f"as with the contract's answer (max_tokens): {observed.error}"))
        return Effect(BREAKS, one_line(observed.error))
    message = observed.message or {}
    if expected.count_tokens:
        counted = message.get("input_tokens")
        if isinstance(counted, int) and counted > 0:
            return Effect(UNAFFECTED)
        return Effect(BREAKS, f"count_tokens gave {counted!r} input tokens")
    return _judge_message(expected, message, sees_tool_input)


def _names_error(message: str, error_type: str) -> bool:
    """The client's error says which error it was: its type, or the words and class the SDKs and
    Claude Code give it (overloaded_error: "Overloaded", OverloadedError; api_error: "Internal server
    error", InternalServerError)."""
    said = message.lower()
    return any(word in said for word in (error_type, *ERROR_WORDS.get(error_type, ())))


def _judge_error(expected: Expected, observed: Observed) -> Effect:
    if observed.error is None:
        return Effect(DEGRADES, f"returned a message where the contract answers a {expected.status_text} error")
    status = observed.status
    if status is None:
        found = _API_ERROR_STATUS.search(observed.error)
        status = int(found.group(1)) if found else None
    if status is None:  # an error all the same, in the client's own words (Claude Code rewrites some)
        return Effect(UNAFFECTED, one_line(observed.error))
    if not expected.wants(status):
        return Effect(
            DEGRADES, one_line(f"a {status} error where the contract answers {expected.status_text}: {observed.error}")
        )
    return Effect(UNAFFECTED, one_line(observed.error))


def _judge_message(expected: Expected, message: dict[str, Any], sees_tool_input: bool) -> Effect:
    text = str(message.get("text") or "")
    tools = message.get("tools") or []
    if expected.text and not text and not tools and not (expected.tools and not sees_tool_input):
        return Effect(BREAKS, f"returned no text where the wire carried {one_line(repr(expected.text), 80)}")
    problems: list[str] = []
    # A client that runs the tools itself (Claude Code) shows the text of its last turn only.
    if text != expected.text and (sees_tool_input or not expected.tools):
        problems.append(f"text {one_line(repr(text), 80)} where the wire carried {one_line(repr(expected.text), 80)}")
    if sees_tool_input:
        problems += _tool_problems(expected, tools)
    stop_reason = message.get("stop_reason")
    if stop_reason != expected.stop_reason or stop_reason not in STOP_REASONS:
        problems.append(f"stop_reason {stop_reason!r} where the contract answers {expected.stop_reason!r}")
    usage = message.get("usage") or {}
    if (expected.text or expected.tools) and not (usage.get("output_tokens") or 0) > 0:
        problems.append(f"usage output_tokens {usage.get('output_tokens')!r} for a non-empty answer")
    if not (usage.get("input_tokens") or 0) > 0 and "input_tokens" in usage:
        problems.append(f"usage input_tokens {usage.get('input_tokens')!r}")
    return Effect(DEGRADES, one_line("; ".join(problems))) if problems else Effect(UNAFFECTED)


def _tool_problems(expected: Expected, tools: list[Any]) -> list[str]:
    got = [(str(tool.get("name", "")), tool.get("input")) for tool in tools if isinstance(tool, dict)]
    problems = []
    if [(name, _canonical(value)) for name, value in got] != list(expected.tools):
        problems.append(f"tool calls {one_line(_canonical(got), 80)} where the wire carried {len(expected.tools)}")
    for name, value in got:
        missing = [
            key for key in expected.required_inputs.get(name, ()) if not isinstance(value, dict) or key not in value
        ]
        if missing:
            problems.append(f"tool input of {name} lacks {', '.join(missing)}")
    return problems


def worst(effects: list[Effect]) -> Effect:
    """The case's effect on a client: the worst of its calls' (unaffected when it has none)."""
    return min(effects, key=lambda each: EFFECTS.index(each.effect), default=Effect(UNAFFECTED))
