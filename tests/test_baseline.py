"""Baselines for CI gating: write one from a failing run, gate later runs on what got worse."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.baseline import (
    Baseline,
    BaselineError,
    Expectation,
    failing_outcomes,
    gate,
    load_baseline,
    write_baseline,
)
from conformance.cli import main
from conformance.model import CaseResult, Finding, Outcome, RunReport, TargetInfo
from conformance.reference import ReferenceServer
from tests.broken_gateway import broken_app


def result(case_id: str, outcome: Outcome, message: str = "") -> CaseResult:
    findings = [Finding("expect.status", message)] if message else []
    return CaseResult(id=case_id, feature=case_id.split(".")[0], outcome=outcome, findings=findings, reason=message)


def report(*results: CaseResult) -> RunReport:
    target = TargetInfo("https://gw.example.test", "gw", "m", reference=False)
    return RunReport(target=target, started_at="2025-01-02T03:04:05+00:00", finished_at="", results=list(results))


def test_fail_on_is_a_threshold() -> None:
    assert failing_outcomes("failed") == {Outcome.FAILED, Outcome.ERROR}
    assert failing_outcomes("deviation") == {Outcome.DEVIATION, Outcome.FAILED, Outcome.ERROR}
    assert failing_outcomes("unsupported") == {Outcome.UNSUPPORTED, Outcome.DEVIATION, Outcome.FAILED, Outcome.ERROR}
    assert failing_outcomes("warning") == failing_outcomes("unsupported") | {Outcome.WARNING}
    with pytest.raises(ValueError):
        failing_outcomes("passed")


def test_a_baseline_records_every_non_passing_case_with_its_reason(tmp_path: Path) -> None:
    run = report(
        result("a.pass", Outcome.PASSED),
        result("b.fail", Outcome.FAILED, "expected HTTP 200, got 500"),
        result("c.error", Outcome.ERROR, "connection failed"),
        result("d.dev", Outcome.DEVIATION, "documented"),
        result("e.unsup", Outcome.UNSUPPORTED, "refused cleanly"),
        result("f.skip", Outcome.SKIPPED, "not claimed"),
    )
    path = write_baseline(Baseline.from_results(run), tmp_path / "ci" / "baseline.yaml")
    text = path.read_text()
    assert text.startswith("# conformance baseline")
    loaded = load_baseline(path)
    assert loaded.expectations == {
        "b.fail": Expectation(Outcome.FAILED, "expected HTTP 200, got 500"),
        "c.error": Expectation(Outcome.ERROR, "connection failed"),
        "d.dev": Expectation(Outcome.DEVIATION, "documented"),
        "e.unsup": Expectation(Outcome.UNSUPPORTED, "refused cleanly"),
    }
    assert loaded.target == {"base_url": "https://gw.example.test", "provider": "gw", "model": "m"}
    assert loaded.recorded_at == "2025-01-02T03:04:05+00:00"


def test_a_baseline_records_warnings_only_for_a_gate_that_fails_on_them(tmp_path: Path) -> None:
    run = report(result("a.warn", Outcome.WARNING, "no request-id header"), result("b.fail", Outcome.FAILED, "bad"))
    assert set(Baseline.from_results(run).expectations) == {"b.fail"}
    strict = write_baseline(Baseline.from_results(run, fail_on="warning"), tmp_path / "baseline.yaml")
    assert load_baseline(strict).expectations["a.warn"] == Expectation(Outcome.WARNING, "no request-id header")


def test_a_baseline_from_before_warnings_loads_and_gates_a_warning_run(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text("version: 1\ncases:\n  a.stream: {outcome: failed, reason: no pings}\n  b.dev: deviation\n")
    old = load_baseline(path)
    assert old.expectations == {
        "a.stream": Expectation(Outcome.FAILED, "no pings"),
        "b.dev": Expectation(Outcome.DEVIATION),
    }
    verdict = gate([result("a.stream", Outcome.WARNING), result("b.dev", Outcome.DEVIATION)], old, "warning")
    assert [c.id for c in verdict.fixed] == ["a.stream"] and [c.id for c in verdict.known] == ["b.dev"]


def test_a_warning_fails_the_gate_only_with_fail_on_warning() -> None:
    results = [result("a.warn", Outcome.WARNING), result("b.unsup", Outcome.UNSUPPORTED)]
    assert gate(results).ok and gate(results, fail_on="unsupported").regressions[0].id == "b.unsup"
    assert [c.id for c in gate(results, fail_on="warning").regressions] == ["a.warn", "b.unsup"]
    # A case the baseline expects to fail that now only warns got better; a baselined warning is known.
    baseline = Baseline({"a.warn": Expectation(Outcome.FAILED), "b.unsup": Expectation(Outcome.UNSUPPORTED)})
    assert [c.id for c in gate(results, baseline, "warning").fixed] == ["a.warn"]
    assert gate([result("a.warn", Outcome.WARNING)], Baseline({"a.warn": Expectation(Outcome.WARNING)}), "warning").ok


def test_the_gate_fails_only_on_what_got_worse() -> None:
    baseline = Baseline(
        {
            "known.fail": Expectation(Outcome.FAILED),
            "fixed.fail": Expectation(Outcome.FAILED),
            "better.fail": Expectation(Outcome.FAILED),
            "worse.dev": Expectation(Outcome.DEVIATION),
            "now.error": Expectation(Outcome.FAILED),
            "gone.fail": Expectation(Outcome.FAILED),
        }
    )
    verdict = gate(
        [
            result("known.fail", Outcome.FAILED),
            result("fixed.fail", Outcome.PASSED),
            result("better.fail", Outcome.DEVIATION),
            result("worse.dev", Outcome.FAILED),
            result("now.error", Outcome.ERROR),
            result("new.fail", Outcome.FAILED),
            result("new.dev", Outcome.DEVIATION),
            result("fine", Outcome.PASSED),
        ],
        baseline,
    )
    assert [c.id for c in verdict.regressions] == ["new.fail", "now.error", "worse.dev"]
    assert [c.id for c in verdict.known] == ["known.fail"]
    assert [c.id for c in verdict.fixed] == ["better.fail", "fixed.fail"]
    assert verdict.not_run == ["gone.fail"]
    assert not verdict.ok
    # The same run against a stricter gate: the new deviation fails too, the improved one does not.
    strict = gate(
        [result("new.dev", Outcome.DEVIATION), result("better.fail", Outcome.DEVIATION)], baseline, "deviation"
    )
    assert [c.id for c in strict.regressions] == ["new.dev"]
    assert [c.id for c in strict.fixed] == ["better.fail"]


def test_without_a_baseline_every_failing_case_fails_the_gate() -> None:
    results = [
        result("a", Outcome.FAILED),
        result("b", Outcome.DEVIATION),
        result("c", Outcome.UNSUPPORTED),
        result("d", Outcome.SKIPPED),
    ]
    assert [c.id for c in gate(results).regressions] == ["a"]
    assert [c.id for c in gate(results, fail_on="unsupported").regressions] == ["a", "b", "c"]
    assert gate([result("a", Outcome.PASSED)]).ok


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cases: [1, 2]\n", "expected a mapping"),
        ("cases:\n  a.b: {outcome: broken}\n", "outcome must be one of"),
        ("version: 99\ncases: {}\n", "version 99"),
        ("cases: {a: [\n", "invalid YAML"),
    ],
)
def test_bad_baselines_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "baseline.yaml"
    path.write_text(text)
    with pytest.raises(BaselineError, match=message):
        load_baseline(path)
    with pytest.raises(BaselineError, match="cannot read"):
        load_baseline(tmp_path / "missing.yaml")


def test_a_hand_written_entry_may_give_just_the_outcome(tmp_path: Path) -> None:
    path = tmp_path / "baseline.yaml"
    path.write_text("cases:\n  tools.choice-any: failed\n")
    assert load_baseline(path).expectations == {"tools.choice-any": Expectation(Outcome.FAILED, "")}


SELECTION = ["-k", "count_tokens,tools.choice", "--tier", "core"]


def run_against(tmp_path: Path, name: str, defects: tuple[str, ...], *extra: str) -> int:
    with ReferenceServer(app=broken_app(*defects, api_key="k")) as server:
        argv = ["run", "--base-url", server.base_url, "--api-key", "k", "--out", str(tmp_path / name)]
        return main([*argv, *SELECTION, *extra])


def test_the_ci_gate_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "baseline.yaml"
    # A failing run, and a baseline written from it.
    assert run_against(tmp_path, "first", ("count_tokens",)) == 1
    assert main(["baseline", "write", str(tmp_path / "first" / "report.json"), "-o", str(baseline)]) == 0
    assert "non-passing cases" in capsys.readouterr().out
    assert "count_tokens.basic" in baseline.read_text()

    # The same run gated on it passes: nothing got worse.
    assert run_against(tmp_path, "same", ("count_tokens",), "--baseline", str(baseline)) == 0
    out = capsys.readouterr().out
    assert "PASS: nothing got worse" in out

    # One more defect: the new failures fail the gate, and are named.
    assert run_against(tmp_path, "worse", ("count_tokens", "tools"), "--baseline", str(baseline)) == 1
    out = capsys.readouterr().out
    assert "new failing" in out and "tools.choice-any (not in the baseline)" in out

    # The gateway fixed: the gate passes and lists what can be removed from the baseline.
    assert run_against(tmp_path, "fixed", (), "--baseline", str(baseline)) == 0
    out = capsys.readouterr().out
    assert "fixed: better than the baseline" in out and "count_tokens.basic: failed -> passed" in out


def test_a_bad_baseline_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--baseline", str(tmp_path / "missing.yaml"), "-k", "count_tokens.basic"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read baseline" in err
