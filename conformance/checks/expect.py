"""What a case expects of one answer: status, error type, stop reason, text, blocks, citations,
JSON output, token counts against earlier steps, and the events of a stream (an ending error event,
event types and counts, the longest quiet stretch).

Unlike the other checks, which judge every exchange against the contract, this one compares an
exchange with the `expect:` mapping of the case step that produced it (docs/how-to/cases.md lists the keys).
An unmet expectation is a failure, except where it asks for what the docs allow but do not promise
(pings, their cadence, `retry-after`): then it is a warning (docs/reference/verdicts.md).
"""

from __future__ import annotations

from typing import Any

from conformance.bounded_json import parse_json_payload
from conformance.checks.common import final_message, longest_silence
from conformance.imports import first_import
from conformance.model import Exchange, Finding, Response, Severity

# input_tokens_near_step: how far two counts of the same content may differ (count_tokens is an
# estimate; the API may add a few tokens of its own): a quarter of the earlier count, at least 5.
NEAR_RELATIVE = 0.25
NEAR_ABSOLUTE = 5

# Headers and event types the docs allow but do not promise: a 429 "may" carry retry-after, and
# "Event streams may also include any number of ping events". Expected and missing, they are warnings,
# as is a quiet stretch longer than `max_event_gap` (the cadence of pings).
RECOMMENDED_HEADERS = frozenset({"retry-after"})
RECOMMENDED_EVENTS = frozenset({"ping"})


def check_expectations(
    exchange: Exchange, expect: dict[str, Any], spec_ref: str, history: list[dict[str, Any]] | None = None
) -> list[Finding]:
    """Findings for every expectation of the step that the exchange does not meet."""
    response = exchange.response
    if response is None:
        return []
    findings: list[Finding] = []

    def fail(key: str, message: str, severity: Severity = Severity.FAILURE) -> None:
        findings.append(Finding(check=f"expect.{key}", message=message, spec_ref=spec_ref, severity=severity))

    wrong_status = status_problem(expect.get("status", 200), response.status, _error_message(response.json))
    if wrong_status:
        fail("status", wrong_status)
        return findings  # nothing else about the body is meaningful
    if "error_type" in expect:
        actual = error_type(response.json)
        if actual != expect["error_type"]:
            fail("error_type", f"expected error.type {expect['error_type']!r}, got {actual!r}")
    if "stream" in expect and expect["stream"] != response.is_stream:
        wanted = "an SSE stream" if expect["stream"] else "a JSON body"
        fail("stream", f"expected {wanted}, got content-type {response.content_type!r}")
    for name, wanted in (expect.get("headers") or {}).items():
        actual = response.headers.get(name.lower())
        if actual is None or (wanted is not True and actual != str(wanted)):
            severity = Severity.WARNING if name.lower() in RECOMMENDED_HEADERS else Severity.FAILURE
            fail(
                "headers",
                f"expected header {name}: {'(present)' if wanted is True else wanted}, got {actual!r}",
                severity,
            )
    for key, problem, severity in _stream_problems(expect, response):
        fail(key, problem, severity)
    message = final_message(response)
    if message is not None:
        for key, problem in _message_problems(expect, message):
            fail(key, problem)
        if expect.get("json_output"):
            problem = _json_output_problem(message, exchange.request.body)
            if problem:
                fail("json_output", problem)
    history = history or []
    if "same_content_as_step" in expect:
        problem = _same_content_problem(expect["same_content_as_step"], message, history)
        if problem:
            fail("same_content_as_step", problem)
    for key in ("input_tokens_above_step", "input_tokens_near_step"):
        if key in expect:
            problem = _tokens_problem(key, expect[key], response.json, message, history)
            if problem:
                fail(key, problem)
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


def error_type(body: Any) -> Any:
    """The `error.type` an error body names, as sent (None when it names none)."""
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
    types = [block.get("type") for block in blocks]
    missing = [kind for kind in expect.get("blocks_include") or [] if kind not in types]
    if missing:
        problems.append(("blocks_include", f"expected content blocks of type {missing}, got {types}"))
    calls = [block for block in blocks if block.get("type") == "tool_use"]
    if "tool_use" in expect:
        name = (expect["tool_use"] or {}).get("name")
        if not any(name is None or call.get("name") == name for call in calls):
            found = [call.get("name") for call in calls]
            problems.append(("tool_use", f"expected a tool_use block{f' for {name!r}' if name else ''}, got {found}"))
    if "tool_use_count" in expect and len(calls) != expect["tool_use_count"]:
        found = [call.get("name") for call in calls]
        problems.append(("tool_use_count", f"expected {expect['tool_use_count']} tool_use block(s), got {found}"))
    if "stop_details" in expect:
        problem = _stop_details_problem(expect["stop_details"], message.get("stop_details"))
        if problem:
            problems.append(("stop_details", problem))
    if "citations" in expect:
        cited = [block for block in blocks if block.get("type") == "text" and block.get("citations")]
        if bool(cited) != expect["citations"]:
            wanted = "a text block with citations" if expect["citations"] else "no citations"
            problems.append(("citations", f"expected {wanted}, got {len(cited)} cited text block(s)"))
    return problems


def _stop_details_problem(wanted: dict[str, Any] | None, actual: Any) -> str | None:
    """stop_details must be null (wanted None) or hold every wanted field with its value."""
    if wanted is None:
        return None if actual is None else f"expected stop_details null, got {actual!r}"
    if not isinstance(actual, dict) or any(actual.get(key) != value for key, value in wanted.items()):
        return f"expected stop_details with {wanted!r}, got {actual!r}"
    return None


