"""Provider profiles decide between `failed` and `deviation`, end to end.

A variant of the reference server behaves as Cortecs documents: its streams end with
`data: [DONE]` and it accepts temperature up to 2. Run as provider cortecs, the cases that see
those differences are `deviation`; run as provider anthropic, the same answers are `failed`.
Against the plain reference server, provider cortecs passes: a deviation that does not occur is
not reported.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformance.cases import Case, load_cases
from conformance.judge import apply_profile, decide
from conformance.model import Exchange, Finding, Outcome, Request, Response, RunReport, Severity
from conformance.reference import ReferenceServer, create_app
from conformance.runner import run_suite
from conformance.specs.profiles import load_profile
from conformance.target import Target

API_KEY = "deviation-test-key"
STREAM_CASES = ("streaming.text", "streaming.stop-sequence", "streaming.max-tokens")
TEMPERATURE_CASE = "errors.temperature-out-of-range"
CLEAN_CASES = ("text.string-content", "errors.missing-model")
CASES = {case.id: case for case in load_cases()}


def cortecs_like(app: ASGIApp) -> ASGIApp:
    """The reference app as Cortecs documents its endpoint: temperature 0..2, streams end with [DONE]."""

    async def gateway(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("temperature"), (int, float)):
            payload["temperature"] = min(payload["temperature"], 1)  # accepted, as in 0..2
            body = json.dumps(payload).encode()
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        streaming = False

        async def sentinel(message: Message) -> None:
            nonlocal streaming
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                streaming = headers.get(b"content-type", b"").startswith(b"text/event-stream")
            elif message["type"] == "http.response.body" and streaming and not message.get("more_body", False):
                message = {**message, "body": message.get("body", b"") + b"data: [DONE]\n\n"}
            await send(message)

        await app(scope, replay, sentinel)

    return gateway


def run(cases: list[Case], provider: str, app: ASGIApp | None = None) -> RunReport:
    with ReferenceServer(app=app or create_app(API_KEY)) as server:
        target = Target(base_url=server.base_url, api_key=API_KEY, provider=provider, reference=True)
        return asyncio.run(run_suite(target, cases, concurrency=4))


@pytest.fixture(scope="module")
def broken_runs() -> Iterator[dict[str, RunReport]]:
    cases = [CASES[case_id] for case_id in (*STREAM_CASES, TEMPERATURE_CASE, *CLEAN_CASES)]
    app = cortecs_like(create_app(API_KEY))
    yield {provider: run(cases, provider, app) for provider in ("cortecs", "anthropic")}


def outcomes(report: RunReport) -> dict[str, Outcome]:
    return {result.id: result.outcome for result in report.results}


def test_documented_differences_are_deviations_for_cortecs(broken_runs):
    got = outcomes(broken_runs["cortecs"])
    for case_id in (*STREAM_CASES, TEMPERATURE_CASE):
        assert got[case_id] is Outcome.DEVIATION, (case_id, got[case_id])
    for case_id in CLEAN_CASES:
        assert got[case_id] is Outcome.PASSED, case_id
    results = {result.id: result for result in broken_runs["cortecs"].results}
    assert "done-sentinel: " in results["streaming.text"].reason
    assert "temperature-0-2: " in results[TEMPERATURE_CASE].reason
    marked = [f for f in results["streaming.text"].findings if f.severity is Severity.FAILURE]
    assert marked and all(f.deviation and f.deviation.startswith("done-sentinel:") for f in marked)
    assert broken_runs["cortecs"].summary()["deviation"] == len(STREAM_CASES) + 1


def test_the_same_answers_fail_for_anthropic(broken_runs):
    got = outcomes(broken_runs["anthropic"])
    for case_id in (*STREAM_CASES, TEMPERATURE_CASE):
        assert got[case_id] is Outcome.FAILED, (case_id, got[case_id])
    assert broken_runs["anthropic"].summary()["deviation"] == 0
    checks = {f.check for r in broken_runs["anthropic"].results if r.id in STREAM_CASES for f in r.findings}
    assert "stream.done-sentinel" in checks


def test_cortecs_against_the_plain_reference_server_passes():
    """Cortecs' documented deviations do not occur on the reference server; count_tokens is not claimed."""
    chosen = [CASES[c] for c in (*STREAM_CASES, TEMPERATURE_CASE, *CLEAN_CASES, "count_tokens.basic")]
    report = run(chosen, "cortecs")
    summary = report.summary()
    assert summary["failed"] == summary["error"] == summary["deviation"] == 0
    assert outcomes(report)["count_tokens.basic"] is Outcome.SKIPPED
    assert report.target.provider == "cortecs"


# --------------------------------------------------------------------------- apply_profile, pure


def _exchange(status: int = 200) -> Exchange:
    return Exchange(Request("POST", "http://x/v1/messages"), Response(status=status))


def test_apply_profile_marks_only_what_a_deviation_explains():
    profile = load_profile("openrouter")
    case = CASES["errors.missing-max-tokens"]
    findings = [
        Finding("expect.status", "expected HTTP 400, got 200", "messages.request.required"),
        Finding("headers.request-id", "no request-id header", "headers.request-id"),
        Finding("stream.unknown-event", "note", "stream.unknown-events", severity=Severity.NOTE),
    ]
    marked = apply_profile(findings, case, [_exchange()], profile)
    assert marked[0].deviation == profile.deviation("max-tokens-optional").label
    assert marked[1].deviation is None and marked[2].deviation is None
    assert findings[0].deviation is None  # pure: the input is left alone
    assert decide(case, marked, [_exchange()])[0] is Outcome.FAILED  # one failure is not explained
    outcome, reason = decide(case, marked[:1], [_exchange()])
    assert outcome is Outcome.DEVIATION and reason.startswith("max-tokens-optional: ")


def test_apply_profile_without_profile_or_deviations_changes_nothing():
    case = CASES[TEMPERATURE_CASE]
    findings = [Finding("expect.status", "expected HTTP 400, got 200", "messages.request.sampling")]
    assert apply_profile(findings, case, [], None) == findings
    assert apply_profile(findings, case, [], load_profile("anthropic")) == findings
    assert apply_profile(findings, CASES["text.string-content"], [], load_profile("cortecs")) == findings
