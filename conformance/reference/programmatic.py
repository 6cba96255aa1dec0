"""Programmatic tool calling: a program run by code execution calls the client's tools.

When the request offers a code execution tool (`code_execution_YYYYMMDD`) and the scripted model
would call a custom tool whose `allowed_callers` names that code execution tool, the model writes
a program instead. The answer holds the code execution call (`server_tool_use` named
code_execution) and the program's first call of the tool, a `tool_use` whose `caller` names the
code execution call. Each tool_result the client sends back resumes the program, as the API does:

- while the program has calls left (PROGRAM_CALLS in all), the answer is its next call alone, with
  stop_reason tool_use and zero usage (the model generated nothing); streamed, that message is
  complete in message_start, followed directly by message_stop;
- then the program ends: a code_execution_tool_result with what it printed, and the model's text.

Streamed, a tool call made by the program arrives whole in content_block_start (no
input_json_delta). Every answer names the container the program runs in.

The model never calls itself a tool whose `allowed_callers` leaves out `direct`: without a code
execution tool that may call it, the answer drops that call (and, when no call is left, says why).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from conformance.reference import ids
from conformance.reference.conversation import blocks
from conformance.reference.responses import build_message
from conformance.reference.scripted import Prompt, Turn
from conformance.reference.tokens import count_input, count_output_block, count_text

PROGRAM_CALLS = 2
CODE_EXECUTION_TYPE = re.compile(r"^code_execution_\d{8}$")
CONTAINER_LIFETIME = timedelta(hours=1)


@dataclass
class _Program:
    """A program the conversation is running: its code execution call and the tool calls it made."""

    id: str
    executor: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    results: list[str] = field(default_factory=list)


def called_from_code(block: dict[str, Any]) -> bool:
    """True for a tool call a program made (its caller is a code execution tool)."""
    caller = block.get("caller")
    return block.get("type") == "tool_use" and isinstance(caller, dict) and caller.get("type") not in (None, "direct")


def arrives_whole(message: dict[str, Any]) -> bool:
    """A message of calls made by code only: streamed, it is complete in message_start."""
    return bool(message["content"]) and all(called_from_code(block) for block in message["content"])


def answer(params: dict[str, Any], prompt: Prompt, turn: Turn) -> dict[str, Any] | None:
    """The Message when the request runs (or resumes) a program, or when the scripted answer calls a tool
    that only code may call; else None (the scripted answer `turn` stands)."""
    callers = {
        tool["name"]: tool.get("allowed_callers", ["direct"])
        for tool in params.get("tools") or []
        if tool.get("type") in (None, "custom")
    }
    executor = _executor(params)
    if executor is not None:
        program = _running_program(params["messages"], prompt)
        if program is not None:
            return _resume(params, program)
        for block in turn.content:
            if block["type"] == "tool_use" and executor in callers.get(block["name"], []):
                return _start(params, executor, block, turn)
    forbidden = {
        block["name"]
        for block in turn.content
        if block["type"] == "tool_use" and "direct" not in callers.get(block["name"], ["direct"])
    }
    return _without_calls(params, turn, forbidden) if forbidden else None


def _without_calls(params: dict[str, Any], turn: Turn, names: set[str]) -> dict[str, Any]:
    """The scripted answer without its calls of tools the model may not call itself (their allowed_callers
    leave out `direct`); when no call is left, the model says why instead of its preamble."""
    content = [block for block in turn.content if not (block["type"] == "tool_use" and block["name"] in names)]
    if not any(block["type"] == "tool_use" for block in content):
        listed = " and ".join(sorted(names))
        reason = f"I can't call {listed} myself: only code execution may call it."
        content = [block for block in content if block["type"] != "text"]
        content.append({"type": "text", "text": reason, "citations": None})
    cost = min(params["max_tokens"], sum(count_output_block(block) for block in content))
    stop = "tool_use" if any(block["type"] == "tool_use" for block in content) else "end_turn"
    return build_message(params, Turn(content, stop, None, max(1, cost)), count_input(params))


def _executor(params: dict[str, Any]) -> str | None:
    """The type of the code execution tool the request offers, if it offers one."""
    for tool in params.get("tools") or []:
        if CODE_EXECUTION_TYPE.match(str(tool.get("type") or "")):
            return tool["type"]
    return None


def _start(params: dict[str, Any], executor: str, call: dict[str, Any], turn: Turn) -> dict[str, Any]:
    """The program's first answer: the model's thinking (if any), a preamble, the code, its first call."""
    program_id = ids.new_id("srvtoolu_")
    arguments = json.dumps(call["input"], ensure_ascii=False)
    code = f"for _ in range({PROGRAM_CALLS}):\n    print(await {call['name']}({arguments}))\n"
    generated = [
        *(block for block in turn.content if block["type"] in ("thinking", "redacted_thinking")),
        {"type": "text", "text": f"I'll run a program that calls the {call['name']} tool.", "citations": None},
        {
            "type": "server_tool_use",
            "id": program_id,
            "name": "code_execution",
            "input": {"code": code},
            "caller": {"type": "direct"},
        },
    ]
    cost = sum(count_output_block(block) for block in generated)
    first_call = _call(call["name"], call["input"], executor, program_id)
    message = build_message(params, Turn([*generated, first_call], "tool_use", None, cost), count_input(params))
    message["container"] = _container(None)
    return message


def _resume(params: dict[str, Any], program: _Program) -> dict[str, Any]:
    """The program's next call (zero usage), or, when it has made every call, its output and the model's text."""
    if len(program.calls) < PROGRAM_CALLS:
        last = program.calls[-1]
        call = _call(last["name"], last["input"], program.executor, program.id)
        message = build_message(params, Turn([call], "tool_use", None, 0), 0)
    else:
        printed = "".join(f"{result}\n" for result in program.results)
        output = {"type": "code_execution_result", "stdout": printed, "stderr": "", "return_code": 0, "content": []}
        text = "The program printed: " + " ".join(program.results)
        content = [
            {"type": "code_execution_tool_result", "tool_use_id": program.id, "content": output},
            {"type": "text", "text": text, "citations": None},
        ]
        message = build_message(params, Turn(content, "end_turn", None, count_text(text)), count_input(params))
    message["container"] = _container(params.get("container"))
    return message


def _call(name: str, arguments: dict[str, Any], executor: str, program_id: str) -> dict[str, Any]:
    caller = {"type": executor, "tool_id": program_id}
    return {"type": "tool_use", "id": ids.tool_use_id(), "name": name, "input": arguments, "caller": caller}


def _container(container_id: str | None) -> dict[str, Any]:
    expires = datetime.now(timezone.utc) + CONTAINER_LIFETIME
    return {"id": container_id or ids.new_id("container_"), "expires_at": expires.isoformat().replace("+00:00", "Z")}


def _running_program(messages: list[dict[str, Any]], prompt: Prompt) -> _Program | None:
    """The program whose call the last user turn answers, with every call and result it has had so far."""
    answered = {result["tool_use_id"] for result in prompt.tool_results}
    programs: dict[str, _Program] = {}
    resumed: _Program | None = None
    results: dict[str, str] = {}
    for message in messages:
        for block in blocks(message):
            if block["type"] == "tool_result":
                results[block["tool_use_id"]] = _result_text(block)
            elif called_from_code(block) and isinstance(block["caller"].get("tool_id"), str):
                caller = block["caller"]
                program = programs.setdefault(caller["tool_id"], _Program(caller["tool_id"], caller["type"]))
                program.calls.append(block)
                if block["id"] in answered:
                    resumed = program
    if resumed is not None:
        resumed.results = [results[call["id"]] for call in resumed.calls if call["id"] in results]
    return resumed


def _result_text(result: dict[str, Any]) -> str:
    content = result.get("content")
    if isinstance(content, list):
        content = " ".join(block.get("text", f"[{block['type']}]") for block in content)
    return (content or "").strip()
