"""The spec diff matrix: field comparison, what the matrix says about the providers, the committed reports."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from conformance.cli import specs as specs_command
from conformance.specs.compare import Cell, Status, compare
from conformance.specs.diff import build_matrix, parent
from conformance.specs.fields import Field, lookup, strip_variants
from conformance.specs.render import FORMATS, RENDERERS
from conformance.specs.shapes import Bound
from tests.test_specs_profiles import PROVIDERS

REPORTS = Path(__file__).resolve().parents[1] / "reports" / "specs"


def field(path: str = "x", **kwargs) -> Field:
    bounds = kwargs.pop("bounds", {})
    return Field(path, bounds=tuple(sorted(bounds.items())), **kwargs)


NUMBER_0_1 = field(types=frozenset({"number"}), bounds={"minimum": Bound(0), "maximum": Bound(1)})


@pytest.mark.parametrize(
    ("other", "status"),
    [
        (NUMBER_0_1, Status.SAME),
        (field(types=frozenset({"number"}), bounds={"minimum": Bound(0), "maximum": Bound(2)}), Status.WIDER),
        (field(types=frozenset({"number"}), bounds={"minimum": Bound(0, True), "maximum": Bound(1)}), Status.NARROWER),
        (field(types=frozenset({"number", "null"}), bounds={"minimum": Bound(0), "maximum": Bound(1)}), Status.WIDER),
        (field(types=frozenset({"number"})), Status.WIDER),
        (field(types=frozenset({"integer"}), bounds={"minimum": Bound(0), "maximum": Bound(1)}), Status.NARROWER),
        (field(types=frozenset({"object"}), bounds={"minimum": Bound(0), "maximum": Bound(1)}), Status.CONFLICTING),
        (field(types=frozenset({"number"}), bounds={"minimum": Bound(0), "maximum": Bound(1)}, required=True),
         Status.NARROWER),
        (field(types=frozenset({"number"}), bounds={"minimum": Bound(-1), "maximum": Bound(0.5)}), Status.CONFLICTING),
        (None, Status.MISSING),
    ],
)  # fmt: skip
def test_compare_fields(other, status):
    assert compare(NUMBER_0_1, other).status is status


def test_compare_values_and_added():
    base = field(types=frozenset({"string"}), values=frozenset({"a", "b"}))
    assert compare(base, field(types=frozenset({"string"}), values=frozenset({"a"}))).status is Status.NARROWER
    wider = compare(base, field(types=frozenset({"string"}), values=frozenset({"a", "b", "c"})))
    assert wider == Cell(Status.WIDER, "values +c")
    assert compare(base, field(types=frozenset({"string"}), values=frozenset({"a", "c"}))).status is Status.CONFLICTING
    assert compare(base, field(types=frozenset({"string"}))).status is Status.WIDER
    assert compare(None, base).status is Status.ADDED


def test_paths_and_flat_unions():
    assert parent("request.tools[]<custom>.name") == "request.tools[]<custom>"
    assert parent("request.tools[]<custom>") == "request.tools[]"
    assert strip_variants("response.content[]<text>.citations[]<char_location>.x") == "response.content[].citations[].x"
    flat = {
        "c": field("c", types=frozenset({"object"})),
        "c.type": field("c.type", types=frozenset({"string"}), values=frozenset({"text", "image"})),
        "c.text": field("c.text", types=frozenset({"string"})),
    }
    assert lookup(flat, "c<text>.text") is flat["c.text"]
    assert lookup(flat, "c<document>.text") is None  # the flat union does not admit that type


@pytest.fixture(scope="module")
def matrix():
    return build_matrix()


def cell(matrix, path: str, provider: str) -> Cell:
    row = matrix.row(path)
    assert row is not None, path
    return row.cells[provider]


def test_the_matrix_covers_every_provider_but_the_canonical_one(matrix):
    assert matrix.providers == [name for name in PROVIDERS if name != "anthropic"]
    assert all(set(row.cells) == set(matrix.providers) for row in matrix.rows)


@pytest.mark.parametrize(
    ("path", "provider", "status", "detail"),
    [
        ("request.temperature", "cortecs", Status.WIDER, "maximum 2"),
        ("request.top_p", "cortecs", Status.CONFLICTING, "exclusive"),
        ("request.max_tokens", "openrouter", Status.WIDER, "optional"),
        ("request.max_tokens", "vllm", Status.NARROWER, "minimum 0 (exclusive)"),
        ("endpoint.count_tokens", "openrouter", Status.MISSING, ""),
        ("endpoint.count_tokens", "ollama", Status.MISSING, ""),
        ("endpoint.messages", "openrouter", Status.CONFLICTING, "/api/v1/messages"),
        ("auth", "cortecs", Status.NARROWER, "-x-api-key"),
        ("auth", "nordlys", Status.NARROWER, "-bearer"),
        ("stream.sentinel", "cortecs", Status.ADDED, "[DONE]"),
        ("request.tool_choice", "ollama", Status.MISSING, ""),
        ("request.metadata", "ollama", Status.MISSING, ""),
        ("request.thinking", "vllm", Status.MISSING, ""),
        ("response.stop_reason", "vllm", Status.NARROWER, "-pause_turn"),
        ("response.content[].type", "openrouter", Status.WIDER, "+compaction"),
        ("request.preference", "cortecs", Status.ADDED, ""),
        ("request.provider", "openrouter", Status.ADDED, ""),
        ("request.provider_only", "nordlys", Status.ADDED, ""),
        ("error.request_id", "bifrost", Status.MISSING, ""),
        ("request.temperature", "llamacpp", Status.SAME, ""),
    ],
)
def test_what_the_matrix_says(matrix, path, provider, status, detail):
    found = cell(matrix, path, provider)
    assert found.status is status, found
    assert detail in found.detail


def test_declared_deviations_point_at_rows_that_differ(matrix):
    for name in matrix.providers:
        for deviation in matrix.profiles[name].deviations:
            if deviation.field:
                row = matrix.row(deviation.field)
                assert row is not None, (name, deviation.id, deviation.field)
                assert row.cells[name].status is not Status.SAME, (name, deviation.id)


def test_the_shown_rows_leave_out_what_only_repeats(matrix):
    shown = {row.path for row in matrix.shown()}
    assert "request.temperature" in shown and "auth" in shown
    assert "request.messages[].content[]<text>.text" in shown  # bifrost's flat block: optional text
    assert not any(path.startswith("count_tokens.request.messages[") for path in shown)  # the same as request.*
    assert len(shown) < len(matrix.rows) / 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_committed_reports_are_up_to_date(matrix, fmt):
    committed = REPORTS / f"matrix.{fmt}"
    assert committed.is_file(), "run `conformance specs diff`"
    assert committed.read_text(encoding="utf-8") == RENDERERS[fmt](matrix), "stale: run `conformance specs diff`"


def test_the_json_report(matrix):
    data = json.loads(RENDERERS["json"](matrix))
    assert data["providers"] == matrix.providers and data["base"] == "anthropic"
    rows = {row["path"]: row for row in data["fields"]}
    assert rows["request.temperature"]["cells"]["cortecs"]["status"] == "wider"
    assert rows["request.temperature"]["deviations"]["cortecs"] == ["temperature-0-2"]
    assert data["profiles"]["cortecs"]["auth"] == "bearer"


def test_the_markdown_and_html_reports(matrix):
    markdown = RENDERERS["md"](matrix)
    assert "| `request.temperature` |" in markdown and "## Declared deviations" in markdown
    html = RENDERERS["html"](matrix)
    assert 'title="type +null; maximum 2 (base 1)"' in html and "<th>cortecs</th>" in html


# --------------------------------------------------------------------------- the command


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="conformance")
    specs_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.handler(args)


def test_specs_diff_prints_and_writes_the_matrix(tmp_path, capsys):
    assert _run("specs", "diff", "--out", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "request.temperature" in out and "openrouter" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matrix.html", "matrix.json", "matrix.md"]


def test_specs_diff_one_format_some_providers(tmp_path, capsys):
    assert _run("specs", "diff", "--format", "json", "--providers", "cortecs,ollama", "--out", str(tmp_path), "-q") == 0
    assert [p.name for p in tmp_path.iterdir()] == ["matrix.json"]
    assert json.loads((tmp_path / "matrix.json").read_text())["providers"] == ["cortecs", "ollama"]
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'matrix.json'}"


def test_specs_diff_usage_errors(tmp_path, capsys):
    assert _run("specs", "diff", "--providers", "acme", "--out", str(tmp_path)) == 2
    assert "unknown providers ['acme']" in capsys.readouterr().err
    assert _run("specs", "diff", "--specs", str(tmp_path), "--out", str(tmp_path)) == 2
    with pytest.raises(SystemExit):
        _run("specs", "diff", "--format", "pdf")


def test_every_subcommand_has_help():
    parser = argparse.ArgumentParser(prog="conformance")
    specs_command.register(parser.add_subparsers(dest="command", required=True))
    for action in ("merge", "diff", "vendor"):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(["specs", action, "--help"])
        assert exited.value.code == 0
