"""Each relayed exchange judged like one case of a run: every contract check applies, the provider
profile's documented deviations are marked, and the verdict is decided by conformance.judge.

A relayed exchange has no case and so no expectations: it gets the contract checks only. Requests
outside the Messages API (a client's `HEAD /` probe, a model listing) are recorded, not judged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from conformance.cases import Case
from conformance.checks import endpoint, run_checks
from conformance.judge import apply_profile, case_result, decide, usage_tokens
from conformance.model import CaseResult, Exchange, Finding, Outcome, Severity
from conformance.proxy.recording import Recorded

if TYPE_CHECKING:
    from conformance.specs.profiles import ProviderProfile

UPSTREAM_CHECK = "proxy.upstream"
RECORDING_CHECK = "proxy.recording"
# What can still be judged of a response whose body could not be decoded.
HEADER_CHECKS = ("headers.request-id", "headers.content-type")
NOT_JUDGED = "not a Messages API request: relayed and recorded, not judged"


def exchange_id(number: int) -> str:
    return f"proxy.{number:04d}"


def describe(exchange: Exchange) -> str:
    """`POST /v1/messages?beta=true -> 200, stream of 41 events` (how the console and reports name it)."""
    parts = urlsplit(exchange.request.url)
    line = f"{exchange.request.method} {parts.path or '/'}{'?' + parts.query if parts.query else ''}"
    response = exchange.response
    if response is None:
        return f"{line} -> no response"
    line += f" -> {response.status}"
    if response.events is not None:
        line += f", stream of {len(response.events)} events"
    return line


def judge_recorded(number: int, recorded: Recorded, profile: ProviderProfile | None = None) -> CaseResult:
    """The verdict on one relayed exchange, as the result of a case named `proxy.NNNN`."""
    exchange = recorded.exchange
    kind = endpoint(exchange)
    case = Case(
        id=exchange_id(number), feature=kind or "other", spec="", tier="core", steps=(), title=describe(exchange)
    )
    notes = [Finding(RECORDING_CHECK, note, severity=Severity.NOTE) for note in recorded.notes]
    duration = exchange.response.elapsed if exchange.response else 0.0
    if exchange.error:
        finding = Finding(UPSTREAM_CHECK, f"{exchange.error}; the client was answered 502 by the proxy")
        return case_result(case, Outcome.ERROR, exchange.error, findings=[finding, *notes], exchanges=[exchange])
    if kind is None:
        return case_result(case, Outcome.SKIPPED, NOT_JUDGED, findings=notes, exchanges=[exchange], duration=duration)
    if recorded.undecodable:
        findings = run_checks(exchange, HEADER_CHECKS)
        undecodable = f"{recorded.undecodable}: only its headers were judged"
        notes.append(Finding(RECORDING_CHECK, undecodable, severity=Severity.NOTE))
    else:
        findings = run_checks(exchange)
    findings = apply_profile(findings, case, [exchange], profile) + notes
    outcome, reason = decide(case, findings, [exchange])
    input_tokens, output_tokens = usage_tokens([exchange])
    return case_result(
        case,
        outcome,
        reason,
        findings=findings,
        exchanges=[exchange],
        duration=duration,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )
