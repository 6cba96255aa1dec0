"""The claude-code client case set (cases/clients/claude-code.yaml): shaped like Claude Code
2.1.197's requests, green against the reference server, selected by the claude-code profile."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from conformance.cases import CaseError, load_cases, load_file
from conformance.consumers import get_profile
from conformance.filler import filler
from conformance.reference import ReferenceServer
from conformance.runner import run_suite
from conformance.target import Target

KEY = "claude-code-cases-key"
CASES = [case for case in load_cases() if case.feature == "clients.claude-code"]
BETA = "mid-conversation-system-2026-04-07"


def posts() -> list[dict]:
    return [step.request.__dict__ for case in CASES for step in case.steps if step.request.method == "POST"]


def test_the_set_runs_green_against_the_reference_server() -> None:
    with ReferenceServer(api_key=KEY) as server:
        target = Target(base_url=server.base_url, api_key=KEY, reference=True)
        report = asyncio.run(run_suite(target, CASES))
    assert {r.id: (r.outcome.value, r.reason) for r in report.results if r.outcome.value != "passed"} == {}
    assert len(report.results) == len(CASES) >= 5


def test_the_requests_have_claude_codes_structure_and_size() -> None:
    requests = posts()
    assert all(request["endpoint"] == "/v1/messages?beta=true" for request in requests)
    for request in requests:
        body, headers = request["body"], request["headers"]
        assert 60_000 <= len(json.dumps(body)) <= 120_000
        assert len(body["tools"]) == 24 and len(body["system"]) == 3
        assert 5 <= len(headers["anthropic-beta"].split(",")) <= 8
        assert headers["accept-encoding"] == "gzip, deflate, br, zstd" and headers["x-app"] == "cli"
        assert body["context_management"] == {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
        system_role = any(message["role"] == "system" for message in body["messages"])
        assert system_role == (BETA in headers["anthropic-beta"])
    thinking = [request["body"]["thinking"] for request in requests]
    assert {"type": "adaptive"} in thinking and {"type": "enabled", "budget_tokens": 31999} in thinking
    assert any(request["body"].get("output_config") == {"effort": "high"} for request in requests)
    probe = next(case for case in CASES if case.steps[0].request.method == "HEAD")
    assert probe.steps[0].request.endpoint == "/"


def test_the_claude_code_profile_selects_the_set() -> None:
    profile = get_profile("claude-code")
    assert profile.select(CASES) == CASES


def test_the_system_role_needs_its_beta() -> None:
    first_turn = next(case for case in CASES if case.id == "clients.claude-code.first-turn").steps[0].request
    headers = {**first_turn.headers, "x-api-key": KEY, "content-type": "application/json"}
    without = {**headers, "anthropic-beta": headers["anthropic-beta"].replace(BETA + ",", "")}
    body = {**first_turn.body, "model": "claude-opus-4-8", "stream": False}
    with ReferenceServer(api_key=KEY) as server:
        url = server.base_url + first_turn.endpoint
        assert httpx.post(url, json=body, headers=headers, timeout=30).status_code == 200
        refused = httpx.post(url, json=body, headers=without, timeout=30)
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert "messages.1.role" in refused.json()["error"]["message"]


def test_filler_is_exact_deterministic_and_inert() -> None:
    text = filler(5000, seed=3)
    assert len(text.encode()) == 5000 and text == filler(5000, seed=3) != filler(5000, seed=4)
    assert not {"use", "call", "tool", "reply", "simulate", "count"} & set(text.lower().replace(".", " ").split())
    assert filler(0) == ""


@pytest.mark.parametrize(
    "value", ["{$text: 40}", "{$text: {bytes: x}}", "{$text: {bytes: 4, size: 1}}", "{$text: {bytes: -1}}"]
)
def test_a_malformed_text_generator_is_a_case_error(tmp_path, value: str) -> None:
    path = tmp_path / "x.yaml"
    body = f"{{model: $model, max_tokens: 8, messages: [{{role: user, content: {value}}}]}}"
    path.write_text(f"cases: [{{id: x.y, feature: x, spec: s, request: {{body: {body}}}}}]\n")
    with pytest.raises(CaseError, match=r"\$text"):
        load_file(path, {})
