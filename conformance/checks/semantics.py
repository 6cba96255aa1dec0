"""Semantic checks: what the values of a complete Message must mean, given the request that asked for it.

They judge the final message (the JSON body, or the message rebuilt from a complete stream) and
assume its types are right; wrong types are the schema checks' findings, so every rule here
skips values of the wrong type instead of repeating them.
"""

from __future__ import annotations

from typing import Any

from conformance.bounded_json import parse_json_payload
from conformance.checks.common import (
    COUNT_TOKENS,
    FinalMessage,
    check,
    complete_message,
    endpoint,
    json_body,
    program_caller,
    request_body,
    request_tools,
    short,
    succeeded,
)
from conformance.contract import format_path
from conformance.imports import first_import
from conformance.model import Exchange, Finding, Severity

# Stop reasons that say the model finished its turn on its own (so no tool call may be pending).
_FINISHED = ("end_turn", "stop_sequence")
_INPUT_COUNTS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
_CUMULATIVE = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
_MAX_SCHEMA_ERRORS = 5


def _count(value: Any) -> int | None:
    """An integer token count, or None for anything else (bool included)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _finding(check_name: str, message: str, spec_ref: str, severity: Severity = Severity.FAILURE) -> Finding:
    return Finding(check=check_name, message=message, spec_ref=spec_ref, severity=severity)


def _texts(final: FinalMessage) -> str:
    return "".join(
        block["text"] for block in final.content if block.get("type") == "text" and isinstance(block.get("text"), str)
    )


def _code_execution_only(final: FinalMessage) -> bool:
    """True when every block is a tool call made by code execution (programmatic tool calling).

    Such a message continues a running container: the model generated nothing, and the API
    reports zero input and output tokens for it (streamed, the whole message is in message_start).
    """
    return bool(final.content) and all(
        block.get("type") == "tool_use" and program_caller(block) is not None for block in final.content
    )


# --------------------------------------------------------------------------- stop_reason


@check("semantics.stop-reason")
def stop_reason(exchange: Exchange) -> list[Finding]:
    """stop_reason agrees with the content, the stop sequences and max_tokens of the request."""
    final = complete_message(exchange)
    if final is None:
        return []
    name = "semantics.stop-reason"
    reason = final.message.get("stop_reason")
    findings = []
    if reason is None and not final.streamed:
        findings.append(
            _finding(
                name,
                "stop_reason is null in a complete message (null only in message_start)",
                "messages.response.stop_reason",
            )
        )
    tool_names = [block.get("name") for block in final.content if block.get("type") == "tool_use"]
    if reason == "tool_use" and not tool_names:
        kinds = [block.get("type") for block in final.content]
        findings.append(
            _finding(
                name,
                f"stop_reason is 'tool_use' but the content has no tool_use block (block types {kinds})",
                "messages.response.stop_reason",
            )
        )
    if tool_names and reason in _FINISHED:
        findings.append(
            _finding(
                name,
                f"the content has tool_use block(s) {tool_names} but stop_reason is {reason!r}; a turn that "
                "calls a client tool ends with stop_reason 'tool_use'",
                "messages.response.stop_reason",
            )
        )
    findings.extend(_stop_sequence_findings(exchange, final))
    findings.extend(_max_tokens_findings(exchange, final))
    return findings


def _stop_sequence_findings(exchange: Exchange, final: FinalMessage) -> list[Finding]:
    name, clause = "semantics.stop-reason", "messages.request.stop_sequences"
    reason, sequence = final.message.get("stop_reason"), final.message.get("stop_sequence")
    if reason != "stop_sequence":
        if isinstance(sequence, str):
            return [
                _finding(
                    name,
                    f"stop_sequence is {sequence!r} but stop_reason is {reason!r}; stop_sequence is set only "
                    "with stop_reason 'stop_sequence'",
                    clause,
                )
            ]
        return []
    if not isinstance(sequence, str) or not sequence:
        return [
            _finding(
                name,
                f"stop_reason is 'stop_sequence' but stop_sequence is {short(sequence)}; "
                "it must hold the matched sequence",
                clause,
            )
        ]
    findings = []
    requested = request_body(exchange).get("stop_sequences")
    if isinstance(requested, list) and sequence not in requested:
        findings.append(
            _finding(
                name,
                f"stop_sequence {sequence!r} is not one of the request's stop_sequences {short(requested)}",
                clause,
            )
        )
    if sequence in _texts(final):
        findings.append(
            _finding(
                name,
                f"the text contains the stop sequence {sequence!r}; the matched sequence is not part of the output",
                clause,
            )
        )
    return findings


def _max_tokens_findings(exchange: Exchange, final: FinalMessage) -> list[Finding]:
    limit = _count(request_body(exchange).get("max_tokens"))
    produced = _count(final.usage.get("output_tokens"))
    if final.message.get("stop_reason") != "max_tokens" or limit is None or produced is None or produced <= limit:
        return []
    return [
        _finding(
            "semantics.stop-reason",
            f"stop_reason is 'max_tokens' but usage.output_tokens {produced} exceeds the request's max_tokens {limit}",
            "messages.request.max_tokens",
        )
    ]


# --------------------------------------------------------------------------- usage


@check("semantics.usage")
def usage(exchange: Exchange) -> list[Finding]:
    """Usage counts the prompt and the output, and a stream's counts only grow.

    A message of tool calls made by code execution counts nothing: the program ran, the model did not.
    """
    final = complete_message(exchange)
    if final is None or not final.usage:
        return []
    name = "semantics.usage"
    findings = []
    counts_nothing = _code_execution_only(final)
    if final.streamed:
        start_total = _input_total(final.start_usage or {})
        if start_total == 0 and not counts_nothing:
            findings.append(
                _finding(
                    name,
                    f"message_start usage counts no input tokens {short(final.start_usage)}; "
                    "message_start must carry the prompt's input token count",
                    "stream.usage",
                )
            )
        findings.extend(_decreasing_counts(final))
    elif _input_total(final.usage) == 0 and not counts_nothing:
        findings.append(
            _finding(
                name,
                f"usage counts no input tokens (input_tokens, cache reads and cache writes are all 0) for a "
                f"non-empty prompt: {short(final.usage)}",
                "messages.response.usage",
            )
        )
    if final.content and _count(final.usage.get("output_tokens")) == 0 and not counts_nothing:
        findings.append(
            _finding(
                name,
                f"the content has {len(final.content)} block(s) but usage.output_tokens is 0",
                "messages.response.usage",
            )
        )
    return findings


def _input_total(counts: dict[str, Any]) -> int | None:
    """input_tokens plus cache reads and writes (input_tokens excludes them), None when input_tokens is no integer."""
    if _count(counts.get("input_tokens")) is None:
        return None
    return sum(_count(counts.get(key)) or 0 for key in _INPUT_COUNTS)


def _decreasing_counts(final: FinalMessage) -> list[Finding]:
    """Counts that go down between message_start and the message_delta events.

    When server-side iterations ran (compaction, advisor: usage carries `iterations`), the
    top-level counts describe the last iteration, not a running total, so they may go down.
    """
    if any(counts.get("iterations") for _, counts in final.usage_trail):
        return []
    steps = [("message_start", final.start_usage or {})] + [
        (f"message_delta event {i}", u) for i, u in final.usage_trail
    ]
    findings = []
    for key in _CUMULATIVE:
        previous: tuple[str, int] | None = None
        for label, counts in steps:
            value = _count(counts.get(key))
            if value is None:
                continue
            if previous is not None and value < previous[1]:
                findings.append(
                    _finding(
                        "semantics.usage",
                        f"usage.{key} goes down from {previous[1]} ({previous[0]}) to {value} "
                        f"({label}); stream usage counts are cumulative",
                        "stream.usage",
                    )
                )
                break
            previous = (label, value)
    return findings


# --------------------------------------------------------------------------- identity, thinking


@check("semantics.identity")
def identity(exchange: Exchange) -> list[Finding]:
    """The message has a non-empty id and names a model."""
    final = complete_message(exchange)
    if final is None:
        return []
    return [
        _finding("semantics.identity", f"the message {key} is an empty string", "messages.response.message")
        for key in ("id", "model")
        if isinstance(final.message.get(key), str) and not final.message[key].strip()
    ]


@check("semantics.thinking-signature")
def thinking_signature(exchange: Exchange) -> list[Finding]:
    """Every thinking block of a non-stream message carries a non-empty signature.

    In a stream the signature arrives by signature_delta; stream.grammar judges that instead.
    """
    final = complete_message(exchange)
    if final is None or final.streamed:
        return []
    return [
        _finding(
            "semantics.thinking-signature",
            f"thinking block content[{position}] has an empty signature; "
            "clients must send it back and the API rejects unsigned thinking",
            "messages.response.thinking",
        )
        for position, block in enumerate(final.content)
        if block.get("type") == "thinking" and block.get("signature") == ""
    ]


# --------------------------------------------------------------------------- tool use


@check("semantics.tool-use")
def tool_use(exchange: Exchange) -> list[Finding]:
    """Tool calls have unique ids, name declared tools, come from a caller the tool allows, and carry input
    valid for the tool's input_schema."""
    final = complete_message(exchange)
    if final is None:
        return []
    findings = _duplicate_ids(final)
    tools = request_tools(exchange)
    for position, block in enumerate(final.content):
        name = block.get("name")
        if block.get("type") != "tool_use" or not isinstance(name, str):
            continue
        if name not in tools:
            declared = sorted(tools) if tools else "no tools"
            findings.append(
                _finding(
                    "semantics.tool-use",
                    f"tool_use content[{position}] calls {name!r}, but the request declared {declared}",
                    "messages.response.tool_use",
                )
            )
            continue
        findings.extend(_caller_findings(exchange, final, position, block, tools[name]))
        if final.streamed and _judged_by_reassembly(final, position, block):
            continue
        findings.extend(_input_findings(position, block, tools[name]))
    return findings


