"""Judging a scenario (pure): how its client ended, and what the proxy's report says of the exchanges
the scenario's requests were tagged with. A scenario fails when the client errored, when the
upstream refused anything (any 4xx/5xx, or no answer at all), when any check failed, when no
request reached the proxy, or (when all that went well) when its traffic lacks what the scenario
is about: a stream, a tool round trip, thinking, count_tokens."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from conformance.clients.scenarios import COUNT_TOKENS, STREAM, TAG_HEADER, THINKING, TOOL_ROUND_TRIP, Scenario
from conformance.model import CaseResult, Exchange, Outcome, RunReport, Severity
from conformance.proxy.judging import CLIENT_VISIBLE_CHECK, UPSTREAM_CHECK
from conformance.report.evidence import one_line

# Exchanges whose request carried no scenario tag (or an unknown one) are judged under this name.
UNTAGGED = "(untagged)"
# The proxy's findings that say what the client saw of a refusal (an error status, or its own 502
# when the upstream was unreachable): counted once, as the refusal.
PROXY_SAYS_REFUSED = (UPSTREAM_CHECK, CLIENT_VISIBLE_CHECK)


@dataclass(frozen=True)
class ClientRun:
    """How a client process ended: its exit code (None when it was stopped after its timeout) and
    what it printed (stdout and stderr together)."""

    returncode: int | None
    output: str
    timeout: float = 0.0


@dataclass
class ScenarioOutcome:
    """The verdict on one scenario, with the counts the table shows and one line per problem."""

    scenario: Scenario
    version: str
    models: list[str] = field(default_factory=list)
    exchanges: int = 0
    refused: int = 0
    failed_checks: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def tag_of(result: CaseResult) -> str | None:
    for exchange in result.exchanges:
        for name, value in exchange.request.headers.items():
            if name.lower() == TAG_HEADER:
                return value.strip()
    return None


def results_by_tag(report: RunReport) -> dict[str | None, list[CaseResult]]:
    """The proxy's results grouped by the scenario tag of their request (None: no tag)."""
    grouped: dict[str | None, list[CaseResult]] = {}
    for result in report.results:
        grouped.setdefault(tag_of(result), []).append(result)
    return grouped


def _request_line(exchange: Exchange) -> str:
    parts = urlsplit(exchange.request.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{exchange.request.method} {path}"


def _refusal(exchange: Exchange) -> str | None:
    """What the upstream refused, as one line: status, error type and message; None when it answered."""
    response = exchange.response
    if response is None:
        return f"{_request_line(exchange)}: no answer ({one_line(exchange.error or 'no response')})"
    if response.status < 400:
        return None
    error = response.json.get("error") if isinstance(response.json, dict) else None
    said = f"{error.get('type')}: {error.get('message')}" if isinstance(error, dict) else response.text or "(no body)"
    return f"{_request_line(exchange)} -> {response.status} {one_line(said)}"


def _failed_findings(result: CaseResult, refused: bool) -> list[str]:
    """One line per failed check of a result; of a refused exchange, not the proxy's own word that the
    client saw the refusal (the refusal's line says it already)."""
    if result.outcome not in (Outcome.FAILED, Outcome.ERROR):
        return []
    failures = [
        finding
        for finding in result.findings
        if finding.severity is Severity.FAILURE and not (refused and finding.check in PROXY_SAYS_REFUSED)
    ]
    lines = [f"{result.id} ({result.title}) {finding.check}: {one_line(finding.message)}" for finding in failures]
    if lines or refused:
        return lines
    return [f"{result.id} ({result.title}) {result.outcome.value}: {one_line(result.reason or '')}"]


def _stream_blocks(exchange: Exchange) -> Iterable[dict]:
    response = exchange.response
    if response is None:
        return []
    if response.events is not None:
        return [
            event.json["content_block"]
            for event in response.events
            if event.type == "content_block_start" and isinstance(event.json.get("content_block"), dict)
        ]
    content = response.json.get("content") if isinstance(response.json, dict) else None
    return [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []


def _answers_a_tool_call(exchange: Exchange) -> bool:
    body = exchange.request.body
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(block, dict) and block.get("type") == "tool_result" for block in content
        ):
            return True
    return False


EXPECTATIONS = {
    STREAM: lambda exchange: exchange.response is not None and exchange.response.is_stream,
    THINKING: lambda exchange: any(block.get("type") == "thinking" for block in _stream_blocks(exchange)),
    TOOL_ROUND_TRIP: _answers_a_tool_call,
    COUNT_TOKENS: lambda exchange: urlsplit(exchange.request.url).path.endswith("/v1/messages/count_tokens"),
}


def missing_expectations(scenario: Scenario, results: list[CaseResult]) -> list[str]:
    exchanges = [exchange for result in results for exchange in result.exchanges]
    return [
        f"the traffic shows no {expectation}"
        for expectation in scenario.expects
        if not any(EXPECTATIONS[expectation](exchange) for exchange in exchanges)
    ]


def claude_code_problems(run: ClientRun) -> list[str]:
    """Claude Code's own verdict: the `--output-format json` result it printed last (`is_error`)."""
    if run.returncode is None:
        return [f"claude did not finish within {run.timeout:g} s"]
    result = None
    for line in reversed(run.output.splitlines()):
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict) and parsed.get("type") == "result":
            result = parsed
            break
    if result is None:
        last = (run.output.strip().splitlines() or ["(nothing)"])[-1]
        return [f"claude printed no JSON result (exit code {run.returncode}): {one_line(last)}"]
    if result.get("is_error") is not False:
        return [f"claude answered is_error: true: {one_line(str(result.get('result')))}"]
    if run.returncode != 0:
        return [f"claude exited with code {run.returncode}"]
    return []


