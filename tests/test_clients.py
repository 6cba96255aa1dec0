"""The clients job (conformance/clients/): scenario definitions, judging a scenario from a real proxy
report of the reference server driven by the `anthropic` SDK, the console table, and, opt-in
(CONFORMANCE_CLIENTS=1: it installs Claude Code and both SDKs from the registries), the whole job."""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from conformance.clients import __main__ as clients_main
from conformance.clients import install, job
from conformance.clients.job import InstalledClient, ReferenceProcess, run_client, run_scenario
from conformance.clients.judging import (
    UNTAGGED,
    ClientRun,
    claude_code_problems,
    judge_client,
    judge_scenario,
    results_by_tag,
    script_problems,
)
from conformance.clients.scenarios import (
    COUNT_TOKENS,
    DEFAULT_MODEL,
    HAIKU,
    SDK_SCENARIOS,
    STREAM,
    TAG_HEADER,
    THINKING,
    TOOL_ROUND_TRIP,
    Scenario,
    scenarios_of,
)
from conformance.clients.table import HEADER, problem_lines, table_lines
from conformance.clients.versions import (
    CLAUDE_CODE,
    CLIENTS,
    PYTHON_SDK,
    TYPESCRIPT_SDK,
    parse_latest,
    resolve_versions,
)
from conformance.model import RunReport
from conformance.peers.process import free_port
from conformance.redact import REDACTED
from conformance.reference import create_app
from tests.broken_variants import DropBlockStop
from tests.proxying import proxied, upstream_and_proxy

