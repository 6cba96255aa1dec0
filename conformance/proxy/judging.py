"""Each relayed exchange judged like one case of a run: every contract check applies, the provider
profile's documented deviations are marked, and the verdict is decided by conformance.judge.

A relayed exchange has no case and so no expectations: it gets the contract checks only. Requests
outside the Messages API (a client's `HEAD /` probe, a model listing) are recorded, not judged.

What the client itself saw go wrong is a failure of its own (`proxy.client-visible`), whatever the
contract says of the answer: an error status (a 400 that is correct under the contract included),
or a stream it could not have parsed (not SSE, cut, broken grammar). The user watching a client
break must see it fail, not pass.

`judge_capture` is the whole of the work on one exchange (decoding, parsing, redacting, judging,
bounding the evidence): the proxy runs it in a process of its own, so it takes only plain data in
and out.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from conformance.cases import Case
from conformance.checks import endpoint, run_checks
from conformance.checks.common import one_judgement
from conformance.judge import apply_profile, case_result, decide, usage_tokens
from conformance.model import CaseResult, Exchange, Finding, Outcome, Severity
from conformance.proxy.recording import Recorded, to_exchange
from conformance.report.evidence import clip, one_line, strict_json

if TYPE_CHECKING:
    from conformance.proxy.recording import Capture
    from conformance.redact import Redactor
    from conformance.report.evidence import EvidenceBudget
    from conformance.specs.profiles import ProviderProfile
    from conformance.transport import Limits

UPSTREAM_CHECK = "proxy.upstream"
RECORDING_CHECK = "proxy.recording"
CLIENT_VISIBLE_CHECK = "proxy.client-visible"
JUDGE_CHECK = "proxy.judge"
# What can still be judged of a response whose body could not be decoded.
HEADER_CHECKS = ("headers.request-id", "headers.content-type")
NOT_JUDGED = "not a Messages API request: relayed and recorded, not judged"
# Bounds of one results.jsonl line.
LINE_TEXT_CHARS = 1000
LINE_FINDINGS = 20


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


@dataclass
class Judged:
    """One judged capture: its result, bounded within the session's evidence budget, the budget as it
    is left, and what the request asked for (its model and max_tokens, for the report's target)."""

    result: CaseResult
    budget: EvidenceBudget
    model: str | None = None
    max_tokens: int | None = None


def judge_capture(
    number: int,
    capture: Capture,
    limits: Limits,
    redactor: Redactor,
    budget: EvidenceBudget,
    profile: ProviderProfile | None = None,
) -> Judged:
    """The verdict on one captured exchange: made an Exchange (decoded, parsed, bounded by `limits`,
    redacted), judged, and bounded by `budget`, which is spent and returned."""
    recorded = to_exchange(capture, limits, redactor)
    result = budget.result(judge_recorded(number, recorded, profile))
    body = recorded.exchange.request.body
    body = body if isinstance(body, dict) else {}
    model, max_tokens = body.get("model"), body.get("max_tokens")
    return Judged(
        result,
        budget,
        model if isinstance(model, str) else None,
        max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None,
    )


def ignore_interrupts() -> None:
    """A judging process ignores Ctrl+C: the proxy stops on it by itself, and still needs its judge to
    judge what is queued."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def judge_recorded(number: int, recorded: Recorded, profile: ProviderProfile | None = None) -> CaseResult:
    """The verdict on one relayed exchange, as the result of a case named `proxy.NNNN`."""
    exchange = recorded.exchange
    kind = endpoint(exchange)
    case = _case(number, exchange)
    notes = [Finding(RECORDING_CHECK, note, severity=Severity.NOTE) for note in recorded.notes]
    duration = exchange.response.elapsed if exchange.response else 0.0
    if exchange.error:
        upstream = Finding(UPSTREAM_CHECK, f"{exchange.error}; the client was answered 502 by the proxy")
        seen = Finding(CLIENT_VISIBLE_CHECK, f"client saw HTTP 502: {exchange.error}")
        return case_result(case, Outcome.ERROR, exchange.error, findings=[seen, upstream, *notes], exchanges=[exchange])
    if kind is None:
        return case_result(case, Outcome.SKIPPED, NOT_JUDGED, findings=notes, exchanges=[exchange], duration=duration)
    with one_judgement():  # the stream is folded once, for the checks and the token count alike
        if recorded.undecodable:
            findings = run_checks(exchange, HEADER_CHECKS)
            undecodable = f"{recorded.undecodable}: only its headers were judged"
            notes.append(Finding(RECORDING_CHECK, undecodable, severity=Severity.NOTE))
        else:
            findings = run_checks(exchange)
        findings = apply_profile(findings, case, [exchange], profile) + notes
        seen = client_visible(recorded, findings)
        if seen is not None:
            findings.insert(0, Finding(CLIENT_VISIBLE_CHECK, seen))
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


def judge_failed(number: int, exchange: Exchange, error: BaseException) -> CaseResult:
    """The result of an exchange the judge crashed on (`exchange` kept as plain text): an error in one sentence."""
    reason = f"the judge failed on this exchange: {type(error).__name__}: {error}"
    reason = one_line(reason)
    duration = exchange.response.elapsed if exchange.response else 0.0
    findings = [Finding(JUDGE_CHECK, reason)]
    return case_result(
        _case(number, exchange), Outcome.ERROR, reason, findings=findings, exchanges=[exchange], duration=duration
    )


def client_visible(recorded: Recorded, findings: list[Finding]) -> str | None:
    """What the client saw go wrong ("client saw HTTP 400: ..."), or None when it got a usable answer."""
    exchange = recorded.exchange
    response = exchange.response
    if response is None:
        return None
    if response.status >= 400:
        said = _error_message(response.json, response.text)
        return f"client saw HTTP {response.status}" + (f": {said}" if said else "")
    body = exchange.request.body
    if not (isinstance(body, dict) and body.get("stream") is True and 200 <= response.status < 300):
        return None
    if response.events is None:
        got = response.content_type or "no content type"
        return f"client asked for a stream and got {got}, not an SSE stream"
    if recorded.cut:
        return f"client saw the stream cut: {recorded.cut}"
    broken = next((f for f in findings if f.check == "stream.grammar" and f.severity is Severity.FAILURE), None)
    if broken is not None and not recorded.capped:
        return f"client got a stream it could not parse: {broken.message}"
    return None


def _error_message(body: Any, text: str) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    said = message if isinstance(message, str) else text
    return one_line(said)


def _case(number: int, exchange: Exchange) -> Case:
    kind = endpoint(exchange)
    return Case(
        id=exchange_id(number), feature=kind or "other", spec="", tier="core", steps=(), title=describe(exchange)
    )


def result_line(result: CaseResult, redactor: Redactor) -> str:
    """One results.jsonl line: the verdict on an exchange, redacted and bounded (strict JSON, ASCII, no bodies)."""
    exchange = result.exchanges[0] if result.exchanges else None
    response = exchange.response if exchange else None
    visible = next((f.message for f in result.findings if f.check == CLIENT_VISIBLE_CHECK), None)
    line = {
        "id": result.id,
        "outcome": result.outcome.value,
        "title": clip(result.title, LINE_TEXT_CHARS),
        "status": response.status if response else None,
        "client_visible": clip(visible, LINE_TEXT_CHARS) if visible else None,
        "reason": clip(result.reason, LINE_TEXT_CHARS),
        "duration": round(result.duration, 4),
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "findings": [
            {"check": f.check, "severity": f.severity.value, "message": clip(f.message, LINE_TEXT_CHARS)}
            for f in result.findings[:LINE_FINDINGS]
        ],
        "findings_total": len(result.findings),
    }
    return json.dumps(strict_json(line, redactor), allow_nan=False)
