"""The command line: every flag is described, usage errors are one line with exit code 2, and an
endpoint that cannot be reached gives `error` outcomes and exit code 1, never a traceback."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.baseline import FAIL_ON_CHOICES
from conformance.cli import build_parser, main


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from parsers(child)


def test_every_flag_and_command_is_described() -> None:
    seen = set()
    for parser in parsers(build_parser()):
        seen.add(parser.prog)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{parser.prog} {choice.dest}: no help"
                continue
            assert action.help and action.help != argparse.SUPPRESS, f"{parser.prog} {action.option_strings}: no help"
        assert parser.description, f"{parser.prog}: no description"
    expected = {"run", "serve", "cases list", "matrix", "baseline write", "recheck"}
    assert {f"conformance {name}" for name in expected} <= seen


def test_help_lists_each_command_by_the_line_its_full_declaration_has() -> None:
    """`conformance --help` declares the commands by their one line only: it must read as the full parser does."""
    assert build_parser(["--help"]).format_help() == build_parser().format_help()
    run_only = build_parser(["run", "--tier", "core"])
    assert run_only.parse_args(["run", "--tier", "core"]).tier == "core"


@pytest.mark.parametrize(
    "argv",
    [["run"], ["proxy", "--upstream", "http://127.0.0.1:1"], ["cases", "from-capture", "c.json", "-o", "cases"]],
)
def test_public_header_names_are_read_lower_case(argv: list[str]) -> None:
    argv = [*argv, "--public-header", "X-Trace-Token"]
    assert build_parser(argv).parse_args(argv).public_header == ["x-trace-token"]


@pytest.mark.parametrize("command", ["run", "matrix", "baseline write", "recheck"])
def test_exit_codes_are_in_the_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command.split(), "--help"])
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Exit codes: 0" in out and "2 usage error" in out and "3 internal error" in out
    if command == "run":
        assert "130 interrupted by SIGINT, 143 by SIGTERM" in out and "docs/reference/robustness.md" in out
        assert "--retries N" in out and "--public-header NAME" in out
    if command in ("run", "recheck"):
        assert "1 something does" in out
        for flag in ("--baseline FILE", f"--fail-on {{{','.join(FAIL_ON_CHOICES)}}}"):
            assert flag in out
    if command == "run":
        assert "--profile NAME" in out and "--record DIR" in out and "claude-code" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--fail-on", "sometimes"], "argument --fail-on: invalid choice"),
        (["run", "--concurrency", "0"], "expected a positive number"),
        (["run", "--retries", "-1"], "expected a whole number, 0 or more"),
        (["run", "--profile", "nope"], "unknown profile 'nope'"),
        (["run", "--baseline", "/nonexistent/baseline.yaml"], "cannot read baseline"),
        (["run", "--base-url", "ftp://example.test"], "base URL must be an http(s) URL"),
        (["run", "-k", "no-such-case-anywhere"], "no case matches"),
        (["matrix"], "the following arguments are required: REPORT.json"),
        (["matrix", "/nonexistent/report.json"], "no report at /nonexistent/report.json"),
        (["baseline", "write", "/nonexistent/report.json", "-o", "b.yaml"], "no report at"),
        (["baseline", "write", "report.json"], "the following arguments are required: -o/--output"),
        (["baseline"], "the following arguments are required: ACTION"),
        (["recheck", "/nonexistent"], "cannot read cassette"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    try:
        code = main([*argv, *(["--out", str(tmp_path / "out")] if argv[0] == "run" else [])])
    except SystemExit as exited:
        code = exited.code
    assert code == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert message in captured.err and "error" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "out").exists()


def test_an_unreachable_endpoint_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "conformance", "run", "--base-url", "http://127.0.0.1:9", "--api-key", "k"]
    completed = subprocess.run(
        [*command, "--tier", "smoke", "--out", str(out)], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines() == [
        "conformance: error: cannot reach http://127.0.0.1:9: connection refused or host unknown; is the target "
        "running, and is --base-url right?"
    ]
    assert not (out / "report.json").exists()


def test_without_preflight_an_unreachable_endpoint_errors_every_case(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "conformance", "run", "--base-url", "http://127.0.0.1:9", "--api-key", "k"]
    completed = subprocess.run(
        [*command, "--tier", "smoke", "--out", str(out), "--no-preflight"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stdout + completed.stderr
    assert "connection failed" in completed.stdout
    report = json.loads((out / "report.json").read_text())
    outcomes = {result["outcome"] for result in report["results"]}
    assert outcomes <= {"error", "skipped"} and "error" in outcomes
    assert report["summary"]["error"] >= 1


def test_cases_list_shows_every_case_whole_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.cases import load_cases, select, tiers_up_to

    smoke = select(load_cases(), tiers_up_to("smoke"))
    assert main(["cases", "list", "--tier", "smoke"]) == 0
    rows = [line.split("│")[1:-1] for line in capsys.readouterr().out.splitlines() if line.count("│") == 7]
    cells = {row[0].strip(): [cell.strip() for cell in row] for row in rows}
    for case in smoke:
        assert cells[case.id] == [
            case.id, case.feature, case.tier, case.spec, str(case.requests), str(case.max_output_tokens)
        ]  # fmt: skip
    assert cells["total"][4] == str(sum(case.requests for case in smoke))


def test_the_example_workflow_uses_real_flags() -> None:
    """Every `conformance` command in docs/examples/github-actions.yml parses with today's flags."""
    import shlex

    import yaml

    workflow = Path(__file__).resolve().parents[1] / "docs" / "examples" / "github-actions.yml"
    steps = yaml.safe_load(workflow.read_text())["jobs"]["conformance"]["steps"]
    commands = [
        shlex.split(line.strip().replace('"$GATEWAY_URL"', "http://127.0.0.1:8080"))[1:]
        for step in steps
        for line in step.get("run", "").replace("\\\n", " ").splitlines()
        if line.strip().startswith("conformance ")
    ]
    assert len(commands) == 3  # smoke, claude-code, matrix
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv)
        assert args.handler is not None


def test_an_out_directory_that_cannot_be_written_is_a_usage_error_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    occupied = tmp_path / "a-file"
    occupied.write_text("not a directory")
    assert main(["run", "--out", str(occupied / "reports"), "-k", "text.string-content"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"conformance: error: cannot write the reports to {occupied / 'reports'}: ")
    assert captured.err.count("\n") == 1 and "PASSED" not in captured.out


def test_baseline_write_records_warnings_for_a_gate_that_fails_on_them(tmp_path: Path) -> None:
    from conformance.baseline import load_baseline
    from conformance.model import CaseResult, Outcome, RunReport, TargetInfo
    from conformance.report import write_reports

    results = [
        CaseResult(id=case_id, feature="headers", outcome=outcome, reason=case_id)
        for case_id, outcome in (("a.warn", Outcome.WARNING), ("b.fail", Outcome.FAILED))
    ]
    target = TargetInfo("https://gw.example.test", "gw", "m", reference=False)
    report = write_reports(RunReport(target=target, started_at="", finished_at="", results=results), tmp_path)["json"]
    for fail_on, recorded in (("failed", {"b.fail"}), ("warning", {"a.warn", "b.fail"})):
        output = tmp_path / f"{fail_on}.yaml"
        assert main(["baseline", "write", str(report), "-o", str(output), "--fail-on", fail_on]) == 0
        assert set(load_baseline(output).expectations) == recorded
