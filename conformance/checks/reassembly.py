"""Reassembly: the events of a complete stream, folded the way the SDKs fold them, make a valid Message.

This judges what only the whole stream shows: the rebuilt message against the Message schema,
a final stop_reason, and tool input whose input_json_delta fragments concatenate to a JSON
object. Streams that are cut off, end with an error event, lack message_start or carry an event
that is invalid on its own are left to the stream and schema checks, so one defect is reported once.
"""

from __future__ import annotations

from typing import Any

from conformance.bounded_json import parse_json_payload
from conformance.checks.common import (
    FinalMessage,
    check,
    complete_message,
    is_done_sentinel,
    request_tools,
    short,
    stream_events,
    stream_problems,
)
from conformance.checks.validation import problems
from conformance.model import Exchange, Finding

NAME = "reassembly"


@check(NAME)
def reassembly(exchange: Exchange) -> list[Finding]:
    """The rebuilt message validates, has a stop_reason, and its tool inputs are whole JSON objects."""
    events = stream_events(exchange) or []
    if not any(isinstance(event.json, dict) for event in events) or any(stream_problems(events)):
        return []
    if any(not isinstance(event.json, dict) and not is_done_sentinel(event) for event in events):
        return []
    final = complete_message(exchange)
    if final is None:
        return []
    findings, reported = _tool_input_findings(exchange, final)
    for problem in problems("Message", final.message):
        if not any(problem.path.startswith(path) for path in reported):
            findings.append(_finding(f"the reassembled {problem.at('message')}", "stream.reassembly"))
    if final.message.get("stop_reason") is None and final.usage_trail:
        findings.append(
            _finding("the reassembled message has stop_reason null: no message_delta set one", "stream.reassembly")
        )
    return findings


def _finding(message: str, spec_ref: str) -> Finding:
    return Finding(check=NAME, message=message, spec_ref=spec_ref)


def _tool_input_findings(exchange: Exchange, final: FinalMessage) -> tuple[list[Finding], set[str]]:
    """Findings about streamed tool input, and the message paths they cover (so they are not repeated)."""
    findings: list[Finding] = []
    reported: set[str] = set()
    for position, block in enumerate(final.content):
        if block.get("type") not in ("tool_use", "server_tool_use"):
            continue
        truncated = final.message.get("stop_reason") == "max_tokens" and position == len(final.content) - 1
        problem = _input_problem(exchange, block, final.streamed_input(position) or "", truncated)
        if problem is not None:
            where = f"content block {position} ({block['type']} {block.get('name')!r})"
            findings.append(_finding(f"{where}: {problem}", "stream.tool-input"))
            reported.add(f"content[{position}].input")
    return findings, reported


def _input_problem(exchange: Exchange, block: dict[str, Any], text: str, truncated: bool = False) -> str | None:
    """What is wrong with a tool block's streamed input. `truncated`: max_tokens cut this last block,
    so its input may end anywhere — but it must still have begun as a JSON object."""
    if text:
        value, problem = parse_json_payload(text)
        if problem is not None:
            if truncated and text.lstrip().startswith("{"):
                return None
            return f"the concatenated partial_json is not valid JSON ({problem}): {short(text, 200)}"
        if not isinstance(value, dict):
            return f"the concatenated partial_json is a JSON {type(value).__name__}, not an object: {short(text, 200)}"
        return None
    name = block.get("name")
    if block.get("type") != "tool_use" or block.get("input") != {} or not isinstance(name, str):
        return None
    schema = request_tools(exchange).get(name, {}).get("input_schema")
    required = schema.get("required") if isinstance(schema, dict) else None
    if not required:
        return None
    return (
        f"no input_json_delta arrived and the input stayed {{}}, but the tool requires {required}: "
        "the tool arguments were dropped"
    )
