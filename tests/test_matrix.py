"""The compatibility matrix: features and profiles x targets, as JSON, Markdown and one HTML page."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.consumers import Profile
from conformance.model import CaseResult, Exchange, Finding, Outcome, Request, Response, RunReport, TargetInfo
from conformance.report import write_reports
from conformance.report.matrix import (
    build_matrix,
    md_escape,
    render_matrix_html,
    render_matrix_markdown,
    target_label,
    write_matrix,
)

INJECTION = "<script>alert(1)</script> | [click](https://evil.test) **bold**"
PROFILE = Profile(name="streamer", title="Stream client", features=frozenset({"streaming"}), ids=("tools.stream*",))


def result(case_id: str, outcome: Outcome, message: str = "", tier: str = "core") -> CaseResult:
    request = Request("POST", "http://gw.test/v1/messages", {"x-api-key": "[REDACTED]"}, {"model": "m"})
    response = Response(500 if message else 200, {"content-type": "application/json"}, json={"said": message or "ok"})
    return CaseResult(
        id=case_id,
        feature=case_id.split(".")[0],
        outcome=outcome,
        tier=tier,
        findings=[Finding("expect.status", message, "messages.status")] if message else [],
        exchanges=[Exchange(request, response)],
    )


def report(provider: str, base_url: str, *results: CaseResult, started: str = "2025-03-04T05:06:07+00:00") -> RunReport:
    return RunReport(
        target=TargetInfo(base_url, provider, "claude-test"),
        started_at=started,
        finished_at=started,
        results=list(results),
    )


@pytest.fixture
def reports() -> list[tuple[str, RunReport]]:
    good = report(
        "anthropic",
        "https://api.anthropic.example",
        result("streaming.text", Outcome.PASSED, tier="smoke"),
        result("streaming.ping", Outcome.PASSED),
        result("tools.choice-any", Outcome.PASSED),
        result("tools.streaming-tool-use", Outcome.PASSED),
    )
    bad = report(
        "gw",
        "http://gateway.internal:8080/anthropic",
        result("streaming.text", Outcome.FAILED, INJECTION, tier="smoke"),
        result("streaming.ping", Outcome.DEVIATION),
        result("tools.choice-any", Outcome.ERROR, "connection reset"),
        result("count_tokens.basic", Outcome.UNSUPPORTED),
    )
    return [("good/report.json", good), ("bad/report.json", bad)]


def test_targets_are_labelled_by_provider_model_host_and_date(reports: list[tuple[str, RunReport]]) -> None:
    assert target_label(reports[1][1]) == "gw · claude-test · gateway.internal:8080 · 2025-03-04"
    twice = build_matrix([reports[0], reports[0]])
    assert [c.label for c in twice.columns] == [
        "anthropic · claude-test · api.anthropic.example · 2025-03-04",
        "anthropic · claude-test · api.anthropic.example · 2025-03-04 (2)",
    ]


def test_rows_are_features_then_profiles(reports: list[tuple[str, RunReport]]) -> None:
    catalogue_ids = ["streaming.text", "streaming.ping", "streaming.new-case", "tools.streaming-tool-use"]
    catalogue = [result(case_id, Outcome.PASSED) for case_id in catalogue_ids]
    matrix = build_matrix(reports, [PROFILE], catalogue)  # type: ignore[arg-type]  (results stand in for cases)
    assert [(row.kind, row.name) for row in matrix.rows] == [
        ("feature", "count_tokens"),
        ("feature", "streaming"),
        ("feature", "tools"),
        ("profile", "streamer"),
    ]
    streaming = matrix.rows[1]
    assert streaming.cells[0].counts["passed"] == 2 and streaming.cells[0].worst is Outcome.PASSED
    assert streaming.cells[1].worst is Outcome.FAILED
    assert matrix.rows[0].cells[0].results == []  # count_tokens was not run against the first target
    profile = matrix.rows[3]
    assert [r.id for r in profile.cells[0].results] == ["streaming.ping", "streaming.text", "tools.streaming-tool-use"]
    assert profile.cells[0].not_run == ["streaming.new-case"]
    assert profile.readiness(profile.cells[0]) == "incomplete"
    assert profile.readiness(profile.cells[1]) == "not ready"


def test_matrix_json(reports: list[tuple[str, RunReport]], tmp_path: Path) -> None:
    paths = write_matrix(build_matrix(reports, [PROFILE]), tmp_path)
    assert set(paths) == {"html", "md", "json"}
    data = json.loads(paths["json"].read_text())
    assert data["matrix_version"] == 1
    assert [t["host"] for t in data["targets"]] == ["api.anthropic.example", "gateway.internal:8080"]
    assert data["targets"][1]["summary"]["failed"] == 1 and data["targets"][1]["date"] == "2025-03-04"
    tools = next(row for row in data["rows"] if row["name"] == "tools")
    assert tools["cells"][1] == {
        "counts": {"error": 1, "failed": 0, "deviation": 0, "unsupported": 0, "warning": 0, "skipped": 0, "passed": 0},
        "worst": "error",
        "cases": {"tools.choice-any": "error"},
    }
    profile = next(row for row in data["rows"] if row["kind"] == "profile")
    assert profile["cells"][0]["readiness"] == "ready" and profile["cells"][1]["readiness"] == "not ready"


def test_matrix_markdown_is_a_table_and_inert(reports: list[tuple[str, RunReport]]) -> None:
    text = render_matrix_markdown(build_matrix(reports, [PROFILE]))
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len({line.count(" | ") for line in table if not line.startswith("|---")}) == 1  # every row has 3 cells
    assert "| streaming | ✅ 2 | ❌ 1 · 🟠 1 |" in text
    assert "**Stream client** (profile) | **ready**<br>✅ 3 | **not ready**<br>❌ 1 · 🟠 1 |" in text
    assert "<details><summary>gw · claude-test · gateway.internal:8080 · 2025-03-04: 2 failing</summary>" in text
    # The endpoint's message cannot open a tag, break the table, or make a link.
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "[click](" not in text and "\\[click\\]" in text and "\\|" in text
    assert md_escape("a\nb  c" + "x" * 300).startswith("a b c") and len(md_escape("x" * 300)) == 200


def test_matrix_html_is_self_contained_and_escaped(reports: list[tuple[str, RunReport]], tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    write_reports(reports[1][1], tmp_path / "bad")
    sources = [(str(tmp_path / "bad" / "report.json"), reports[1][1]), reports[0]]
    page = render_matrix_html(build_matrix(sources, [PROFILE], out_dir=tmp_path / "matrix"))
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"<(link|img|iframe)\b|src=\"http|url\(http", page)
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page
    # Each target's case is on the page once, whatever number of rows it counts in.
    assert page.count('data-outcome="failed" hidden') == 1
    assert 'data-rows="r1 r3"' in page  # streaming.text: in the streaming row and in the profile row
    assert 'href="../bad/report.html"' in page  # a link to the full report, where there is one
    assert page.count('<td class="cell"') == 4 * 2  # 3 feature rows and 1 profile row, x 2 targets


def test_the_command_refuses_what_is_not_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.json").write_text("[1, 2]")
    for argv in (
        ["matrix", str(tmp_path / "missing.json")],
        ["matrix", str(tmp_path / "notes.json")],
        ["matrix", str(tmp_path / "notes.json"), "--profile", "nope"],
    ):
        assert main([*argv, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("conformance: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_command_writes_all_three(reports: list[tuple[str, RunReport]], tmp_path: Path) -> None:
    sources = []
    for index, (_, run) in enumerate(reports):
        write_reports(run, tmp_path / str(index))
        sources.append(str(tmp_path / str(index) / "report.json"))
    argv = ["matrix", *sources, "--out", str(tmp_path / "matrix"), "--profile", "claude-code"]
    argv += ["--label", "prod", "--label", "gw"]
    assert main(argv) == 0
    assert {path.name for path in (tmp_path / "matrix").iterdir()} == {"matrix.html", "matrix.md", "matrix.json"}
    data = json.loads((tmp_path / "matrix" / "matrix.json").read_text())
    assert [row["name"] for row in data["rows"] if row["kind"] == "profile"] == ["claude-code"]
    assert [target["title"] for target in data["targets"]] == ["prod", "gw"]
    assert data["targets"][0]["label"].startswith("prod: anthropic · claude-test")
    assert "| Feature | **prod**<br>**anthropic**" in (tmp_path / "matrix" / "matrix.md").read_text()
    assert main(["matrix", sources[0], "--label", "a", "--label", "b", "--out", str(tmp_path / "other")]) == 2
