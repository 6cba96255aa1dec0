"""A newcomer's missteps: each is one clear line and exit 2, or the right behaviour."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx
import pytest

from conformance.cases import load_cases
from conformance.cli import main
from conformance.cli.heartbeat import Heartbeat
from conformance.preflight import diagnose
from conformance.reference import ReferenceServer, create_app
from tests.proxying import upstream_and_proxy

pytest_plugins = ["pytester"]
KEY = "test-key-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


# --- closed vocabularies ---------------------------------------------------------------------------


def test_a_misspelt_capability_is_a_usage_error_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--capabilities", "count_tokens,visoin", "--tier", "smoke"]) == 2
    assert "unknown capability 'visoin': did you mean 'vision'?" in error_line(capsys)


def test_a_misspelt_provider_is_a_usage_error_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--provider", "openrouterr", "--tier", "smoke", "--dry-run"]) == 2
    assert "did you mean 'openrouter'?" in error_line(capsys)


def test_a_misspelt_tier_or_profile_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--tier", "smok"])
    assert exited.value.code == 2
    assert "unknown tier 'smok': did you mean 'smoke'?" in error_line(capsys)
    assert main(["run", "--profile", "claude-cod", "--dry-run"]) == 2
    assert "unknown profile 'claude-cod': did you mean 'claude-code'?" in error_line(capsys)


def test_a_broken_profile_file_leaves_a_misspelt_profile_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import conformance.consumers

    shipped = conformance.consumers.default_profiles_dir()
    (tmp_path / "claude-code.yaml").write_text((shipped / "claude-code.yaml").read_text())
    (tmp_path / "broken.yaml").write_text("cases: [unclosed\n")
    monkeypatch.setattr(conformance.consumers, "default_profiles_dir", lambda: tmp_path)
    assert main(["run", "--profile", "claude-cod", "--dry-run"]) == 2
    assert "unknown profile 'claude-cod': did you mean 'claude-code'?" in error_line(capsys)


@pytest.mark.parametrize(
    ("listen", "complaint"),
    [
        ("nowhere", "expected HOST:PORT such as 127.0.0.1:8788, got 'nowhere'"),
        ("127.0.0.1:99999", "expected a port from 0 to 65535, got '99999'"),
        ("127.0.0.1:", "expected a port from 0 to 65535, got ''"),
    ],
)
def test_a_bad_listen_address_says_what_is_wrong(
    listen: str, complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["proxy", "--upstream", "http://127.0.0.1:9", "--listen", listen])
    assert exited.value.code == 2
    assert complaint in error_line(capsys)


def test_an_unknown_flag_names_its_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--bse-url", "http://x"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("conformance run: error: unrecognized arguments: --bse-url")


def test_bare_conformance_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: conformance") and "run " in out and "serve " in out


def test_one_case_is_one_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cases", "list", "-k", "streaming.structure"]) == 0
    assert capsys.readouterr().out.splitlines()[0].strip() == "1 case"


# --- the target ------------------------------------------------------------------------------------


def test_a_v1_suffix_is_explained_once_before_any_case(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with ReferenceServer(api_key=KEY) as server:
        base_url = server.base_url
        code = main(["run", "--base-url", base_url + "/v1", "--api-key", KEY, "--out", str(tmp_path / "o")])
    assert code == 2
    line = error_line(capsys)
    assert "drop /v1 from --base-url" in line and f"(use {base_url})" in line
    assert not (tmp_path / "o" / "report.json").exists()


def test_the_probe_says_nothing_of_a_conforming_answer() -> None:
    assert diagnose("http://gw", 400) is None and diagnose("http://gw", 401) is None
    assert "check its path" in (diagnose("http://gw/api", 404) or "")


# --- the gate --------------------------------------------------------------------------------------


def test_a_run_that_passes_nothing_fails_the_gate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["run", "--tier", "smoke", "--capabilities", "vision", "--out", str(tmp_path), "-k", "count_tokens.basic"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "FAIL: 0 cases passed, fewer than --min-passed 1" in out
    assert "PASS" not in out
    assert "Skipped cases (1), by reason:" in out
    assert main([*argv, "--min-passed", "0"]) == 0


def test_a_baseline_run_says_pass_or_fail_once(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text("version: 1\ncases: {}\n")
    assert main(["run", "--tier", "smoke", "--out", str(tmp_path / "o"), "--baseline", str(baseline)]) == 0
    verdicts = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    verdicts = [word for word in verdicts if word.rstrip(":") in ("PASS", "FAIL", "RESULTS")]
    assert verdicts == ["RESULTS", "PASS:"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\n", "not a baseline (expected a mapping with a 'cases' mapping)"),
        ('{"results": [], "summary": {}}', "a report, not a baseline: make one with `conformance baseline write"),
    ],
)
def test_a_file_that_is_no_baseline_is_a_usage_error(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(text)
    assert main(["run", "--tier", "smoke", "--dry-run", "--baseline", str(path)]) == 2
    assert message in error_line(capsys)
    assert main(["run", "--tier", "smoke", "--out", str(tmp_path / "o"), "--baseline", str(path)]) == 2
    assert message in error_line(capsys)


# --- the live status line --------------------------------------------------------------------------


def test_the_heartbeat_speaks_while_nothing_finishes() -> None:
    said: list[str] = []
    with Heartbeat(lambda result: None, 3, said.append, interval=0.05):
        deadline = time.monotonic() + 10
        while not said and time.monotonic() < deadline:
            time.sleep(0.01)
    assert said and said[0].startswith("  ... 0 of 3 cases done, 3 still running or queued;")


# --- serve -----------------------------------------------------------------------------------------


def serve(*argv: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "conformance", "serve", *argv]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    return out, err


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_serve_refuses_a_bad_port(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", f"--port={port}"])
    assert exited.value.code == 2
    assert "conformance serve: error: argument --port: expected a port from 0 to 65535" in error_line(capsys)


def test_serve_on_a_busy_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        process = serve("--port", str(busy.getsockname()[1]))
        out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "listening" not in out
    assert err.startswith("conformance: error: cannot listen on 127.0.0.1:") and err.count("\n") == 1


def test_serve_port_0_prints_the_real_port_and_a_key_it_enforces() -> None:
    process = serve("--port", "0")
    try:
        first = process.stdout.readline()
        assert first.startswith("Reference server listening on http://127.0.0.1:")
        base_url = first.split()[4]
        assert not base_url.endswith(":0")
        key = process.stdout.readline().split("accepts: ")[1].strip()
        headers = {"anthropic-version": "2023-06-01"}
        body = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
        wrong = httpx.post(base_url + "/v1/messages", json=body, headers={**headers, "x-api-key": "wrong"})
        right = httpx.post(base_url + "/v1/messages", json=body, headers={**headers, "x-api-key": key})
        assert (wrong.status_code, right.status_code) == (401, 200)
    finally:
        stop(process)
    assert process.returncode == 0


# --- from-capture ----------------------------------------------------------------------------------


def test_captured_cases_skip_transient_answers_and_say_how_to_run_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "capture"
    with upstream_and_proxy(create_app(KEY), out) as (_, proxy):
        client = anthropic.Anthropic(base_url=proxy.base_url, api_key=KEY, max_retries=0)
        client.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "Hi"}])
        with pytest.raises(anthropic.APIStatusError):
            client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=16,
                messages=[{"role": "user", "content": "Simulate error: overloaded_error"}],
            )
    cases_dir = tmp_path / "cases"
    assert main(["cases", "from-capture", str(out), "-o", str(cases_dir / "mine.yaml")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("1 case from 2 recorded exchanges") and "--tier provider" in printed
    assert main(["run", "--cases", str(cases_dir), "--out", str(tmp_path / "o")]) == 2
    assert "add --tier provider" in error_line(capsys)
    assert main(["run", "--cases", str(cases_dir), "--tier", "provider", "--out", str(tmp_path / "o")]) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert [result["outcome"] for result in report["results"]] == ["passed"]


def test_the_pytest_plugin_refuses_a_misspelt_capability(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--conformance", "--co", "-q", "--conformance-capabilities", "visoin")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown capability 'visoin': did you mean 'vision'?*"])


# --- matrix ----------------------------------------------------------------------------------------


def test_the_matrix_tells_alike_runs_apart_and_refuses_bad_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = []
    for name in ("monday", "tuesday"):
        assert main(["run", "--tier", "smoke", "-k", "streaming.structure", "--out", str(tmp_path / name)]) == 0
        sources.append(str(tmp_path / name / "report.json"))
    capsys.readouterr()
    out = tmp_path / "matrix"
    assert main(["matrix", *sources, "--out", str(out), "--profile", "claude-code"]) == 0
    matrix = json.loads((out / "matrix.json").read_text())
    assert [target["title"] for target in matrix["targets"]] == ["monday", "tuesday"]
    tiers = {case.id: case.tier for case in load_cases()}
    not_run = [case_id for row in matrix["rows"] for cell in row["cells"] for case_id in cell.get("not_run", [])]
    assert not_run and {tiers[case_id] for case_id in not_run} == {"smoke"}  # within the tiers the runs chose
    page = (out / "matrix.html").read_text()
    assert 'class="exchange"' not in page  # each run's report.html has them: linked, not copied
    assert 'href="../monday/report.html#case-streaming.structure"' in page
    capsys.readouterr()
    assert main(["matrix", *sources, "--label", "one", "--out", str(out)]) == 2
    assert "1 --label for 2 reports" in error_line(capsys)
    assert main(["matrix", sources[0], sources[0], "--out", str(out)]) == 2
    assert "is given twice" in error_line(capsys)


def test_recheck_gates_on_breaks_when_a_client_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = ["run", "-k", "count_tokens.basic", "--out", str(tmp_path / "live"), "--record", str(tmp_path / "cassette")]
    assert main(run) == 0
    capsys.readouterr()
    recheck = ["recheck", str(tmp_path / "cassette"), "--out", str(tmp_path / "o"), "--fail-on-impact", "claude-code"]
    assert main(recheck) == 0
    assert "--fail-on breaks --fail-on-impact claude-code" in capsys.readouterr().out
