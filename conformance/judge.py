"""From a case and its recorded exchanges to a verdict. Pure: no I/O, so a recorded run can be
judged again offline (`conformance recheck`) by exactly the code that judged it live.

A target's provider profile turns the failures its docs declare into deviations: each declared
deviation matches findings (by check, spec clause, case id and message), and a case whose every
failure is so explained is a `deviation`, not `failed`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from conformance.cases import Case, Step
from conformance.checks import run_checks
from conformance.checks.common import final_message, one_judgement
from conformance.checks.expect import check_expectations, status_problem
from conformance.imports import first_import
from conformance.model import CaseResult, Exchange, Finding, Outcome, Severity
from conformance.redact import SECRET_HEADERS
from conformance.retry import describe_answer, expected, transient_status

if TYPE_CHECKING:
    from conformance.specs.profiles import ProviderProfile


def step_history(exchanges: list[Exchange]) -> list[dict[str, Any]]:
    """What later steps may refer to: each step's final message and JSON body."""
    return [
        {"message": final_message(e.response), "response": e.response.json if e.response else None} for e in exchanges
    ]


def step_refused(step: Step, exchange: Exchange) -> bool:
    """True when the answer's status is not what the step expects: later steps cannot build on it."""
    response = exchange.response
    return response is None or status_problem(step.expect.get("status", 200), response.status, None) is not None


def findings_for(case: Case, exchanges: list[Exchange]) -> list[Finding]:
    """Every contract check on every exchange, plus each step's own expectations."""
    findings: list[Finding] = []
    history = step_history(exchanges)
    for exchange in exchanges:
        step = _step_of(case, exchange)
        if exchange.error or step is None:
            continue
        findings.extend(run_checks(exchange))
        findings.extend(check_expectations(exchange, step.expect, case.spec, history))
    return findings


def apply_profile(
    findings: list[Finding], case: Case, exchanges: list[Exchange], profile: ProviderProfile | None
) -> list[Finding]:
    """The findings with `deviation` set on each failure a deviation of the profile explains.

    The label is `<deviation id>: <description>`; notes and findings already marked are left as
    they are. `exchanges` is part of the signature so that matchers may one day look at the
    answer itself; today's match on the finding and the case alone.
    """
    if profile is None or not profile.deviations:
        return findings
    marked = []
    for finding in findings:
        if finding.severity is Severity.FAILURE and not finding.deviation:
            explained = next((d for d in profile.deviations if d.explains(finding, case.id)), None)
            if explained is not None:
                finding = dataclasses.replace(finding, deviation=explained.label)
        marked.append(finding)
    return marked


def decide(
    case: Case, findings: list[Finding], exchanges: list[Exchange], tries: list[int] | None = None
) -> tuple[Outcome, str]:
    """The verdict on a case from its exchanges and findings (see the verdict table).

    `tries[i]` is how many times exchange i was sent (retries included; 1 when not given). No answer,
    a transient answer (429, 529...) and a rejected key are `error`: they say nothing about the contract.
    A case whose only findings beyond notes are warnings is `warning`; any failure outweighs them.
    """
    for index, exchange in enumerate(exchanges):
        sent = tries[index] if tries else 1
        trouble = _no_verdict(case, exchange, sent)
        if trouble is not None:
            return Outcome.ERROR, trouble
    failures = [f for f in findings if f.severity is Severity.FAILURE]
    if not failures:
        warnings = [f for f in findings if f.severity is Severity.WARNING]
        return (Outcome.WARNING, warnings[0].message) if warnings else (Outcome.PASSED, "")
    if case.optional and _refused_cleanly(failures, exchanges):
        return Outcome.UNSUPPORTED, "the target refused this optional feature with a clean Anthropic error"
    if all(f.deviation for f in failures):
        return Outcome.DEVIATION, "; ".join(sorted({f.deviation or "" for f in failures}))
    return Outcome.FAILED, failures[0].message


