"""specs/canonical.yaml: the canonical contract annotated with every provider's, committed and current."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from conformance import contract
from conformance.cli import specs as specs_command
from conformance.specs.diff import build_matrix
from conformance.specs.documents import parse
from conformance.specs.merge import canonical_path, render_canonical


@pytest.fixture(scope="module")
def matrix():
    return build_matrix()


@pytest.fixture(scope="module")
def text(matrix) -> str:
    return render_canonical(matrix)


@pytest.fixture(scope="module")
def merged(text) -> dict:
    return parse(text)


def test_the_committed_file_is_up_to_date(text):
    assert canonical_path().read_text(encoding="utf-8") == text, "stale: run `conformance specs merge`"


def _without_annotations(node):
    """The node without x-provider* annotations and without added provider extensions."""
    if isinstance(node, dict):
        return {
            k: _without_annotations(v)
            for k, v in node.items()
            if not k.startswith("x-provider") and not (isinstance(v, dict) and v.get("x-extension"))
        }
    if isinstance(node, list):
        return [_without_annotations(item) for item in node]
    return node


def test_the_canonical_contract_is_left_alone(merged):
    assert contract.document().get("x-provider-matrix") is None  # merging works on a copy
    assert _without_annotations(merged["paths"]) == contract.document()["paths"]
    schemas = merged["components"]["schemas"]
    assert _without_annotations(schemas["Message"]) == contract.document()["components"]["schemas"]["Message"]
    assert set(contract.schema_names()) <= set(schemas)
    assert schemas["Message"]["properties"]["provider"]["x-providers"] == {"accepted": ["openrouter"]}


def test_properties_say_which_providers_accept_them_and_where_they_differ(merged):
    params = merged["components"]["schemas"]["CreateMessageParams"]["properties"]
    temperature = params["temperature"]["x-providers"]
    assert "cortecs" in temperature["accepted"] and "cortecs" in temperature["wider"]
    assert "maximum 2" in temperature["wider"]["cortecs"]
    assert params["metadata"]["x-providers"]["missing"] == ["ollama"]
    assert "openrouter" in params["max_tokens"]["x-providers"]["wider"]


def test_provider_extensions_are_added_and_marked(merged):
    params = merged["components"]["schemas"]["CreateMessageParams"]["properties"]
    preference = params["preference"]
    assert preference["x-extension"] is True and preference["x-providers"] == {"accepted": ["cortecs"]}
    assert preference["enum"] == ["speed", "cost", "balanced"]
    fallbacks = params["fallbacks"]
    assert fallbacks["x-providers"]["accepted"] == ["bifrost", "cortecs", "openrouter"]
    assert "x-provider-schemas" in fallbacks  # OpenRouter's fallbacks are objects, the others' strings
    for name in ("provider", "plugins", "session_id", "mcp_servers", "provider_only", "kv_transfer_params"):
        assert params[name]["x-extension"] is True, name


def test_facts_that_are_not_schemas_are_summarised(merged):
    summary = merged["x-provider-matrix"]
    assert summary["endpoint.count_tokens"]["openrouter"] == "missing"
    assert summary["stream.sentinel"]["cortecs"].startswith("added")
    assert summary["auth"]["nordlys"].startswith("narrower")
    assert merged["info"]["x-providers"] == build_matrix().providers


# --------------------------------------------------------------------------- the command


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="conformance")
    specs_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.handler(args)


@pytest.fixture
def specs_copy(tmp_path) -> Path:
    """A copy of specs/ to write into (profiles, contracts and canonical.yaml)."""
    target = tmp_path / "specs"
    shutil.copytree(contract.specs_dir(), target, ignore=shutil.ignore_patterns("vendor"))
    return target


def test_specs_merge_checks_writes_and_is_idempotent(specs_copy, capsys):
    """--check finds a missing file stale and writes nothing; merge writes; a second merge changes nothing."""
    canonical = specs_copy / "canonical.yaml"
    canonical.unlink()
    assert _run("specs", "merge", "--check", "--specs", str(specs_copy)) == 1
    assert "stale" in capsys.readouterr().err and not canonical.exists()
    assert _run("specs", "merge", "--specs", str(specs_copy)) == 0
    assert "wrote" in capsys.readouterr().out
    assert canonical.read_text() == canonical_path().read_text()
    assert _run("specs", "merge", "--specs", str(specs_copy)) == 0
    assert "up to date" in capsys.readouterr().out


def test_specs_merge_usage_error(tmp_path, capsys):
    assert _run("specs", "merge", "--specs", str(tmp_path)) == 2
    assert "no anthropic/openapi.yaml" in capsys.readouterr().err
