"""Fault isolation: an exception in one case is that case's `error`, the run finishes and writes every
report; an exception outside every case is an internal error, exit code 3, one line on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.checks import CHECKS
from conformance.cli import EXIT_INTERNAL, main
from conformance.model import Exchange, Finding

SELECTION = ["-k", "count_tokens.*,text.*"]


def fragile_check(exchange: Exchange) -> list[Finding]:
    """A check that breaks on count_tokens answers, as a check may on an answer nobody foresaw."""
    if "/count_tokens" in exchange.request.url:
        raise RecursionError("maximum recursion depth exceeded while calling a Python object")
    return []


def test_a_judge_that_breaks_on_one_answer_makes_that_case_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(CHECKS, "test.fragile", fragile_check)
    assert main(["run", "--out", str(tmp_path), *SELECTION]) == 1
    results = {r["id"]: r for r in json.loads((tmp_path / "report.json").read_text())["results"]}
    broken = {case_id: r for case_id, r in results.items() if case_id.startswith("count_tokens.")}
    assert broken and all(r["outcome"] == "error" for r in broken.values())
    for result in broken.values():
        assert result["reason"].startswith("the judge failed on this answer: RecursionError: maximum recursion")
        assert result["exchanges"], "the evidence of the case is kept"
    others = [r for case_id, r in results.items() if case_id.startswith("text.")]
    assert others and all(r["outcome"] != "error" for r in others)
    for name in ("report.json", "junit.xml", "report.html"):
        assert (tmp_path / name).stat().st_size > 0
    assert "Traceback" not in capsys.readouterr().err


def test_a_case_whose_request_cannot_be_built_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import conformance.runner

    real = conformance.runner.build_request

    def build(target, step, history):
        if "count_tokens" in step.request.endpoint:
            raise KeyError("$steps[3]")
        return real(target, step, history)

    monkeypatch.setattr(conformance.runner, "build_request", build)
    assert main(["run", "--out", str(tmp_path), *SELECTION]) == 1
    results = json.loads((tmp_path / "report.json").read_text())["results"]
    broken = [r for r in results if r["id"].startswith("count_tokens.")]
    assert broken and all(r["outcome"] == "error" for r in broken)
    assert all(r["reason"].endswith(" could not be built: KeyError: '$steps[3]'") for r in broken)


def test_a_defect_outside_every_case_exits_3_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken_writer(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("conformance.report.write_reports", broken_writer)
    monkeypatch.delenv("CONFORMANCE_DEBUG", raising=False)
    assert main(["run", "--out", str(tmp_path), "-k", "text.string-content"]) == EXIT_INTERNAL == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("conformance: internal error: ZeroDivisionError in test_runner_faults.py:")
    assert "report it to the conformance maintainers" in err and "CONFORMANCE_DEBUG=1" in err

    monkeypatch.setenv("CONFORMANCE_DEBUG", "1")
    assert main(["run", "--out", str(tmp_path), "-k", "text.string-content"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "division by zero" in err
