"""Error checks: the shape of error bodies and mid-stream error events, and the status <-> error type table.

These checks judge what an error looks like, never whether an error was the right answer: the
expected status of a case is the case expectations' business. Field-level problems of a body
that is an Anthropic envelope (`type: "error"`) are left to `schema.error`.
"""

from __future__ import annotations

from typing import Any

from conformance import contract
from conformance.checks.common import (
    Collector,
    check,
    describe,
    failed,
    json_body,
    response,
    short,
    stream_events,
    unjudged_body,
)
from conformance.model import Exchange, Finding, Severity

# HTTP status -> the error types the contract pairs with it.
STATUS_ERROR_TYPES: dict[int, frozenset[str]] = {
    400: frozenset({"invalid_request_error"}),
    401: frozenset({"authentication_error"}),
    402: frozenset({"billing_error"}),
    403: frozenset({"permission_error"}),
    404: frozenset({"not_found_error"}),
    413: frozenset({"request_too_large"}),
    429: frozenset({"rate_limit_error"}),
    500: frozenset({"api_error"}),
    504: frozenset({"timeout_error"}),
    529: frozenset({"overloaded_error"}),
}
# Statuses the table does not list: other 4xx are invalid requests; other 5xx server failures.
OTHER_4XX = frozenset({"invalid_request_error"})
OTHER_5XX = frozenset({"api_error", "overloaded_error"})

ANTHROPIC_SHAPE = '{"type": "error", "error": {"type": ..., "message": ...}}'


def expected_error_types(status: int) -> frozenset[str]:
    """The error types the contract allows for an HTTP status."""
    if status in STATUS_ERROR_TYPES:
        return STATUS_ERROR_TYPES[status]
    return OTHER_5XX if status >= 500 else OTHER_4XX


def is_openai_shaped(body: Any) -> bool:
    """True for `{"error": {"message", "type", "code", "param"}}` without the top-level `type: "error"`."""
    if not isinstance(body, dict) or body.get("type") == "error":
        return False
    error = body.get("error")
    return isinstance(error, dict) and ("code" in error or "param" in error)


def _shape_problem(body: Any) -> str | None:
    """Why `body` is not an Anthropic error envelope at all, or None when it is one."""
    if is_openai_shaped(body):
        return (
            f"the error body has the OpenAI shape {short(body, 200)}; "
            f"an Anthropic error is {ANTHROPIC_SHAPE} (no code/param, top-level type 'error')"
        )
    if not isinstance(body, dict):
        return f"the error body is a JSON {type(body).__name__}, not an object: {short(body)}"
    if body.get("type") != "error":
        return (
            f"the error body is not an Anthropic error envelope: top-level type is {short(body.get('type'))} "
            f"(keys {sorted(body)}); expected {ANTHROPIC_SHAPE}"
        )
    return None


@check("errors.envelope")
def envelope(exchange: Exchange) -> list[Finding]:
    """An error response (status >= 400) carries the Anthropic error envelope as JSON (not an answer to
    HEAD, which never has a body)."""
    if not failed(exchange) or exchange.request.method.upper() == "HEAD":
        return []
    res = response(exchange)
    body = json_body(exchange)
    if body is None:
        problem = unjudged_body(res) or f"the HTTP {res.status} error body is not JSON: {short(res.text)}"
    else:
        problem = _shape_problem(body)
    if problem is not None:
        return [Finding(check="errors.envelope", message=problem, spec_ref="errors.envelope")]
    if "request_id" not in body:
        return [
            Finding(
                check="errors.envelope",
                message="the error body has no request_id key (the contract has one, null when unknown; "
                "older API errors and several gateways omit it)",
                spec_ref="errors.envelope",
                severity=Severity.NOTE,
            )
        ]
    return []


@check("errors.status-map")
def status_map(exchange: Exchange) -> list[Finding]:
    """The error type agrees with the HTTP status (unknown error types are schema.error's finding)."""
    body = json_body(exchange)
    if not failed(exchange) or not isinstance(body, dict) or body.get("type") != "error":
        return []
    error = body.get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    if kind not in contract.enum("ErrorType"):
        return []
    status = response(exchange).status
    allowed = expected_error_types(status)
    if kind in allowed:
        return []
    return [
        Finding(
            check="errors.status-map",
            message=f"HTTP {status} carries error.type {kind!r}; the contract pairs {status} with "
            f"{' or '.join(sorted(allowed))}",
            spec_ref="errors.status-map",
        )
    ]


@check("errors.stream-event")
def stream_error_events(exchange: Exchange) -> list[Finding]:
    """A mid-stream error event carries the Anthropic envelope, not an OpenAI-shaped error.

    Field-level problems of `{type: "error", ...}` payloads are schema.stream-event's; events
    without a `type` are stream.grammar's. This check names the OpenAI shape explicitly.
    """
    events = stream_events(exchange)
    if not events:
        return []
    collector = Collector("errors.stream-event")
    for index, event in enumerate(events):
        if (event.event == "error" or event.type == "error") and is_openai_shaped(event.json):
            collector.add(
                f"{describe(index, event)}: the error event has the OpenAI shape {short(event.json, 200)}; "
                f"an Anthropic error event is {ANTHROPIC_SHAPE}",
                "stream.error-event",
                key="openai-shape",
                where=f"event {index}",
            )
    return collector.findings()
