"""The peers harness itself: a peer that dies mid-run ends in `error` outcomes (never a hang), each
route is gated on its baseline, and the matrix covers every route that has a report."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from conformance.cases import load_cases, select, tiers_up_to
from conformance.model import CaseResult, Outcome
from conformance.peers.harness import Route, gate_route, publish_matrix, run_route
from conformance.peers.process import LoopbackServer, PeerError, free_port, npm_install
from conformance.report import load_report

KEY = "peer-test-key-0123456789"


class ServedReference(LoopbackServer):
    """`conformance serve` in its own process: a peer the test can kill like a crashed gateway."""

    startup_timeout = 30.0

    def __init__(self, log_dir: Path) -> None:
        port = free_port()
        argv = [sys.executable, "-m", "conformance", "serve", "--port", str(port), "--api-key", KEY]
        super().__init__("reference", argv, log_dir / "reference.log", port)


@pytest.fixture(scope="module")
def core_cases():
    return select(load_cases(), tiers_up_to("core"))


def test_a_peer_killed_mid_run_gives_error_outcomes_not_a_hang(tmp_path: Path, core_cases) -> None:
    server = ServedReference(tmp_path).start()
    route = Route("killed", server.base_url, KEY, "claude-haiku-4-5", reference=True)
    done: list[CaseResult] = []

    def kill_after_five(result: CaseResult) -> None:
        done.append(result)
        if len(done) == 5:
            server.stop(grace=0.0)

    started = time.monotonic()
    try:
        report = run_route(route, core_cases, tmp_path, concurrency=1, on_result=kill_after_five)
    finally:
        server.stop()
    outcomes = [result.outcome for result in report.results]
    assert time.monotonic() - started < 60
    assert outcomes.count(Outcome.PASSED) >= 4
    # The cases sent before the fifth was judged may pass too (judging trails sending, one slot or not); every
    # later one errs, none fails.
    assert outcomes.count(Outcome.ERROR) >= len(core_cases) // 2
    assert Outcome.FAILED not in outcomes
    # The report is written all the same, errors explained.
    written = load_report(tmp_path / "killed" / "report.json")
    errored = next(result for result in written.results if result.outcome is Outcome.ERROR)
    assert errored.reason


def test_routes_are_gated_on_their_baselines(tmp_path: Path, core_cases) -> None:
    server = ServedReference(tmp_path).start()
    try:
        route = Route("route", server.base_url, KEY, "claude-haiku-4-5", reference=True)
        clean = run_route(route, core_cases, tmp_path)
        first = gate_route("route", clean, tmp_path)
        assert first.baseline.exists() and first.gate.ok
        # A later run where the key is refused: every case that passed now fails or errs.
        broken = run_route(
            Route("route", server.base_url, "wrong-key-0123456789", "claude-haiku-4-5"), core_cases, tmp_path
        )
    finally:
        server.stop()
    verdict = gate_route("route", broken, tmp_path).gate
    assert not verdict.ok
    assert {change.id for change in verdict.regressions} <= {case.id for case in core_cases}
    # Accepting the new state rewrites the baseline; the same run then passes the gate.
    assert gate_route("route", broken, tmp_path, update_baseline=True).gate.ok


def test_the_matrix_covers_every_route_with_a_report(tmp_path: Path, core_cases) -> None:
    server = ServedReference(tmp_path).start()
    try:
        for name in ("vllm", "reference"):
            run_route(Route(name, server.base_url, KEY, "claude-haiku-4-5", reference=True), core_cases[:5], tmp_path)
    finally:
        server.stop()
    paths = publish_matrix(tmp_path)
    targets = json.loads(paths["json"].read_text())["targets"]
    assert [target["title"] for target in targets] == [
        "reference (conformance reference server)",
        "vllm (conformance reference server)",
    ]
    assert [target["report"] for target in targets] == ["reference/report.json", "vllm/report.json"]
    assert "reference" in paths["md"].read_text()


def test_an_npm_package_is_installed_once_its_package_json_names_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = tmp_path / "node_modules" / "@scope" / "tool"
    installed.mkdir(parents=True)
    (installed / "package.json").write_text('{"name": "@scope/tool", "version": "1.0.0"}')
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    # Installed at that version: nothing is run (there is no npm on this PATH).
    assert npm_install(tmp_path, "@scope/tool", "1.0.0", tmp_path / "install.log", run_scripts=False) == installed
    # Another version must be installed, which needs npm: one clear sentence, no traceback.
    with pytest.raises(PeerError, match=r"^npm is needed here: install Node\.js \(with npm\)$"):
        npm_install(tmp_path, "@scope/tool", "2.0.0", tmp_path / "install.log", run_scripts=False)
