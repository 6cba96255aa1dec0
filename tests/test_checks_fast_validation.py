"""The fast validator changes no finding: real recordings, every broken variant and a whole catalogue run
are judged with the fast path on and off, and the findings must be the same, message for message.

The checks validate with jsonschema_rs first and only send what it rejects to jsonschema
(conformance.checks.validation); with `precise_only()` every instance goes to jsonschema, as it
did before the fast path existed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from conformance.cases import Case, load_cases
from conformance.checks import run_checks, validation
from conformance.checks.common import stream_problems
from conformance.judge import findings_for
from conformance.model import CaseResult, Exchange, Finding, Request, Response, SSEEvent
from conformance.reference import ReferenceServer
from conformance.report.evidence import EvidenceBudget
from conformance.runner import Runner, target_transport
from conformance.target import Target
from tests.broken_variants import API_KEY, VARIANTS
from tests.test_checks_recorded import FILES, RECORDED, load

CASES = {case.id: case for case in load_cases()}
# Large enough that no evidence is cut: the exchanges judged here are whole.
WHOLE = 10**12


def both_ways(judge_once) -> tuple[list[Finding], list[Finding]]:
    fast = judge_once()
    with validation.precise_only():
        precise = judge_once()
    return fast, precise


def run_whole(target: Target, cases: list[Case]) -> list[CaseResult]:
    """The cases' results with their exchanges whole (no evidence budget)."""

    async def go() -> list[CaseResult]:
        async with target_transport(target) as transport:
            runner = Runner(target, transport, concurrency=4)
            runner.kept = EvidenceBudget(WHOLE)
            return await runner.run(cases)

    return asyncio.run(go())


def assert_same_findings(results: list[CaseResult]) -> int:
    """Judge each result's exchanges both ways; return how many findings were compared."""
    compared = 0
    for result in results:
        case = CASES[result.id]
        fast, precise = both_ways(lambda case=case, result=result: findings_for(case, result.exchanges))
        assert fast == precise, result.id
        compared += len(fast)
    return compared


def test_recorded_traffic_is_judged_the_same_both_ways() -> None:
    if not FILES:
        pytest.skip(f"no recorded traffic at {RECORDED}")
    exchanges = [exchange for path in FILES for exchange in load(path)]
    for position, exchange in enumerate(exchanges):
        fast, precise = both_ways(lambda exchange=exchange: run_checks(exchange))
        assert fast == precise, f"exchange {position}"


@pytest.mark.slow
def test_a_whole_catalogue_run_is_judged_the_same_both_ways() -> None:
    with ReferenceServer(api_key=API_KEY) as server:
        results = run_whole(Target(base_url=server.base_url, api_key=API_KEY, reference=True), list(CASES.values()))
    assert len(results) == len(CASES)
    assert_same_findings(results)


def _variant_runs() -> Iterator[list[CaseResult]]:
    for catch in VARIANTS:
        with ReferenceServer(app=catch.variant()) as server:
            target = Target(base_url=server.base_url, api_key=API_KEY)
            yield run_whole(target, [CASES[case] for case in catch.cases])


@pytest.mark.slow
def test_every_broken_variant_is_judged_the_same_both_ways() -> None:
    compared = sum(assert_same_findings(results) for results in _variant_runs())
    assert compared >= len(VARIANTS)  # the variants are caught, so there are findings to compare


def _stream(*payloads: str) -> Exchange:
    events = [SSEEvent(None, data, json=json.loads(data)) for data in payloads]
    request = Request("POST", "http://127.0.0.1:1/v1/messages", body={"stream": True})
    return Exchange(request, Response(200, {"content-type": "text/event-stream"}, events=events))


INVALID_EVENTS = (
    '{"type": "content_block_delta", "index": "0", "delta": {"type": "text_delta", "text": "a"}}',
    '{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}}',
    '{"type": "message_delta", "delta": {"stop_reason": "finished"}, "usage": {"output_tokens": -1}}',
    '{"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "x", "name": "a b"}}',
    '{"type": "error", "error": {"type": 5, "message": null}}',
)


@pytest.mark.parametrize("payload", INVALID_EVENTS)
def test_the_fast_validator_lets_no_invalid_event_through(payload: str) -> None:
    """What the fast validator rejects goes to the precise one, so a problem found means it was rejected."""
    exchange = _stream(payload)
    assert stream_problems(exchange.response.events)[0], "the event is invalid"
