"""The claude-code client case sets: cases/clients/claude-code.yaml (Claude Code 2.1.337's recorded
requests) and claude-code-2.1.197.yaml (the older client's), each green against the reference
server and selected by its own profile."""

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
OLDER = [case for case in load_cases() if case.feature == "clients.claude-code-2-1-197"]
OLDER_BETA = "mid-conversation-system-2026-04-07"
CURRENT_BETAS = {
    "per-turn-control-2026-07-01",
    "mid-conversation-tool-changes-2026-07-01",
    "advanced-tool-use-2025-11-20",
}


def posts(cases: list) -> list[dict]:
    return [step.request.__dict__ for case in cases for step in case.steps if step.request.method == "POST"]


@pytest.mark.parametrize("cases", [CASES, OLDER], ids=["2.1.337", "2.1.197"])
def test_each_set_runs_green_against_the_reference_server(cases: list) -> None:
    with ReferenceServer(api_key=KEY) as server:
        target = Target(base_url=server.base_url, api_key=KEY, reference=True)
        report = asyncio.run(run_suite(target, cases))
    assert {r.id: (r.outcome.value, r.reason) for r in report.results if r.outcome.value != "passed"} == {}
    assert len(report.results) == len(cases) >= 3


def test_the_current_requests_have_claude_codes_structure_and_size() -> None:
    requests = posts(CASES)
    assert len(requests) == 4  # the Haiku tool round trip replays its first request as a step
    assert all(request["endpoint"] == "/v1/messages?beta=true" for request in requests)
    for request in requests:
        body, headers = request["body"], request["headers"]
        assert 49_000 <= len(json.dumps(body)) <= 110_000
        names = [tool["name"] for tool in body["tools"]]
        assert 12 <= len(names) <= 14 and {"ToolSearch", "DeferredToolPlaceholder"} <= set(names)
        assert len(body["system"]) == 3 and headers["user-agent"].startswith("claude-cli/2.1.337")
        assert (
            OLDER_BETA not in headers["anthropic-beta"] and "advanced-tool-use-2025-11-20" in headers["anthropic-beta"]
        )
        assert body["thinking"]["display"] == "omitted"
    default = requests[0]
    assert set(default["headers"]["anthropic-beta"].split(",")) >= CURRENT_BETAS
    assert default["body"]["max_tokens"] == 128000 and default["body"]["output_config"] == {"effort": "medium"}
    system = next(message for message in default["body"]["messages"] if message["role"] == "system")
    assert system["output_config"] == {"effort": "medium"}
    haiku = [request["body"]["thinking"] for request in requests[1:]]
    assert haiku == [{"type": "enabled", "budget_tokens": 31999, "display": "omitted"}] * 3
    assert not any(case.steps[0].request.method == "HEAD" for case in CASES)


def test_the_older_requests_keep_2_1_197s_shape() -> None:
    for request in posts(OLDER):
        body, headers = request["body"], request["headers"]
        assert 60_000 <= len(json.dumps(body)) <= 120_000 and len(body["tools"]) == 24
        system_role = any(message["role"] == "system" for message in body["messages"])
        assert system_role == (OLDER_BETA in headers["anthropic-beta"])
    assert any(case.steps[0].request.method == "HEAD" for case in OLDER)


def test_each_profile_selects_its_set() -> None:
    assert get_profile("claude-code").select(CASES) == CASES
    assert get_profile("claude-code").select(OLDER) == []
    assert get_profile("claude-code-2.1.197").select(OLDER) == OLDER


def test_the_system_role_needs_no_beta_but_its_per_turn_controls_do() -> None:
    """2.1.337's first request without any anthropic-beta: its system message's output_config is
    refused, and once dropped (as Claude Code's retry drops it) the GA system role is accepted."""
    first_turn = next(case for case in CASES if case.id == "clients.claude-code.first-turn").steps[0].request
    headers = {k: v for k, v in first_turn.headers.items() if k != "anthropic-beta"}
    headers.update({"x-api-key": KEY, "content-type": "application/json"})
    body = {**first_turn.body, "model": "claude-opus-4-8", "stream": False}
    with ReferenceServer(api_key=KEY) as server:
        url = server.base_url + first_turn.endpoint
        refused = httpx.post(url, json=body, headers=headers, timeout=30)
        body["messages"] = [{k: v for k, v in m.items() if k != "output_config"} for m in body["messages"]]
        answer = httpx.post(url, json=body, headers=headers, timeout=30)
    assert refused.status_code == 400 and "messages.1.output_config" in refused.json()["error"]["message"]
    assert answer.status_code == 200, answer.text[:300]


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
