"""Plan -> execute -> results. The runner sends, records and hands exchanges to the checks;
it never judges anything itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from conformance import __version__
from conformance.accumulate import final_message
from conformance.cases import Case, CaseError, Step, resolve
from conformance.checks import run_checks
from conformance.checks.expect import check_expectations
from conformance.model import CaseResult, Exchange, Finding, Outcome, Request, RunReport, Severity
from conformance.target import Target, TargetError
from conformance.transport import Limits, Redactor, Transport

ResultCallback = Callable[[CaseResult], None]


def build_request(target: Target, step: Step, history: list[dict[str, Any]]) -> Request:
    """The HTTP request a step sends to the target: default headers, credentials, resolved body."""
    spec = step.request
    headers = target.default_headers()
    if spec.auth:
        headers.update(target.auth_headers(spec.auth if isinstance(spec.auth, str) else None))
    for name, value in spec.headers.items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = str(value)
    body = resolve(spec.body, target.model, history) if spec.body is not None else None
    return Request(
        method=spec.method, url=target.url(spec.endpoint), headers=headers, body=body, raw_body=spec.raw_body
    )


def decide(case: Case, findings: list[Finding], exchanges: list[Exchange]) -> tuple[Outcome, str]:
    """The verdict on a case from its exchanges and findings (see the verdict table)."""
    broken = next((exchange for exchange in exchanges if exchange.error), None)
    if broken is not None:
        return Outcome.ERROR, broken.error or "no response"
    failures = [f for f in findings if f.severity is Severity.FAILURE]
    if not failures:
        return Outcome.PASSED, ""
    if case.optional and _refused_cleanly(failures, exchanges):
        return Outcome.UNSUPPORTED, "the target refused this optional feature with a clean Anthropic error"
    if all(f.deviation for f in failures):
        return Outcome.DEVIATION, "; ".join(sorted({f.deviation or "" for f in failures}))
    return Outcome.FAILED, failures[0].message


def _refused_cleanly(failures: list[Finding], exchanges: list[Exchange]) -> bool:
    """A 4xx whose only fault is being a refusal: the status expectation, nothing about its shape."""
    last = exchanges[-1].response if exchanges else None
    if last is None or not 400 <= last.status < 500:
        return False
    return all(f.check == "expect.status" for f in failures)


def _usage_tokens(exchanges: list[Exchange]) -> tuple[int, int]:
    input_tokens = output_tokens = 0
    for exchange in exchanges:
        if exchange.request.url.split("?")[0].endswith("/count_tokens"):
            continue
        message = final_message(exchange.response)
        usage = message.get("usage") if message else None
        if isinstance(usage, dict):
            input_tokens += usage.get("input_tokens") if isinstance(usage.get("input_tokens"), int) else 0
            output_tokens += usage.get("output_tokens") if isinstance(usage.get("output_tokens"), int) else 0
    return input_tokens, output_tokens


class Runner:
    """Runs cases against one target with bounded concurrency; steps of a case run in order."""

    def __init__(self, target: Target, transport: Transport, concurrency: int = 4) -> None:
        self.target = target
        self.transport = transport
        self._slots = asyncio.Semaphore(max(1, concurrency))

    async def run(self, cases: Iterable[Case], on_result: ResultCallback | None = None) -> list[CaseResult]:
        async def one(case: Case) -> CaseResult:
            async with self._slots:
                result = await self.run_case(case)
            if on_result is not None:
                on_result(result)
            return result

        return list(await asyncio.gather(*(one(case) for case in cases)))

    async def run_case(self, case: Case) -> CaseResult:
        started = time.monotonic()
        exchanges: list[Exchange] = []
        findings: list[Finding] = []
        history: list[dict[str, Any]] = []
        for index, step in enumerate(case.steps):
            try:
                request = build_request(self.target, step, history)
            except (CaseError, TargetError) as exc:
                return self._result(case, Outcome.ERROR, str(exc), findings, exchanges, started)
            exchange = await self.transport.send(request, step=index)
            exchanges.append(exchange)
            if exchange.error:
                break
            step_findings = run_checks(exchange) + check_expectations(exchange, step.expect, case.spec, history)
            findings.extend(step_findings)
            message = final_message(exchange.response)
            history.append({"message": message, "response": exchange.response.json if exchange.response else None})
            if any(f.check == "expect.status" for f in step_findings):
                break  # later steps build on this answer, which is not what they need
        outcome, reason = decide(case, findings, exchanges)
        return self._result(case, outcome, reason, findings, exchanges, started)

    def _result(
        self,
        case: Case,
        outcome: Outcome,
        reason: str,
        findings: list[Finding],
        exchanges: list[Exchange],
        started: float,
    ) -> CaseResult:
        input_tokens, output_tokens = _usage_tokens(exchanges)
        return CaseResult(
            id=case.id,
            feature=case.feature,
            outcome=outcome,
            findings=findings,
            exchanges=exchanges,
            tier=case.tier,
            spec_ref=case.spec,
            title=case.title,
            reason=reason,
            duration=time.monotonic() - started,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


async def run_suite(
    target: Target,
    cases: list[Case],
    limits: Limits | None = None,
    concurrency: int = 4,
    on_result: ResultCallback | None = None,
) -> RunReport:
    """Run the cases against the target and return the whole report (in case-id order)."""
    started_at = now_iso()
    redactor = Redactor(secrets=[target.api_key] if target.api_key else [])
    async with Transport(limits=limits, redactor=redactor) as transport:
        results = await Runner(target, transport, concurrency).run(cases, on_result)
    return RunReport(
        target=target.info(),
        started_at=started_at,
        finished_at=now_iso(),
        results=sorted(results, key=lambda result: result.id),
        tool_version=__version__,
        planned_requests=sum(case.requests for case in cases),
        planned_max_output_tokens=sum(case.max_output_tokens for case in cases),
    )
