"""What a case expects of one answer: status, error type, stop reason, text, blocks, tokens.

Unlike the other checks, which judge every exchange against the contract, this one compares an
exchange with the `expect:` mapping of the case step that produced it.
"""

from __future__ import annotations

from typing import Any

from conformance.accumulate import final_message
from conformance.model import Exchange, Finding


def check_expectations(
    exchange: Exchange, expect: dict[str, Any], spec_ref: str, history: list[dict[str, Any]] | None = None
) -> list[Finding]:
    """Findings for every expectation of the step that the exchange does not meet."""
    response = exchange.response
    if response is None:
        return []
    findings: list[Finding] = []

    def fail(key: str, message: str) -> None:
        findings.append(Finding(check=f"expect.{key}", message=message, spec_ref=spec_ref))

    wrong_status = status_problem(expect.get("status", 200), response.status, _error_message(response.json))
    if wrong_status:
        fail("status", wrong_status)
        return findings  # nothing else about the body is meaningful
    if "error_type" in expect:
        actual = _error_type(response.json)
        if actual != expect["error_type"]:
            fail("error_type", f"expected error.type {expect['error_type']!r}, got {actual!r}")
    if "stream" in expect and expect["stream"] != response.is_stream:
        wanted = "an SSE stream" if expect["stream"] else "a JSON body"
        fail("stream", f"expected {wanted}, got content-type {response.content_type!r}")
    for name, wanted in (expect.get("headers") or {}).items():
        actual = response.headers.get(name.lower())
        if actual is None or (wanted is not True and actual != str(wanted)):
            fail("headers", f"expected header {name}: {'(present)' if wanted is True else wanted}, got {actual!r}")
    message = final_message(response)
    if message is not None:
        for key, problem in _message_problems(expect, message):
            fail(key, problem)
    if "input_tokens_above_step" in expect:
        problem = _tokens_problem(expect["input_tokens_above_step"], response.json, message, history or [])
        if problem:
            fail("input_tokens_above_step", problem)
    return findings


def status_problem(wanted: Any, status: int, error: str | None) -> str | None:
    """Why `status` is not one of the wanted ones (ints or classes like "4xx"), or None."""
    options = wanted if isinstance(wanted, list) else [wanted]
    for option in options:
        if isinstance(option, int) and option == status:
            return None
        if isinstance(option, str) and len(option) == 3 and option.endswith("xx") and str(status)[0] == option[0]:
            return None
    shown = " or ".join(str(option) for option in options)
    if status < 300 <= min(_as_floor(o) for o in options):
        return f"expected HTTP {shown}, got {status}: the endpoint accepted what it should refuse"
    suffix = f" ({error})" if error else ""
    return f"expected HTTP {shown}, got {status}{suffix}"


def _as_floor(option: Any) -> int:
    return option if isinstance(option, int) else int(str(option)[0]) * 100


def _error_type(body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("type")
    return None


def _error_message(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
        return str(message)[:300] if message is not None else None
    return None


def message_text(message: dict[str, Any]) -> str:
    """The text of all text blocks of a message, joined."""
    return "".join(
        block.get("text") or ""
        for block in message.get("content") or []
        if isinstance(block, dict) and block.get("type") == "text"
    )


def _message_problems(expect: dict[str, Any], message: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    blocks = [block for block in message.get("content") or [] if isinstance(block, dict)]
    if "stop_reason" in expect:
        options = expect["stop_reason"] if isinstance(expect["stop_reason"], list) else [expect["stop_reason"]]
        actual = message.get("stop_reason")
        if actual not in options:
            problems.append(("stop_reason", f"expected stop_reason {' or '.join(options)}, got {actual!r}"))
    if "stop_sequence" in expect and message.get("stop_sequence") != expect["stop_sequence"]:
        actual = message.get("stop_sequence")
        problems.append(("stop_sequence", f"expected stop_sequence {expect['stop_sequence']!r}, got {actual!r}"))
    text = message_text(message)
    shown = repr(text[:300])
    if "text" in expect and text.strip() != str(expect["text"]).strip():
        problems.append(("text", f"expected the text {expect['text']!r}, got {shown}"))
    if "text_contains" in expect and str(expect["text_contains"]) not in text:
        problems.append(("text_contains", f"expected the text to contain {expect['text_contains']!r}, got {shown}"))
    if "content_types" in expect:
        types = [block.get("type") for block in blocks]
        if types != expect["content_types"]:
            problems.append(("content_types", f"expected content blocks {expect['content_types']}, got {types}"))
    if "tool_use" in expect:
        name = (expect["tool_use"] or {}).get("name")
        calls = [block for block in blocks if block.get("type") == "tool_use"]
        if not any(name is None or call.get("name") == name for call in calls):
            found = [call.get("name") for call in calls]
            problems.append(("tool_use", f"expected a tool_use block{f' for {name!r}' if name else ''}, got {found}"))
    return problems


def _input_tokens(document: Any) -> Any:
    """input_tokens of a Message (from its usage) or of a count_tokens answer."""
    if not isinstance(document, dict):
        return None
    usage = document.get("usage")
    return usage.get("input_tokens") if isinstance(usage, dict) else document.get("input_tokens")


def _tokens_problem(step: int, body: Any, message: dict[str, Any] | None, history: list[dict[str, Any]]) -> str | None:
    if step >= len(history):
        return f"input_tokens_above_step refers to step {step}, which did not run"
    before = _input_tokens(history[step].get("message") or history[step].get("response"))
    now = _input_tokens(message or body)
    if not isinstance(before, int) or not isinstance(now, int):
        return f"input_tokens missing: step {step} reported {before!r}, this step {now!r}"
    if now <= before:
        return f"input_tokens did not grow with the added content: step {step} reported {before}, this step {now}"
    return None