KEY = "test-key-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository
SCRIPTS = Path(install.__file__).parent
PONG = [{"role": "user", "content": "Reply with exactly: PONG"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def scenario(name: str, client: str = PYTHON_SDK.name) -> Scenario:
    return next(each for each in scenarios_of(client) if each.name == name)


# --------------------------------------------------------------------------- scenario definitions


def test_claude_code_runs_text_tools_and_thinking_on_its_default_model_and_on_haiku() -> None:
    runs = {(each.name, each.model) for each in scenarios_of(CLAUDE_CODE.name)}
    assert runs == {(name, model) for name in ("text", "tools", "thinking") for model in (DEFAULT_MODEL, HAIKU)}
    tools = scenario("tools", CLAUDE_CODE.name)
    assert TOOL_ROUND_TRIP in tools.expects and "Use the Read tool" in tools.prompt
    assert "--allowedTools" in tools.arguments
    assert THINKING in scenario("thinking", CLAUDE_CODE.name).expects


def test_each_sdk_runs_create_stream_tools_thinking_and_count_tokens_on_haiku() -> None:
    for client in (PYTHON_SDK.name, TYPESCRIPT_SDK.name):
        assert [(each.name, each.model) for each in scenarios_of(client)] == [
            (name, HAIKU) for name in ("create", "stream", "tools", "thinking", "count_tokens")
        ]
    assert scenario("count_tokens").expects == (COUNT_TOKENS,)


def test_every_scenario_has_its_own_tag() -> None:
    tags = [each.tag for client in CLIENTS for each in scenarios_of(client)]
    assert len(tags) == len(set(tags))
    assert scenario("stream").tag == "python-sdk/stream/claude-haiku-4-5"


def test_both_sdk_scripts_know_exactly_the_sdk_scenarios() -> None:
    python_script = (SCRIPTS / "sdk_python.py").read_text()
    typescript_script = (SCRIPTS / "sdk_typescript.mjs").read_text()
    python_names = re.search(r"SCENARIOS: .*? = \{(.*?)\}", python_script, re.S)
    typescript_names = re.search(r"const SCENARIOS = \{(.*?)\}", typescript_script)
    assert python_names and typescript_names
    assert re.findall(r'"(\w+)":', python_names.group(1)) == list(SDK_SCENARIOS)
    assert [name.split(":")[0].strip() for name in typescript_names.group(1).split(",")] == list(SDK_SCENARIOS)


def test_claude_code_is_asked_for_json_and_the_model_only_when_not_its_default() -> None:
    installed = InstalledClient(CLAUDE_CODE, "1.0.0", ("claude",))
    default = installed.argv(scenario("text", CLAUDE_CODE.name))
    assert default == ["claude", "-p", "Reply with exactly: PONG", "--output-format", "json"]
    haiku = next(each for each in scenarios_of(CLAUDE_CODE.name) if each.model == HAIKU and each.name == "tools")
    assert installed.argv(haiku)[-4:] == ["--model", HAIKU, "--allowedTools", "Read"]
    sdk = InstalledClient(PYTHON_SDK, "1.0.0", ("python", "sdk_python.py"))
    assert sdk.argv(scenario("tools")) == ["python", "sdk_python.py", "tools", HAIKU]


def test_the_latest_version_is_read_from_npm_and_pip_answers() -> None:
    assert parse_latest(CLAUDE_CODE, "2.1.400\n") == "2.1.400"
    assert parse_latest(PYTHON_SDK, "anthropic (2.18.0)\nAvailable versions: 2.18.0, 2.17.0\n") == "2.18.0"
    assert parse_latest(CLAUDE_CODE, "npm error 404 Not Found\n") is None
    assert parse_latest(PYTHON_SDK, "ERROR: No matching distribution found for anthropic\n") is None


def test_a_claude_code_stub_is_told_from_the_native_binary(tmp_path: Path) -> None:
    stub, native = tmp_path / "stub", tmp_path / "native"
    stub.write_text("#!/bin/sh\necho 'the postinstall did not run'\n")
    native.write_bytes(b"\0" * (install.STUB_MAX_BYTES + 1))
    assert install._is_stub(stub) and install._is_stub(tmp_path / "missing")
    assert not install._is_stub(native)


# --------------------------------------------------------------------------- the client's own verdict


def claude_result(**fields: object) -> str:
    return json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": "PONG", **fields})


def test_claude_code_passes_when_its_json_result_is_no_error() -> None:
    assert claude_code_problems(ClientRun(0, "a warning on stderr\n" + claude_result())) == []


def test_claude_code_fails_on_is_error_a_missing_result_an_exit_code_or_a_timeout() -> None:
    refused = claude_result(is_error=True, result="API Error: 400 messages.1.role: Input should be 'user'")
    assert claude_code_problems(ClientRun(1, refused)) == [
        "claude answered is_error: true: API Error: 400 messages.1.role: Input should be 'user'"
    ]
    assert claude_code_problems(ClientRun(1, "Error: unknown option '--bogus'\n")) == [
        "claude printed no JSON result (exit code 1): Error: unknown option '--bogus'"
    ]
    assert claude_code_problems(ClientRun(3, claude_result())) == ["claude exited with code 3"]
    assert claude_code_problems(ClientRun(None, "", timeout=180)) == ["claude did not finish within 180 s"]


def test_an_sdk_script_fails_with_its_last_line() -> None:
    assert script_problems(ClientRun(0, "create: ok\n")) == []
    run = ClientRun(1, "AuthenticationError: 401 invalid x-api-key\n")
    assert script_problems(run) == ["exit code 1: AuthenticationError: 401 invalid x-api-key"]
    assert script_problems(ClientRun(None, "", timeout=5)) == ["the script did not finish within 5 s"]


# --------------------------------------------------------------------------- judging a real proxy report


def sdk(base_url: str, tag: str | None) -> anthropic.Anthropic:
    headers = {TAG_HEADER: tag} if tag else {}
    return anthropic.Anthropic(base_url=base_url, api_key=KEY, default_headers=headers, max_retries=0)


@pytest.fixture(scope="module")
def proxy_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunReport]:
    """The reference server driven through the proxy by the anthropic SDK, one tag per scenario:
    stream and count_tokens as the job runs them, a `create` that asks for an overload (529), a
    `tools` that never answers a tool call, a `thinking` that never asks for thinking, and one
    request without a tag."""
    with upstream_and_proxy(create_app(KEY), tmp_path_factory.mktemp("proxy")) as (_, proxy):
        with sdk(proxy.base_url, scenario("stream").tag).messages.stream(
            model=HAIKU, max_tokens=64, messages=PONG
        ) as events:
            events.get_final_message()
        sdk(proxy.base_url, scenario("count_tokens").tag).messages.count_tokens(model=HAIKU, messages=PONG)
        with pytest.raises(anthropic.APIStatusError):
            sdk(proxy.base_url, scenario("create").tag).messages.create(
                model=HAIKU, max_tokens=64, messages=[{"role": "user", "content": "Simulate error: overloaded_error"}]
            )
        sdk(proxy.base_url, scenario("tools").tag).messages.create(
            model=HAIKU, max_tokens=64, tools=[WEATHER_TOOL], messages=PONG
        )
        with sdk(proxy.base_url, scenario("thinking").tag).messages.stream(
            model=HAIKU, max_tokens=64, messages=PONG
        ) as events:
            events.get_final_message()
        sdk(proxy.base_url, None).messages.create(model=HAIKU, max_tokens=64, messages=PONG)
    yield proxy.report


def test_exchanges_are_grouped_by_their_scenario_tag(proxy_report: RunReport) -> None:
    grouped = results_by_tag(proxy_report)
    assert set(grouped) == {scenario(name).tag for name in SDK_SCENARIOS} | {None}
    assert all(len(results) == 1 for results in grouped.values())


def test_a_scenario_whose_traffic_all_passed_is_ok(proxy_report: RunReport) -> None:
    for name in ("stream", "count_tokens"):
        outcome = judge_scenario(scenario(name), "2.17.0", results_by_tag(proxy_report)[scenario(name).tag], [])
        assert outcome.ok, outcome.problems
        assert (outcome.exchanges, outcome.refused, outcome.failed_checks, outcome.models) == (1, 0, 0, [HAIKU])


def test_a_refused_request_fails_the_scenario_with_its_status_and_error(proxy_report: RunReport) -> None:
    results = results_by_tag(proxy_report)[scenario("create").tag]
    outcome = judge_scenario(scenario("create"), "2.17.0", results, ["exit code 1: OverloadedError: ..."])
    assert not outcome.ok and outcome.refused == 1
    assert outcome.problems[0] == "exit code 1: OverloadedError: ..."
    assert outcome.problems[1].startswith("POST /v1/messages -> 529 overloaded_error: ")


def test_traffic_that_lacks_what_the_scenario_is_about_fails_it(proxy_report: RunReport) -> None:
    grouped = results_by_tag(proxy_report)
    tools = judge_scenario(scenario("tools"), "2.17.0", grouped[scenario("tools").tag], [])
    assert tools.problems == ["the traffic shows no tool round trip"]
    thinking = judge_scenario(scenario("thinking"), "2.17.0", grouped[scenario("thinking").tag], [])
    assert thinking.problems == ["the traffic shows no thinking"]
    assert STREAM in scenario("thinking").expects  # it streamed: that expectation held


def test_a_scenario_no_request_of_which_reached_the_proxy_fails() -> None:
    outcome = judge_scenario(scenario("create"), "2.17.0", [], [])
    assert outcome.problems == ["no request reached the proxy"]


def test_untagged_exchanges_are_judged_as_one_more_row(proxy_report: RunReport) -> None:
    runs = [(scenario(name), []) for name in ("stream", "count_tokens")]
    outcomes = judge_client(PYTHON_SDK.name, "2.17.0", runs, proxy_report)
    assert [outcome.scenario.name for outcome in outcomes] == ["stream", "count_tokens", UNTAGGED]
    untagged = outcomes[-1]
    # Everything no scenario claimed: the overload among them is still a refusal.
    assert untagged.exchanges == 4 and untagged.refused == 1 and len(untagged.problems) == 1


def test_a_failed_check_fails_the_scenario_with_its_finding(tmp_path: Path) -> None:
    tag = scenario("stream").tag
    with upstream_and_proxy(DropBlockStop(create_app(KEY)), tmp_path) as (_, proxy):
        body = {"model": HAIKU, "max_tokens": 64, "stream": True, "messages": PONG}
        headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01", TAG_HEADER: tag}
        with httpx.stream("POST", proxy.base_url + "/v1/messages", json=body, headers=headers) as response:
            response.read()
    outcome = judge_scenario(scenario("stream"), "2.17.0", results_by_tag(proxy.report)[tag], [])
    assert outcome.refused == 0 and outcome.failed_checks >= 1
    assert any("stream" in problem for problem in outcome.problems)
    assert outcome.problems[0].startswith("proxy.0001 (POST /v1/messages -> 200")


def test_an_unreachable_upstream_is_one_refusal_not_also_a_failed_check(tmp_path: Path) -> None:
    tag = scenario("create").tag
    with proxied(f"http://127.0.0.1:{free_port()}", tmp_path) as proxy:
        headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01", TAG_HEADER: tag}
        body = {"model": HAIKU, "max_tokens": 64, "messages": PONG}
        assert httpx.post(proxy.base_url + "/v1/messages", json=body, headers=headers).status_code == 502
    outcome = judge_scenario(scenario("create"), "2.17.0", results_by_tag(proxy.report)[tag], [])
    assert (outcome.refused, outcome.failed_checks, len(outcome.problems)) == (1, 0, 1)
    assert outcome.problems[0].startswith("POST /v1/messages: no answer (")


# --------------------------------------------------------------------------- the console table


def test_the_table_has_a_row_per_scenario_and_names_claude_codes_default_model(proxy_report: RunReport) -> None:
    ok = judge_scenario(scenario("stream"), "2.17.0", results_by_tag(proxy_report)[scenario("stream").tag], [])
    default = judge_scenario(scenario("text", CLAUDE_CODE.name), "2.1.337", [], ["claude answered is_error: true"])
    default.models = ["claude-opus-5-5"]
    lines = table_lines([ok, default])
    assert lines[0].split() == [word for column in HEADER for word in column.split()]
    assert lines[2].split() == ["python-sdk", "2.17.0", "stream", HAIKU, "ok", "1", "0", "0"]
    assert lines[3].split() == [
        "claude-code",
        "2.1.337",
        "text",
        "default",
        "(claude-opus-5-5)",
        "FAILED",
        "0",
        "0",
        "0",
    ]
    assert problem_lines([ok, default]) == [
        "claude-code 2.1.337 text default (claude-opus-5-5): claude answered is_error: true",
        "claude-code 2.1.337 text default (claude-opus-5-5): no request reached the proxy",
    ]


def test_an_unknown_client_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        clients_main.main(["--client", "no-such-client"])
    assert exited.value.code == 2
    assert "invalid choice: 'no-such-client'" in capsys.readouterr().err


# --------------------------------------------------------------------------- the job's processes, no network


def test_pinned_versions_need_no_registry() -> None:
    assert resolve_versions(list(CLIENTS.values()), latest=False) == {
        name: client.pinned for name, client in CLIENTS.items()
    }


def test_the_python_sdk_through_a_real_proxy_into_a_real_reference_server_passes(tmp_path: Path) -> None:
    """The job's own processes (`conformance serve`, `conformance proxy`) and the SDK script, run with
    the project's `anthropic` in place of the pinned one."""
    installed = InstalledClient(PYTHON_SDK, "project", (sys.executable, str(SCRIPTS / "sdk_python.py")))
    with ReferenceProcess(KEY, tmp_path / "serve.log") as reference:
        outcomes = run_client(installed, reference.base_url, KEY, tmp_path)
    assert [(o.scenario.name, o.problems) for o in outcomes] == [(name, []) for name in SDK_SCENARIOS]
    assert [o.exchanges for o in outcomes] == [1, 1, 2, 2, 1]
    for written in (tmp_path / PYTHON_SDK.name).iterdir():
        assert KEY not in written.read_text(errors="replace"), written


def python_client(code: str) -> InstalledClient:
    """A stand-in client: Python running `code` (the scenario's arguments follow, unread)."""
    return InstalledClient(PYTHON_SDK, "0", (sys.executable, "-c", code))


def test_a_client_that_prints_the_key_has_it_redacted_from_its_log(tmp_path: Path) -> None:
    code = "import os; print('my key is', os.environ['ANTHROPIC_API_KEY'])"
    run = run_scenario(python_client(code), scenario("create"), "http://127.0.0.1:9", KEY, tmp_path)
    assert run.returncode == 0 and KEY not in run.output
    assert (tmp_path / "create-claude-haiku-4-5.log").read_text() == f"my key is {REDACTED}\n"


def test_a_client_runs_in_a_throwaway_home_and_working_directory_with_its_tag(tmp_path: Path) -> None:
    code = (
        "import os, pathlib; print(os.environ['HOME'] != os.getcwd(), pathlib.Path('notes.txt').exists(),"
        " os.environ['ANTHROPIC_CUSTOM_HEADERS'], os.environ['CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC'])"
    )
    run = run_scenario(python_client(code), scenario("tools"), "http://127.0.0.1:9", KEY, tmp_path)
    assert run.output == f"True True {TAG_HEADER}: {scenario('tools').tag} 1\n"


def test_a_client_that_hangs_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job, "CLIENT_TIMEOUT", 1.0)
    run = run_scenario(python_client("import time; time.sleep(120)"), scenario("create"), "x", KEY, tmp_path)
    assert run.returncode is None
    assert script_problems(run) == ["the script did not finish within 1 s"]


# --------------------------------------------------------------------------- the whole job, opt-in


@pytest.mark.skipif(
    os.environ.get("CONFORMANCE_CLIENTS") != "1",
    reason="set CONFORMANCE_CLIENTS=1 to install Claude Code and both SDKs and run the whole clients job",
)
def test_the_whole_job_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = clients_main.main(["--out", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    for client in CLIENTS:
        assert (tmp_path / "out" / client / "report.json").exists()
    for written in (tmp_path / "out").rglob("*"):  # the job's key (clients-<32 hex>) is never written
        assert written.is_dir() or not re.search(r"clients-[0-9a-f]{32}", written.read_text(errors="replace"))
    assert len([line for line in printed.splitlines() if " ok " in line]) == sum(
        len(scenarios_of(client)) for client in CLIENTS
    )
