"""Plan -> execute -> results. The runner sends and records; conformance.judge gives the verdict."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from conformance import __version__
from conformance.cases import Case, CaseError, Step, resolve
from conformance.judge import case_result, judge, step_history, step_refused
from conformance.model import CaseResult, Exchange, Outcome, Request, RunReport
from conformance.redact import Redactor
from conformance.target import Target, TargetError
from conformance.transport import Limits, Transport

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
    # A raw body is sent as written but for `$model`, so that only the flaw it is about differs.
    raw_body = spec.raw_body.replace("$model", target.model) if spec.raw_body is not None else None
    return Request(method=spec.method, url=target.url(spec.endpoint), headers=headers, body=body, raw_body=raw_body)


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
        """Send the case's steps in order and judge what came back."""
        started = time.monotonic()
        missing = case.requires - self.target.capabilities if self.target.capabilities is not None else set()
        if missing:
            return case_result(case, Outcome.SKIPPED, f"the target does not claim: {', '.join(sorted(missing))}")
        exchanges: list[Exchange] = []
        for index, step in enumerate(case.steps):
            try:
                request = build_request(self.target, step, step_history(exchanges))
            except (CaseError, TargetError) as exc:
                return case_result(case, Outcome.ERROR, f"step {index} could not be built: {exc}", exchanges=exchanges)
            exchange = await self.transport.send(request, step=index)
            exchanges.append(exchange)
            if exchange.error or step_refused(step, exchange):
                break  # later steps build on this answer, which is not what they need
        return judge(case, exchanges, duration=time.monotonic() - started, profile=self.target.profile)


def target_transport(target: Target, limits: Limits | None = None) -> Transport:
    """A transport for the target that keeps its API key out of everything it records."""
    return Transport(limits=limits, redactor=Redactor(secrets=[target.api_key] if target.api_key else []))


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


async def run_suite(
    target: Target,
    cases: list[Case],
    limits: Limits | None = None,
    concurrency: int = 4,
    on_result: ResultCallback | None = None,
) -> RunReport:
    """Run the cases against the target and return the whole report (in case-id order)."""
    started_at = now_iso()
    async with target_transport(target, limits) as transport:
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
