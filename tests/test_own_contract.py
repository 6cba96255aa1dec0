"""The second axis: each exchange judged against the provider's own documented contract."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

from rich.console import Console

from conformance.cases import load_cases
from conformance.model import CaseResult, Finding, Outcome, RunReport, Severity, TargetInfo
from conformance.own_contract import check_own_docs, own_contract, own_docs_verdict
from conformance.reference import ReferenceServer
from conformance.report.console import ConsoleReporter
from conformance.report.html import render_html
from conformance.report.matrix import build_matrix, matrix_to_dict, render_matrix_html, render_matrix_markdown
from conformance.runner import run_suite
from conformance.specs.profiles import load_profile
from conformance.target import Target
from tests.broken_variants import API_KEY, Broken
from tests.exchanges import count_tokens_exchange, error_exchange, message_exchange, stream_exchange, text_stream

LITELLM = own_contract(load_profile("litellm").contract_path)
OLLAMA = own_contract(load_profile("ollama").contract_path)
CASES = {case.id: case for case in load_cases()}
OPENAI_ERROR = {"error": {"message": "max_tokens: Field required", "type": "invalid_request_error", "param": None}}


def checks(exchange: Any, contract: Any = LITELLM) -> list[str]:
    found = check_own_docs(exchange, contract)
    assert found is not None, "the exchange should be documented"
    return [finding.check for finding in found]


def test_an_answer_as_the_provider_documents_it_has_no_finding() -> None:
    assert checks(message_exchange()) == []
    assert checks(error_exchange(status=400, body=OPENAI_ERROR)) == []


def test_a_stream_is_judged_event_by_event_against_the_declared_item_schema() -> None:
    assert checks(stream_exchange(text_stream())) == []
    broken = stream_exchange(text_stream())
    assert broken.response is not None and broken.response.events
    broken.response.events[0].json = {"type": "message_start", "message": {"type": "message"}}
    assert checks(broken) == ["own-docs.body"]


def test_a_stream_where_the_document_declares_none_or_under_another_status_is_a_finding() -> None:
    on_count_tokens = stream_exchange(text_stream())
    on_count_tokens.request.url += "/count_tokens"
    assert checks(on_count_tokens) == ["own-docs.content-type"]
    undeclared = stream_exchange(text_stream())
    assert undeclared.response is not None
    undeclared.response.status = 302
    assert checks(undeclared) == ["own-docs.status"]


def test_a_path_item_given_as_a_ref_to_the_canonical_contract_is_documented() -> None:
    """Portkey's and claude-code-router's documents declare their operations by a $ref to Anthropic's."""
    for provider in ("portkey", "claude-code-router"):
        contract = own_contract(load_profile(provider).contract_path)
        assert checks(message_exchange(), contract) == []
        assert checks(stream_exchange(text_stream()), contract) == []
        assert checks(count_tokens_exchange(), contract) == []


def test_an_undeclared_status_is_a_finding() -> None:
    # LiteLLM declares 200, 4XX and 5XX for /v1/messages; count_tokens only 200 and 4XX.
    exchange = count_tokens_exchange()
    assert exchange.response is not None
    exchange.response.status = 503
    assert checks(exchange) == ["own-docs.status"]


def test_an_undeclared_content_type_is_a_finding() -> None:
    exchange = message_exchange()
    assert exchange.response is not None
    exchange.response.headers["content-type"] = "text/plain"
    assert checks(exchange) == ["own-docs.content-type"]


def test_a_body_that_breaks_the_provider_schema_is_a_finding() -> None:
    exchange = message_exchange()
    assert exchange.response is not None
    exchange.response.json = {"type": "message"}
    exchange.response.text = json.dumps(exchange.response.json)
    found = check_own_docs(exchange, LITELLM)
    assert found and found[0].check == "own-docs.body" and "required" in found[0].message


def test_a_required_key_whose_schema_allows_null_sent_absent_is_a_warning_on_this_axis_too() -> None:
    """As on the Anthropic axis (conformance.checks.nullable): the clients read an absent nullable key as null."""
    exchange = message_exchange()
    assert exchange.response is not None and isinstance(exchange.response.json, dict)
    del exchange.response.json["stop_sequence"]
    exchange.response.text = json.dumps(exchange.response.json)
    found = check_own_docs(exchange, LITELLM)
    assert found and [(f.check, f.severity) for f in found] == [("own-docs.body", Severity.WARNING)]
    assert "'stop_sequence'" in found[0].message and "allows null" in found[0].message
    assert own_docs_verdict([exchange], LITELLM)["outcome"] == "passed"
    stream = stream_exchange(text_stream())
    assert stream.response is not None and stream.response.events
    delta = next(event for event in stream.response.events if event.type == "message_delta")
    del delta.json["delta"]["stop_sequence"]
    found = check_own_docs(stream, LITELLM)
    assert found and [f.severity for f in found] == [Severity.WARNING] and "'delta.stop_sequence'" in found[0].message
    exchange.response.json.pop("type")  # not nullable: a failure, whatever else is missing
    exchange.response.text = json.dumps(exchange.response.json)
    found = check_own_docs(exchange, LITELLM)
    assert found and [f.severity for f in found] == [Severity.FAILURE]
    assert own_docs_verdict([exchange], LITELLM)["outcome"] == "failed"


def test_an_operation_the_provider_does_not_document_is_not_documented() -> None:
    # Ollama documents /v1/messages only.
    assert check_own_docs(count_tokens_exchange(), OLLAMA) is None
    assert own_docs_verdict([count_tokens_exchange()], OLLAMA)["outcome"] == "not-documented"
    assert own_docs_verdict([message_exchange()], None)["outcome"] == "not-documented"