def _json_output_problem(message: dict[str, Any], request: Any) -> str | None:
    """The text must be one JSON value, valid against the request's output_config.format schema."""
    text = message_text(message).strip()
    value, problem = parse_json_payload(text)
    if problem is not None:
        return f"expected the text to be JSON ({problem}), got {text[:300]!r}"
    output_format = ((request or {}).get("output_config") or {}).get("format") if isinstance(request, dict) else None
    schema = output_format.get("schema") if isinstance(output_format, dict) else None
    if not isinstance(schema, dict):
        return None
    first_import("jsonschema")  # here: most runs never ask for structured output
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        errors = list(Draft202012Validator(schema).iter_errors(value))
    except SchemaError:
        return None
    if errors:
        return f"the JSON text does not match the requested schema: {errors[0].message}"
    return None


def _comparable(message: dict[str, Any] | None) -> list[tuple[Any, ...]]:
    """The visible answer of a message: text and tool calls in order (thinking, ids and signatures vary)."""
    result: list[tuple[Any, ...]] = []
    for block in (message or {}).get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            result.append(("text", (block.get("text") or "").strip()))
        elif block.get("type") == "tool_use":
            result.append(("tool_use", block.get("name"), block.get("input")))
    return result


def _same_content_problem(step: int, message: dict[str, Any] | None, history: list[dict[str, Any]]) -> str | None:
    if step >= len(history) or message is None:
        return f"same_content_as_step: step {step} or this step has no message to compare"
    before, now = _comparable(history[step].get("message")), _comparable(message)
    if before != now:
        return f"the answer differs from step {step}'s answer to the same request: {now!r} vs {before!r}"
    return None


def _stream_problems(expect: dict[str, Any], response: Response) -> list[tuple[str, str, Severity]]:
    """Expectations about the events of a stream, each with its severity (all fail when the answer is not a stream)."""
    keys = [key for key in ("stream_error", "event_types_include", "min_events", "max_event_gap") if key in expect]
    if not keys:
        return []
    events = response.events
    if events is None:
        return [(key, "expected an SSE stream, got a JSON body", Severity.FAILURE) for key in keys]
    problems: list[tuple[str, str, Severity]] = []
    kinds = [event.type or event.event for event in events]
    if "stream_error" in expect:
        last = events[-1].json if events else None
        error = last.get("error") if isinstance(last, dict) and last.get("type") == "error" else None
        actual = error.get("type") if isinstance(error, dict) else None
        if actual != expect["stream_error"]:
            shown = f"an error event of type {actual!r}" if error is not None else f"last event {kinds[-1:]}"
            problems.append(
                (
                    "stream_error",
                    f"expected the stream to end with a {expect['stream_error']} error event, got {shown}",
                    Severity.FAILURE,
                )
            )
    missing = [kind for kind in expect.get("event_types_include") or [] if kind not in kinds]
    if missing:
        problems.append(
            (
                "event_types_include",
                f"expected events of type {missing} in the stream, got {sorted(set(kinds), key=str)}",
                Severity.WARNING if set(missing) <= RECOMMENDED_EVENTS else Severity.FAILURE,
            )
        )
    for kind, minimum in (expect.get("min_events") or {}).items():
        if kinds.count(kind) < minimum:
            severity = Severity.WARNING if kind in RECOMMENDED_EVENTS else Severity.FAILURE
            message = f"expected at least {minimum} {kind} event(s), got {kinds.count(kind)}"
            problems.append(("min_events", message, severity))
    if "max_event_gap" in expect and len(events) > 1:
        gap, where = longest_silence(events)
        if gap > expect["max_event_gap"]:
            problems.append(
                (
                    "max_event_gap",
                    f"{gap:.1f} s passed without an event before event {where}; at most "
                    f"{expect['max_event_gap']} s were expected (a ping keeps a quiet stream alive)",
                    Severity.WARNING,
                )
            )
    return problems


def _input_tokens(document: Any) -> Any:
    """input_tokens of a Message (from its usage) or of a count_tokens answer."""
    if not isinstance(document, dict):
        return None
    usage = document.get("usage")
    return usage.get("input_tokens") if isinstance(usage, dict) else document.get("input_tokens")


def _tokens_problem(
    key: str, step: int, body: Any, message: dict[str, Any] | None, history: list[dict[str, Any]]
) -> str | None:
    """input_tokens against an earlier step's: larger (`..._above_step`) or about equal (`..._near_step`)."""
    if step >= len(history):
        return f"{key} refers to step {step}, which did not run"
    before = _input_tokens(history[step].get("message") or history[step].get("response"))
    now = _input_tokens(message or body)
    if not isinstance(before, int) or not isinstance(now, int):
        return f"input_tokens missing: step {step} reported {before!r}, this step {now!r}"
    if key == "input_tokens_above_step" and now <= before:
        return f"input_tokens did not grow with the added content: step {step} reported {before}, this step {now}"
    if key == "input_tokens_near_step" and abs(now - before) > max(NEAR_ABSOLUTE, NEAR_RELATIVE * before):
        return (
            f"input_tokens {now} is far from step {step}'s {before} for the same content "
            f"(allowed: within {NEAR_RELATIVE:.0%} or {NEAR_ABSOLUTE} tokens)"
        )
    return None
