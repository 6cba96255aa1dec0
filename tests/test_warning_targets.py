"""Whole runs of the catalogue: behaviour the docs allow but do not promise warns, a broken stream still fails,
and the reference server passes everything without a warning."""

from __future__ import annotations

import asyncio

from conformance.cases import load_cases
from conformance.model import Outcome, RunReport, Severity
from conformance.reference import ReferenceServer
from conformance.runner import run_suite
from conformance.target import Target
from tests.broken_variants import API_KEY, DropBlockStop, DropPings, lax_target

CASES = load_cases()


def run(app=None) -> RunReport:
    with ReferenceServer(api_key=API_KEY, app=app) as server:
        target = Target(base_url=server.base_url, api_key=API_KEY)
        return asyncio.run(run_suite(target, CASES, concurrency=4))


WEIGHT = {Outcome.FAILED: Severity.FAILURE, Outcome.WARNING: Severity.WARNING}


def outcomes(report: RunReport, outcome: Outcome) -> dict[str, set[str]]:
    """The cases with `outcome` (failed or warning), each with the checks of its findings that weigh as much."""
    return {
        result.id: {f.check for f in result.findings if f.severity is WEIGHT[outcome]}
        for result in report.results
        if result.outcome is outcome
    }


def test_a_target_that_drops_every_ping_gets_warnings_and_no_failure() -> None:
    report = run(DropPings())
    assert report.summary()["failed"] == report.summary()["error"] == 0
    assert outcomes(report, Outcome.WARNING) == {
        "streaming.keepalive": {"expect.max_event_gap"},
        "streaming.pings": {"expect.min_events"},
    }


def test_a_target_doing_all_the_docs_allow_fails_only_the_cases_about_what_they_promise() -> None:
    """No pings, no request-id, no retry-after, stop_sequence absent instead of null: the docs promise only
    the request-id ("Every API response includes a unique request-id header"), so only its cases fail."""
    report = run(lax_target())
    assert outcomes(report, Outcome.FAILED) == {
        "headers.request-id": {"expect.headers"},
        "headers.request-id-on-error": {"expect.headers"},
    }
    assert report.summary()["error"] == 0
    warned = outcomes(report, Outcome.WARNING)
    assert warned["headers.content-type-stream"] == {"headers.request-id", "schema.stream-event"}
    assert warned["errors.rate-limited"] == {"expect.headers", "headers.request-id"}
    assert warned["text.string-content"] == {"headers.request-id", "schema.message"}
    assert set(warned) | {"headers.request-id", "headers.request-id-on-error"} == {r.id for r in report.results} - {
        r.id for r in report.results if r.outcome is Outcome.SKIPPED
    }


def test_a_target_that_breaks_the_stream_grammar_still_fails() -> None:
    report = run(DropBlockStop())
    failed = outcomes(report, Outcome.FAILED)
    assert "stream.grammar" in failed["streaming.text"]


def test_the_reference_server_passes_everything_without_a_warning() -> None:
    summary = run().summary()
    assert summary["passed"] == len(CASES)
    assert summary["failed"] == summary["warning"] == summary["error"] == 0