def _judged_by_reassembly(final: FinalMessage, position: int, block: dict[str, Any]) -> bool:
    """Streamed input that the reassembly check judges instead: fragments that make no JSON object, or
    no input at all (no fragments, and the block started with `input: {}`). An input that arrived whole
    in content_block_start is judged here."""
    text = final.streamed_input(position)
    if not text:
        return block.get("input") == {}
    return not _parses_to_object(text)


def _caller_findings(
    exchange: Exchange, final: FinalMessage, position: int, block: dict[str, Any], tool: dict[str, Any]
) -> list[Finding]:
    """A custom tool is called only by a caller its `allowed_callers` names (the model itself, `direct`,
    when it names none), and a call made by a program names, in `caller.tool_id`, the code execution
    call that runs the program: one in this message or in the conversation it continues."""
    if tool.get("type") not in (None, "custom"):
        return []
    findings = []
    caller = program_caller(block) or "direct"
    allowed = tool.get("allowed_callers", ["direct"])
    where = f"tool_use content[{position}] ({block['name']!r})"
    if isinstance(allowed, list) and caller not in allowed:
        findings.append(
            _finding(
                "semantics.tool-use",
                f"{where} is called by {caller!r}, but the tool's allowed_callers is {allowed}",
                "messages.response.tool_use",
            )
        )
    program = block["caller"].get("tool_id") if caller != "direct" else None
    if isinstance(program, str) and program not in _code_execution_calls(exchange, final):
        findings.append(
            _finding(
                "semantics.tool-use",
                f"{where} is called by the program of {program!r}, but no server_tool_use with that id is in the "
                "message or the conversation",
                "messages.response.tool_use",
            )
        )
    return findings


