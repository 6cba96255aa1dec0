"""The slowest cases start first, by how long they took the last time against the same target."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from conformance.cases import load_cases
from conformance.cli import main
from conformance.durations import REFERENCE, keep_durations, load_durations, slowest_first
from conformance.model import CaseResult, Outcome
from conformance.private_cache import private_cache_dir
from conformance.reference import ReferenceServer
from conformance.runner import run_suite
from conformance.target import Target

CASES = {case.id: case for case in load_cases()}
PICKED = ["count_tokens.basic", "errors.missing-max-tokens", "text.string-content"]


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def test_cases_never_timed_come_first_then_the_slowest() -> None:
    cases = [CASES[case_id] for case_id in PICKED]
    ordered = slowest_first(cases, {"count_tokens.basic": 0.1, "text.string-content": 0.5})
    assert [case.id for case in ordered] == ["errors.missing-max-tokens", "text.string-content", "count_tokens.basic"]
    assert slowest_first(cases, {}) == cases  # alike: the order given


def test_cases_never_timed_are_ordered_by_what_they_ask_for() -> None:
    cases = [CASES[case_id] for case_id in ("count_tokens.basic", "tools.round-trip", "streaming.keepalive")]
    ordered = slowest_first(cases, {})
    assert [case.id for case in ordered] == ["streaming.keepalive", "tools.round-trip", "count_tokens.basic"]


def test_durations_are_kept_per_target_and_a_damaged_file_is_none() -> None:
    keep_durations("http://a", [CaseResult(id="x", feature="f", outcome=Outcome.PASSED, duration=1.23456)])
    keep_durations("http://a", [CaseResult(id="y", feature="f", outcome=Outcome.PASSED, duration=2.0)])
    assert load_durations("http://a") == {"x": 1.235, "y": 2.0}
    assert load_durations("http://b") == {}
    folder = private_cache_dir()
    assert folder is not None
    (kept,) = folder.glob("durations-*.json")
    kept.write_text('{"x": "slow", "y": -1, "w": true, "z": 3}')  # only what can be a duration is read
    assert load_durations("http://a") == {"z": 3}
    kept.write_text('{"x": 1.0, "z": 3')  # cut short
    assert load_durations("http://a") == {}


def test_a_run_starts_the_cases_in_order_of_their_last_durations() -> None:
    started: list[str] = []
    with ReferenceServer(api_key="durations-" + "k" * 8) as server:
        target = Target(base_url=server.base_url, api_key="durations-" + "k" * 8, reference=True)
        cases = [CASES[case_id] for case_id in PICKED]
        durations = {"count_tokens.basic": 0.1, "errors.missing-max-tokens": 0.2, "text.string-content": 0.3}
        report = asyncio.run(run_suite(target, cases, concurrency=1, on_start=started.append, durations=durations))
    assert started == ["text.string-content", "errors.missing-max-tokens", "count_tokens.basic"]
    assert [result.id for result in report.results] == sorted(PICKED)  # the report keeps its id order


def test_the_command_keeps_the_durations_of_the_embedded_server_runs(tmp_path: Path) -> None:
    assert main(["run", "-k", "count_tokens.basic", "--out", str(tmp_path / "out")]) == 0
    assert set(load_durations(REFERENCE)) == {"count_tokens.basic"}
