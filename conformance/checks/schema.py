"""JSON-schema checks: response bodies and stream event payloads against the contract's schemas.

Each finding names the JSON path of the offending value and the clause the failing part of the
schema encodes (its `x-clause`). Error bodies are validated only when they claim to be the
Anthropic envelope (`type: "error"`); bodies of another shape are the errors checks' business.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from conformance import contract
from conformance.checks.common import (
    COUNT_TOKENS,
    MESSAGES,
    Collector,
    check,
    describe,
    endpoint,
    failed,
    json_body,
    payload_type,
    response,
    short,
    stream_events,
    stream_problems,
    succeeded,
    unjudged_body,
)
from conformance.checks.nullable import weigh
from conformance.checks.validation import problems
from conformance.model import Exchange, Finding, Severity


def _body_findings(name: str, schema_name: str, exchange: Exchange) -> list[Finding]:
    """Validate a JSON response body; a body that is not JSON is itself a finding."""
    res = response(exchange)
    if res.json is None:
        return [
            Finding(
                check=name,
                message=unjudged_body(res) or f"the HTTP {res.status} body is not JSON: {short(res.text)}",
                spec_ref=contract.schema_clause(schema_name),
            )
        ]
    findings = []
    for problem in problems(schema_name, res.json):
        message, severity = weigh(schema_name, res.json, problem, "body")
        findings.append(Finding(check=name, message=message, spec_ref=problem.clause, severity=severity))
    return findings


@check("schema.message")
def message_body(exchange: Exchange) -> list[Finding]:
    """A 2xx non-stream /v1/messages body is a Message."""
    if endpoint(exchange) != MESSAGES or not succeeded(exchange) or stream_events(exchange) is not None:
        return []
    body = json_body(exchange)
    if isinstance(body, dict) and body.get("type") == "error":
        return [
            Finding(
                check="schema.message",
                message=f"HTTP {response(exchange).status} carries an error body {short(body.get('error'))}; "
                "errors must use an error status",
                spec_ref="errors.status-map",
            )
        ]
    return _body_findings("schema.message", "Message", exchange)


@check("schema.count-tokens")
def count_tokens_body(exchange: Exchange) -> list[Finding]:
    """A 2xx count_tokens body is {input_tokens: integer}."""
    if endpoint(exchange) != COUNT_TOKENS or not succeeded(exchange) or stream_events(exchange) is not None:
        return []
    return _body_findings("schema.count-tokens", "CountTokensResponse", exchange)


@check("schema.error")
def error_body(exchange: Exchange) -> list[Finding]:
    """An error body that claims the Anthropic envelope (type "error") matches ErrorResponse."""
    body = json_body(exchange)
    if not failed(exchange) or not isinstance(body, dict) or body.get("type") != "error":
        return []
    return _body_findings("schema.error", "ErrorResponse", exchange)


@check("schema.stream-event")
def stream_event_payloads(exchange: Exchange) -> list[Finding]:
    """Every JSON event payload matches the schema of its event type (unknown types need only a string type)."""
    events = stream_events(exchange)
    if not events:
        return []
    collector = Collector("schema.stream-event")
    # The collector keeps only the first finding of each key, so each key is weighed once (weighing revalidates).
    weighed: dict[tuple[Any, ...], tuple[str, Severity]] = {}
    for index, (event, found) in enumerate(zip(events, stream_problems(events), strict=True)):
        for problem in found:
            key = (event.type, problem.path, problem.message)
            if (problem.clause, key) not in weighed:
                weighed[problem.clause, key] = weigh("StreamEvent", event.json, problem, "data")
            message, severity = weighed[problem.clause, key]
            collector.add(
                f"{describe(index, event)}: {message}",
                problem.clause,
                key=key,
                where=f"event {index}",
                severity=severity,
            )
    return collector.findings()


@check("schema.unknown-type")
def unknown_types(exchange: Exchange) -> list[Finding]:
    """Note content block, delta and citation types the contract does not know.

    They validate (clients must tolerate them), but a gateway that invents a type, e.g. an
    `output_text` block, would otherwise pass silently: a note makes it visible.
    """
    if endpoint(exchange) != MESSAGES or not succeeded(exchange):
        return []
    collector = Collector("schema.unknown-type")
    events = stream_events(exchange)
    if events is None:
        body = json_body(exchange)
        content = body.get("content") if isinstance(body, dict) else None
        for position, block in enumerate(content if isinstance(content, list) else []):
            _note_block(collector, block, lambda position=position: f"content[{position}]")
        return collector.findings()
    # Deltas of these types carry nothing more to look at (a citations_delta carries a citation).
    plain_deltas = contract.discriminated_types("ContentBlockDelta") - {"citations_delta"}
    for index, event in enumerate(events):
        payload, kind = event.json, event.type
        if kind == "content_block_start" and isinstance(payload.get("content_block"), dict):
            where = functools.partial(describe, index, event)
            _note_block(collector, payload["content_block"], lambda where=where: f"{where()}: content_block")
        elif (
            kind == "content_block_delta"
            and isinstance(delta := payload.get("delta"), dict)
            and delta.get("type") not in plain_deltas
        ):
            _note_delta(collector, delta, functools.partial(describe, index, event))
    return collector.findings()


def _note_unknown(
    collector: Collector, payload: Any, schema: str, label: str, spec_ref: str, where: Callable[[], str]
) -> None:
    """Note a payload whose `type` the contract's discriminated union `schema` does not list.

    `where` names the payload; it is only asked for a note (most payloads need none).
    """
    kind = payload_type(payload)
    if kind is not None and kind not in contract.discriminated_types(schema):
        collector.add(
            f"{where()}: {label} type {kind!r} is not in the contract (tolerated)",
            spec_ref,
            key=(label, kind),
            severity=Severity.NOTE,
        )


def _note_block(collector: Collector, block: Any, where: Callable[[], str]) -> None:
    _note_unknown(collector, block, "ContentBlock", "content block", "messages.response.content", where)
    citations = block.get("citations") if isinstance(block, dict) else None
    for citation in citations if isinstance(citations, list) else []:
        _note_unknown(collector, citation, "Citation", "citation", "messages.response.citations", where)


def _note_delta(collector: Collector, delta: dict[str, Any], where: Callable[[], str]) -> None:
    _note_unknown(collector, delta, "ContentBlockDelta", "delta", "stream.delta-type", where)
    if payload_type(delta) == "citations_delta":
        _note_unknown(collector, delta.get("citation"), "Citation", "citation", "messages.response.citations", where)