def _code_execution_calls(exchange: Exchange, final: FinalMessage) -> set[str]:
    """The ids of the server_tool_use blocks of the message and of the request's assistant turns."""
    turns = request_body(exchange).get("messages")
    blocks = list(final.content)
    for turn in turns if isinstance(turns, list) else []:
        if isinstance(turn, dict) and turn.get("role") == "assistant" and isinstance(turn.get("content"), list):
            blocks.extend(turn["content"])
    return {
        block["id"]
        for block in blocks
        if isinstance(block, dict) and block.get("type") == "server_tool_use" and isinstance(block.get("id"), str)
    }


def _parses_to_object(text: str | None) -> bool:
    return isinstance(parse_json_payload(text or "")[0], dict)


def _duplicate_ids(final: FinalMessage) -> list[Finding]:
    seen: dict[str, int] = {}
    findings = []
    for position, block in enumerate(final.content):
        block_id = block.get("id")
        if not isinstance(block_id, str):
            continue
        if block_id in seen:
            findings.append(
                _finding(
                    "semantics.tool-use",
                    f"content[{position}] reuses the id {block_id!r} of content[{seen[block_id]}]; "
                    "tool use ids are unique",
                    "messages.response.tool_use",
                )
            )
        else:
            seen[block_id] = position
    return findings