def _times(sent: int) -> str:
    return "once" if sent == 1 else "twice" if sent == 2 else f"{sent} times"


def _no_verdict(case: Case, exchange: Exchange, sent: int) -> str | None:
    """Why an exchange allows no verdict on the contract (no answer, transient, key rejected), or None."""
    if exchange.error or exchange.response is None:
        error = exchange.error or "no response"
        return error if sent == 1 else f"{error} ({sent} attempts)"
    response = exchange.response
    step = _step_of(case, exchange)
    if step is None or expected(step.expect.get("status", 200), response):
        return None
    if transient_status(response):
        return f"the target answered {describe_answer(response)} {_times(sent)}: a transient answer, not a verdict"
    if rejected_key(case, exchange):
        return f"the target rejected the key: {describe_answer(response)} to a request carrying the run's credentials"
    return None


def rejected_key(case: Case, exchange: Exchange) -> bool:
    """A 401/403 to a request that carried the run's credentials as the target takes them.

    A step that sends no credentials, bad ones or another auth style (`auth: bearer`) tests the
    authentication itself: its 401 is a verdict, not a rejected key.
    """
    response, step = exchange.response, _step_of(case, exchange)
    if response is None or response.status not in (401, 403) or step is None:
        return False
    if step.request.auth is not True or expected(step.expect.get("status", 200), response):
        return False
    return any(name.lower() in SECRET_HEADERS for name in exchange.request.headers)


def _step_of(case: Case, exchange: Exchange) -> Step | None:
    """The case step that sent the exchange; None when the case has no such step."""
    return case.steps[exchange.step] if exchange.step < len(case.steps) else None


def _refused_cleanly(failures: list[Finding], exchanges: list[Exchange]) -> bool:
    """A 4xx whose only fault is being a refusal: the status expectation, nothing about its shape."""
    last = exchanges[-1].response if exchanges else None
    if last is None or not 400 <= last.status < 500:
        return False
    return all(f.check == "expect.status" for f in failures)


def usage_tokens(exchanges: list[Exchange]) -> tuple[int, int]:
    """Input and output tokens the target reported for Messages calls (count_tokens is free)."""
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


def case_result(case: Case, outcome: Outcome, reason: str = "", **fields: Any) -> CaseResult:
    """A CaseResult carrying the case's identity."""
    return CaseResult(
        id=case.id,
        feature=case.feature,
        outcome=outcome,
        tier=case.tier,
        spec_ref=case.spec,
        title=case.title,
        reason=reason,
        generated=case.generated,
        **fields,
    )


def judge(
    case: Case,
    exchanges: list[Exchange],
    duration: float = 0.0,
    profile: ProviderProfile | None = None,
    tries: list[int] | None = None,
) -> CaseResult:
    """The whole verdict on a case: findings (deviations marked by the profile), outcome, reason, cost.

    `tries` (one count per exchange) says how often each request was sent: see `decide`. Each stream is
    validated and folded once, however many checks, expectations and later steps read it. With a
    provider profile other than anthropic, `own_docs` judges the exchanges against the provider's own
    documented contract: the second axis, which leaves the outcome as it is.
    """
    with one_judgement():
        findings = apply_profile(findings_for(case, exchanges), case, exchanges, profile)
        outcome, reason = decide(case, findings, exchanges, tries)
        input_tokens, output_tokens = usage_tokens(exchanges)
    own_docs = None
    if profile is not None and profile.name != "anthropic":
        first_import("conformance.own_contract")  # openapi-core: only when needed
        from conformance.own_contract import own_contract, own_docs_verdict

        own_docs = own_docs_verdict(exchanges, own_contract(profile.contract_path))
    return case_result(
        case,
        outcome,
        reason,
        findings=findings,
        exchanges=exchanges,
        duration=duration,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        attempts=max(tries, default=1) if tries else 1,
        own_docs=own_docs,
    )