def test_a_report_written_before_the_second_axis_still_loads_and_the_axis_round_trips() -> None:
    old = {"id": "x.y", "feature": "x", "outcome": "passed"}
    assert CaseResult.from_dict(old).own_docs is None
    assert "own_docs" not in CaseResult.from_dict(old).to_dict()
    verdict = own_docs_verdict([count_tokens_exchange(), message_exchange(status=418)], LITELLM)
    result = CaseResult(id="x.y", feature="x", outcome=Outcome.FAILED, own_docs=verdict)
    again = CaseResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.own_docs == verdict and verdict["outcome"] == "failed"


class OpenAIStyleErrors(Broken):
    """Answers errors as LiteLLM documents them: {error: {message, type, param}}, not Anthropic's envelope."""

    def json(self, path: str, status: int, body: Any) -> tuple[int, Any]:
        if status >= 400 and isinstance(body, dict):
            return status, {"error": {"message": body["error"]["message"], "type": None, "param": None}}
        return status, body


class ErrorsAsTeapot(Broken):
    """Answers errors with a status and body no document declares."""

    def json(self, path: str, status: int, body: Any) -> tuple[int, Any]:
        return (299, ["not", "an", "object"]) if status >= 400 else (status, body)


def run_as_litellm(app: Broken, case_ids: list[str]) -> RunReport:
    with ReferenceServer(app=app) as server:
        target = Target(base_url=server.base_url, api_key=API_KEY, provider="litellm", auth="x-api-key")
        return asyncio.run(run_suite(target, [CASES[case] for case in case_ids], concurrency=2))


def test_a_gateway_that_behaves_as_it_documents_reads_own_docs_passed_and_one_that_breaks_them_failed() -> None:
    cases = ["errors.missing-max-tokens", "text.basic"] if "text.basic" in CASES else ["errors.missing-max-tokens"]
    as_documented = {r.id: r for r in run_as_litellm(OpenAIStyleErrors(), cases).results}
    error_case = as_documented["errors.missing-max-tokens"]
    assert error_case.outcome in (Outcome.DEVIATION, Outcome.FAILED), error_case.reason
    assert error_case.own_docs is not None and error_case.own_docs["outcome"] == "passed", error_case.own_docs
    broken = run_as_litellm(ErrorsAsTeapot(), ["errors.missing-max-tokens"]).results[0]
    assert broken.own_docs is not None and broken.own_docs["outcome"] == "failed"
    assert {f.check for f in broken.own_docs["findings"]} == {"own-docs.status"}


def test_an_anthropic_run_has_no_second_axis() -> None:
    with ReferenceServer(api_key=API_KEY) as server:
        target = Target(base_url=server.base_url, api_key=API_KEY)
        report = asyncio.run(run_suite(target, [CASES["errors.missing-max-tokens"]], concurrency=1))
    assert report.results[0].own_docs is None


def provider_report(provider: str, *results: CaseResult) -> RunReport:
    return RunReport(
        target=TargetInfo(base_url="http://127.0.0.1:9", provider=provider),
        started_at="2026-12-07T19:00:00Z",
        finished_at="2026-12-07T19:00:01Z",
        results=list(results),
    )


AS_DOCUMENTED = CaseResult(
    id="errors.missing-max-tokens",
    feature="errors",
    outcome=Outcome.DEVIATION,
    own_docs={"outcome": "passed", "findings": []},
)
BREAKS_ITS_DOCS = CaseResult(
    id="errors.missing-max-tokens",
    feature="errors",
    outcome=Outcome.FAILED,
    own_docs={"outcome": "failed", "findings": [Finding("own-docs.status", "status 299 is not declared")]},
)


def test_the_console_html_and_matrix_show_the_second_axis() -> None:
    report = provider_report("litellm", AS_DOCUMENTED)
    buffer = io.StringIO()
    ConsoleReporter(Console(file=buffer, width=120)).finish(report, {})
    assert "as litellm's own docs say: 1 passed, 0 failed, 0 not documented" in buffer.getvalue()

    html = render_html(report)
    assert 'data-own-docs="passed"' in html and "as litellm&#39;s own docs say" in html
    assert 'data-own-docs="failed"' in render_html(provider_report("litellm", BREAKS_ITS_DOCS))

    matrix = build_matrix([("a/report.json", report), ("b/report.json", provider_report("x", BREAKS_ITS_DOCS))])
    cells = {row["name"]: row["cells"] for row in matrix_to_dict(matrix)["rows"]}["errors"]
    assert [cell["own_docs"] for cell in cells] == [
        {"passed": 1, "failed": 0, "not-documented": 0},
        {"passed": 0, "failed": 1, "not-documented": 0},
    ]
    markdown = render_matrix_markdown(matrix)
    assert "own docs: passed 1" in markdown and "own docs: failed 1" in markdown
    page = render_matrix_html(matrix)
    assert 'data-own-docs="passed"' in page and 'data-own-docs="failed"' in page


def test_a_report_without_the_second_axis_shows_none_of_it() -> None:
    plain = CaseResult(id="text.basic", feature="text", outcome=Outcome.PASSED)
    report = provider_report("anthropic", plain)
    buffer = io.StringIO()
    ConsoleReporter(Console(file=buffer, width=120)).finish(report, {})
    assert "own docs" not in buffer.getvalue() and "data-own-docs" not in render_html(report)
    assert "own docs" not in render_matrix_markdown(build_matrix([("a/report.json", report)]))