def _input_findings(position: int, block: dict[str, Any], tool: dict[str, Any]) -> list[Finding]:
    """The input against the tool's input_schema.

    Without `strict: true` the API does not guarantee schema-valid input, so a violation is a
    note, except an empty input for a tool with required properties: that is dropped arguments.
    """
    schema, value = tool.get("input_schema"), block.get("input")
    if not isinstance(schema, dict) or not isinstance(value, dict):
        return []
    first_import("jsonschema")  # here: only tool calls need it, and it is slow to import
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        errors = list(Draft202012Validator(schema).iter_errors(value))[:_MAX_SCHEMA_ERRORS]
    except SchemaError:
        return []
    dropped = value == {} and bool(schema.get("required"))
    severity = Severity.FAILURE if tool.get("strict") is True or dropped else Severity.NOTE
    return [
        _finding(
            "semantics.tool-use",
            f"tool_use content[{position}] ({block['name']!r}) {format_path(error.absolute_path, 'input')}: "
            f"{error.message}",
            "messages.response.tool_use",
            severity,
        )
        for error in errors
    ]


# --------------------------------------------------------------------------- count_tokens


@check("semantics.count-tokens")
def count_tokens(exchange: Exchange) -> list[Finding]:
    """count_tokens counts something for a non-empty request."""
    body = json_body(exchange)
    if endpoint(exchange) != COUNT_TOKENS or not succeeded(exchange) or not isinstance(body, dict):
        return []
    messages = request_body(exchange).get("messages")
    if _count(body.get("input_tokens")) != 0 or not messages:
        return []
    return [
        _finding(
            "semantics.count-tokens",
            f"input_tokens is 0 for a request with {len(messages)} message(s)",
            "count_tokens.response",
        )
    ]


# --------------------------------------------------------------------------- citations


def _request_sources(exchange: Exchange) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    """The request's document and search_result blocks in order, and whether any sits in a tool_result.

    The API numbers citations' document_index and search_result_index across the whole request.
    """
    documents: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    nested = False
    messages = request_body(exchange).get("messages")
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            inner = block.get("content") if block.get("type") == "tool_result" else None
            items = [block, *(item for item in inner if isinstance(item, dict))] if isinstance(inner, list) else [block]
            for position, item in enumerate(items):
                kind = item.get("type")
                if kind in ("document", "search_result"):
                    (documents if kind == "document" else results).append(item)
                    nested = nested or position > 0
    return documents, results, nested


@check("semantics.citations")
def citations(exchange: Exchange) -> list[Finding]:
    """Citations point into the request: document and search result indexes exist, and a
    char_location's cited_text is the slice of the plain-text document it names."""
    final = complete_message(exchange)
    if final is None:
        return []
    documents, results, nested = _request_sources(exchange)
    findings = []
    for position, block in enumerate(final.content):
        cited = block.get("citations") if block.get("type") == "text" else None
        for number, citation in enumerate(cited if isinstance(cited, list) else []):
            problem = (
                _citation_problem(citation, documents, results, exact=not nested)
                if isinstance(citation, dict)
                else None
            )
            if problem:
                findings.append(
                    _finding(
                        "semantics.citations",
                        f"content[{position}].citations[{number}] ({citation.get('type')}): {problem}",
                        "messages.response.citations",
                    )
                )
    return findings


def _citation_problem(
    citation: dict[str, Any], documents: list[dict[str, Any]], results: list[dict[str, Any]], exact: bool
) -> str | None:
    kind = citation.get("type")
    if kind in ("char_location", "page_location", "content_block_location"):
        index = _count(citation.get("document_index"))
        if index is None:
            return None
        if index >= len(documents):
            return f"document_index {index}, but the request has {len(documents)} document(s)"
        source = documents[index].get("source")
        if kind == "char_location" and exact and isinstance(source, dict) and source.get("type") == "text":
            return _char_slice_problem(citation, source.get("data"))
        return None
    if kind == "search_result_location":
        index = _count(citation.get("search_result_index"))
        if index is not None and index >= len(results):
            return f"search_result_index {index}, but the request has {len(results)} search result(s)"
    return None


def _char_slice_problem(citation: dict[str, Any], data: Any) -> str | None:
    start, end, text = (
        _count(citation.get("start_char_index")),
        _count(citation.get("end_char_index")),
        citation.get("cited_text"),
    )
    if not isinstance(data, str) or start is None or end is None or not isinstance(text, str):
        return None
    if not 0 <= start <= end <= len(data):
        return f"characters {start}..{end} are outside the document's {len(data)} characters"
    if data[start:end] != text:
        return (
            f"cited_text {short(text, 80)} is not the document's characters {start}..{end} {short(data[start:end], 80)}"
        )
    return None
