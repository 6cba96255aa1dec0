"""`conformance specs vendor PROVIDER --from FILE`: the provider's own OpenAPI, copied with its provenance."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from conformance import contract
from conformance.cli import specs as specs_command
from conformance.specs.vendor import VendorError, vendor

PUBLISHED = {
    "openapi": "3.1.0",
    "info": {"title": "Example router", "version": "1"},
    "servers": [{"url": "https://router.example/api/v1"}],
    "paths": {
        "/messages": {
            "post": {
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "shared/request.yaml#/Request"}}}},
                "responses": {"200": {"description": "ok"}},
            }
        }
    },
}
REQUEST = {
    "Request": {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": {"type": "string"},
            "messages": {"type": "array", "items": {"type": "object"}},
            "max_tokens": {"type": "integer"},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "route": {"type": "string"},
        },
    }
}


@pytest.fixture
def specs(tmp_path) -> Path:
    """A specs directory with the canonical contract and one provider's profile."""
    target = tmp_path / "specs"
    for name in ("anthropic", "openrouter"):
        shutil.copytree(contract.specs_dir() / name, target / name, ignore=shutil.ignore_patterns("vendor"))
    return target


@pytest.fixture
def published(tmp_path) -> Path:
    """A published spec split over two files, as some providers publish theirs."""
    folder = tmp_path / "download"
    (folder / "shared").mkdir(parents=True)
    (folder / "openapi.json").write_text(json.dumps(PUBLISHED))
    (folder / "shared" / "request.yaml").write_text(yaml.safe_dump(REQUEST))
    return folder / "openapi.json"


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="conformance")
    specs_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.handler(args)


def test_vendor_copies_the_files_and_records_their_provenance(specs, published):
    result = vendor("openrouter", str(published), specs, today="2026-11-22")
    folder = specs / "openrouter" / "vendor"
    assert result.directory == folder
    assert (folder / "openapi.json").read_bytes() == published.read_bytes()
    assert (folder / "shared" / "request.yaml").is_file()  # the $ref'd file, at the same relative place
    provenance = yaml.safe_load((folder / "provenance.yaml").read_text())
    assert provenance["source"] == str(published) and provenance["retrieved"] == "2026-11-22"
    assert provenance["root"] == "openapi.json" and provenance["openapi"] == "3.1.0"
    assert provenance["operations"] == {"messages": "/api/v1/messages"}
    files = {item["path"]: item for item in provenance["files"]}
    assert files["openapi.json"]["sha256"] == hashlib.sha256(published.read_bytes()).hexdigest()
    assert set(files) == {"openapi.json", "shared/request.yaml"}


def test_vendor_compares_the_published_spec_with_the_canonical_contract(specs, published):
    matrix = vendor("openrouter", str(published), specs).matrix
    assert matrix is not None
    cells = {row.path: row.cells["openrouter"] for row in matrix.rows}
    assert cells["request.temperature"].status.value == "wider" and "maximum 2" in cells["request.temperature"].detail
    assert cells["request.max_tokens"].status.value == "wider"  # optional
    assert cells["request.route"].status.value == "added"
    assert cells["request.thinking"].status.value == "missing"
    assert cells["endpoint.count_tokens"].status.value == "missing"


def test_specs_vendor_prints_the_diff(specs, published, capsys):
    assert _run("specs", "vendor", "openrouter", "--from", str(published), "--specs", str(specs)) == 0
    out = capsys.readouterr().out
    assert "vendored" in out and "2 file(s)" in out
    assert "request.temperature" in out and "request.route" in out


def test_specs_vendor_refuses_what_is_not_an_openapi_document(specs, tmp_path, capsys):
    bogus = tmp_path / "notes.yaml"
    bogus.write_text("just: notes\n")
    assert _run("specs", "vendor", "openrouter", "--from", str(bogus), "--specs", str(specs)) == 1
    assert "not an OpenAPI document" in capsys.readouterr().err
    assert not (specs / "openrouter" / "vendor").exists()
    assert _run("specs", "vendor", "openrouter", "--from", str(tmp_path / "absent.json"), "--specs", str(specs)) == 1
    with pytest.raises(VendorError, match="no such file"):
        vendor("openrouter", str(tmp_path / "absent.json"), specs)


def test_specs_vendor_unknown_provider_is_a_usage_error(specs, published, capsys):
    assert _run("specs", "vendor", "acme", "--from", str(published), "--specs", str(specs)) == 2
    assert "unknown provider 'acme'; known providers: anthropic, openrouter" in capsys.readouterr().err


def test_a_spec_without_a_messages_operation_is_vendored_but_not_compared(specs, tmp_path, capsys):
    other = tmp_path / "models.yaml"
    other.write_text(yaml.safe_dump({"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}}))
    assert _run("specs", "vendor", "openrouter", "--from", str(other), "--specs", str(specs)) == 0
    assert "nothing to compare" in capsys.readouterr().out
