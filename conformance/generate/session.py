"""A run with generated cases: every case through the runner and the judge, then each generated
failure shrunk and exported, and the report told how the generated cases were made and what
they cost."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.generate.plan import Plan
from conformance.model import CaseResult, Outcome, RunReport
from conformance.redact import Redactor
from conformance.retry import RetryPolicy
from conformance.runner import ResultCallback, Runner, StartCallback, Stop, run_suite, target_transport
from conformance.target import Target
from conformance.transport import Limits

if TYPE_CHECKING:
    from conformance.generate.build import GeneratedCase


async def run_plan(
    target: Target,
    plan: Plan,
    limits: Limits | None = None,
    concurrency: int = 4,
    on_result: ResultCallback | None = None,
    out_dir: Path | None = None,
    *,
    retry: RetryPolicy | None = None,
    stop: Stop | None = None,
    redactor: Redactor | None = None,
    on_start: StartCallback | None = None,
    durations: dict[str, float] | None = None,
) -> RunReport:
    """Run the plan's cases (the slowest first, with `durations`); with generated ones, shrink and export
    (under `out_dir`) their failures.

    An interrupted run shrinks nothing (more): its report is written as soon as possible.
    """
    report = await run_suite(
        target,
        plan.all_cases,
        limits,
        concurrency,
        on_result,
        retry=retry,
        stop=stop,
        redactor=redactor,
        on_start=on_start,
        durations=durations,
    )
    if plan.options is None:
        return report
    from conformance.generate.export import clear_exports, export_failure  # schemathesis only when generating
    from conformance.generate.shrink import Allowance, shrink

    generation = plan.metadata()
    if report.interrupted:
        report.generation = generation
        return report
    results = {result.id: result for result in report.results}
    failing = [g for g in plan.generated if results[g.case.id].outcome is Outcome.FAILED]
    requests, tokens = plan.shrink_allowance()
    allowance = Allowance(requests=requests, output_tokens=tokens)
    exported: list[dict[str, Any]] = []
    clear_exports(out_dir or Path("."))
    if failing:
        async with target_transport(target, limits, redactor) as transport:
            runner = Runner(target, transport, concurrency=1, retry=retry)

            async def attempt(candidate: GeneratedCase) -> CaseResult:
                return await runner.run_case(candidate.case)

            for generated in failing:
                if stop is not None and stop.reason:
                    break  # interrupted while shrinking: keep what is exported so far
                smallest, result = await shrink(
                    generated, results[generated.case.id], attempt, allowance, plan.options.shrink_requests
                )
                paths = export_failure(smallest, result, target, plan.options.seed, out_dir or Path("."))
                exported.append({"id": generated.case.id, "shrunk": smallest.case.id, **paths})
    generation["shrink"] = {
        "requests": allowance.spent_requests,
        "input_tokens": allowance.input_tokens,
        "output_tokens": allowance.output_tokens_used,
    }
    generation["failures"] = exported
    report.generation = generation
    return report
