"""The whole catalogue against the reference server, and what capabilities and tiers select.

The reference server implements everything the catalogue asks of a faithful endpoint, so every
case of every tier passes against it; a target that claims fewer capabilities gets the cases it
cannot serve skipped, each with its reason.
"""

from __future__ import annotations

import asyncio

import pytest

from conformance.cases import ANSWER_CAPABILITIES, CAPABILITIES, Case, load_cases, select, tiers_up_to
from conformance.model import Outcome, RunReport
from conformance.reference import ReferenceServer
from conformance.runner import run_suite
from conformance.target import Target

API_KEY = "catalogue-key"
CASES = load_cases()
# What a full core run may cost at most: it runs on every change of a gateway, so it stays cheap.
CORE_MAX_REQUESTS = 250
CORE_MAX_OUTPUT_TOKENS = 20_000


def run(cases: list[Case], capabilities: frozenset[str] | None = None) -> RunReport:
    with ReferenceServer(api_key=API_KEY) as server:
        target = Target(base_url=server.base_url, api_key=API_KEY, capabilities=capabilities, reference=True)
        return asyncio.run(run_suite(target, cases, concurrency=8))


@pytest.fixture(scope="module")
def full_run() -> RunReport:
    return run(CASES)


def test_every_case_of_every_tier_passes_against_the_reference_server(full_run: RunReport) -> None:
    outcomes = {result.id: (result.outcome.value, result.reason) for result in full_run.results}
    assert {id_: outcome for id_, (outcome, _) in outcomes.items() if outcome != "passed"} == {}
    assert len(outcomes) == len(CASES)


def test_the_run_asks_only_what_the_cases_plan(full_run: RunReport) -> None:
    summary = full_run.summary()
    assert summary["requests"] == full_run.planned_requests == sum(case.requests for case in CASES)
    assert 0 < summary["output_tokens"] <= full_run.planned_max_output_tokens


def test_a_target_without_an_instruction_following_model_still_runs_every_structural_case() -> None:
    claimed = frozenset(CAPABILITIES) - ANSWER_CAPABILITIES
    report = run(select(CASES, tiers_up_to("core")), claimed)
    for result in report.results:
        case = next(case for case in CASES if case.id == result.id)
        if case.requires & ANSWER_CAPABILITIES:
            assert result.outcome is Outcome.SKIPPED
            assert any(name in result.reason for name in case.requires & ANSWER_CAPABILITIES), result.reason
        else:
            assert result.outcome is Outcome.PASSED, (result.id, result.reason)
    assert sum(result.outcome is Outcome.PASSED for result in report.results) >= 60


def test_a_capability_not_claimed_skips_its_cases_with_the_reason() -> None:
    cases = select(CASES, keyword="vision.*,count_tokens.basic")
    report = run(cases, frozenset({"count_tokens"}))
    outcomes = {result.id: result for result in report.results}
    assert outcomes["count_tokens.basic"].outcome is Outcome.PASSED
    assert outcomes["vision.image-jpeg"].outcome is Outcome.SKIPPED
    assert "vision" in outcomes["vision.image-jpeg"].reason


def test_smoke_fits_in_ten_requests_and_core_stays_cheap() -> None:
    smoke = select(CASES, tiers_up_to("smoke"))
    assert sum(case.requests for case in smoke) <= 10
    core = select(CASES, tiers_up_to("core"))
    assert sum(case.requests for case in core) <= CORE_MAX_REQUESTS
    assert sum(case.max_output_tokens for case in core) <= CORE_MAX_OUTPUT_TOKENS