def script_problems(run: ClientRun) -> list[str]:
    """An SDK script's verdict: exit 0, or one line on stderr saying what went wrong."""
    if run.returncode is None:
        return [f"the script did not finish within {run.timeout:g} s"]
    if run.returncode == 0:
        return []
    last = (run.output.strip().splitlines() or ["(nothing)"])[-1]
    return [f"exit code {run.returncode}: {one_line(last)}"]


def judge_scenario(
    scenario: Scenario, version: str, results: list[CaseResult], client_problems: list[str] | None
) -> ScenarioOutcome:
    """The scenario's outcome from its client's problems (None: no client ran, as for untagged
    exchanges) and the proxy's results for its requests."""
    outcome = ScenarioOutcome(scenario, version, exchanges=len(results))
    outcome.problems += client_problems or []
    if client_problems is not None and not results:
        outcome.problems.append("no request reached the proxy")
    for result in results:
        for exchange in result.exchanges:
            body = exchange.request.body
            model = body.get("model") if isinstance(body, dict) else None
            if isinstance(model, str) and model not in outcome.models:
                outcome.models.append(model)
            refusal = _refusal(exchange)
            if refusal is not None:
                outcome.refused += 1
                outcome.problems.append(refusal)
        failed = _failed_findings(result, refused=any(_refusal(exchange) for exchange in result.exchanges))
        outcome.failed_checks += len(failed)
        outcome.problems += failed
    if client_problems is not None and results and not outcome.problems:  # else it would only repeat them
        outcome.problems += missing_expectations(scenario, results)
    return outcome


def judge_client(
    client: str, version: str, runs: list[tuple[Scenario, list[str]]], report: RunReport
) -> list[ScenarioOutcome]:
    """Every scenario of one client (with its client's problems) against the proxy's report of that
    client's session; exchanges no scenario claims are judged as one more, untagged row."""
    grouped = results_by_tag(report)
    outcomes = [
        judge_scenario(scenario, version, grouped.pop(scenario.tag, []), problems) for scenario, problems in runs
    ]
    untagged = [result for results in grouped.values() for result in results]
    if untagged:
        outcomes.append(judge_scenario(Scenario(client, UNTAGGED, "-"), version, untagged, None))
    return outcomes
