"""`conformance cases from-capture`: what a client sent through the proxy, replayed as cases."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import anthropic
import httpx
import pytest
import yaml

from conformance.cases import load_file
from conformance.cli import main
from conformance.reference import ReferenceServer, create_app
from conformance.runner import run_suite
from conformance.target import Target
from tests.proxying import upstream_and_proxy

KEY = "test-key-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository
BETA = "context-management-2025-06-27"
HELLO = {"role": "user", "content": "Reply with exactly: again"}
LONG = "A long instruction that the client repeats on every request. " * 20


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A proxy session: a long system prompt, a streamed turn with the beta query, a retry, a probe."""
    out = tmp_path_factory.mktemp("capture")
    with upstream_and_proxy(create_app(KEY), out) as (_, proxy):
        client = anthropic.Anthropic(base_url=proxy.base_url, api_key=KEY, max_retries=0)
        for _ in range(2):  # the same request twice counts once
            client.messages.create(
                model="claude-opus-4-8", max_tokens=64, system=LONG, messages=[{"role": "user", "content": "Hi"}]
            )
        httpx.post(  # as Claude Code sends it: on ?beta=true, streamed
            proxy.base_url + "/v1/messages?beta=true",
            json={"model": "claude-opus-4-8", "max_tokens": 64, "stream": True, "messages": [HELLO]},
            headers={"x-api-key": KEY, "anthropic-version": "2023-06-01", "anthropic-beta": BETA},
        ).raise_for_status()
        client.messages.count_tokens(model="claude-opus-4-8", messages=[{"role": "user", "content": "Hi"}])
    return out


def test_recorded_requests_become_cases_that_replay_green(capture: Path, tmp_path: Path) -> None:
    output = tmp_path / "clients" / "sdk.yaml"
    assert main(["cases", "from-capture", str(capture), "-o", str(output)]) == 0
    text = output.read_text()
    assert KEY not in text and "x-api-key" not in text and "authorization" not in text
    cases = load_file(output, {})
    assert [case.id for case in cases] == ["clients.sdk.01", "clients.sdk.02", "clients.sdk.03"]
    streamed = cases[1].steps[0]
    assert streamed.request.endpoint == "/v1/messages?beta=true"
    assert streamed.request.headers["anthropic-beta"] == BETA
    assert streamed.expect == {"status": 200, "stream": True}
    assert cases[2].steps[0].request.endpoint == "count_tokens" and "count_tokens" in cases[2].requires
    assert cases[0].steps[0].request.body["model"] == "$model"
    with ReferenceServer(api_key="another-key") as server:
        target = Target(base_url=server.base_url, api_key="another-key", reference=True)
        report = asyncio.run(run_suite(target, cases))
    assert {result.id: result.outcome.value for result in report.results} == dict.fromkeys(
        ["clients.sdk.01", "clients.sdk.02", "clients.sdk.03"], "passed"
    )


def test_shorten_keeps_the_size_not_the_words(capture: Path, tmp_path: Path) -> None:
    output = tmp_path / "short.yaml"
    argv = ["cases", "from-capture", str(capture), "-o", str(output), "--shorten", "100", "--keep-model"]
    assert main(argv) == 0
    raw = yaml.safe_load(output.read_text())
    first = raw["cases"][0]["request"]["body"]
    assert first["system"] == {"$text": {"bytes": len(LONG)}} and first["model"] == "claude-opus-4-8"
    (case, *_) = load_file(output, {})
    assert len(case.steps[0].request.body["system"]) == len(LONG)


def test_a_directory_without_a_capture_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cases", "from-capture", str(tmp_path), "-o", str(tmp_path / "x.yaml")]) == 2
    assert "cassette" in capsys.readouterr().err
