"""`conformance specs drift`: our contract against the official Python SDK's types.

The comparison and the allow-list are tested on small schemas; the pinned SDK release is
installed from PyPI into the cache (once) and must show no unexplained drift. Where it cannot
be installed the test is skipped with the reason, except in CI (`CI=true`), where it must run.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from conformance.cli import specs as specs_command
from conformance.specs.documents import SpecError, parse
from conformance.specs.drift import (
    DEFAULT_SDK_VERSION,
    Allowance,
    Difference,
    DriftError,
    _flatten,
    allow_path,
    compare_fields,
    differences,
    install_sdk,
    judge,
    load_allowances,
    sdk_schemas,
)

OLD_VERSION = "1.17.0"  # before the GA system role (SystemMessageParam came with 2.0.0)


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="conformance")
    specs_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.handler(args)


def _installed(version: str) -> Path:
    """The SDK's folder, installed into the cache; skipped (outside CI) when PyPI is out of reach."""
    try:
        return install_sdk(version)
    except DriftError as exc:
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip(f"the official SDK {version} could not be installed: {exc}")


def _sdk(version: str) -> dict:
    """The schemas of the installed SDK, as its probe reads them."""
    return sdk_schemas(_installed(version))


# --------------------------------------------------------------------------- comparing fields

MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {"role": {"enum": ["user", "assistant"]}, "content": {"type": "string"}},
}


def _fields(tmp_path: Path, name: str, properties: dict, required: list[str] | None = None) -> dict:
    schema = {"type": "object", "properties": properties, "required": required or []}
    return _flatten(schema, "request", tmp_path, name)


def test_each_kind_of_difference_is_found(tmp_path: Path) -> None:
    ours = _fields(
        tmp_path,
        "ours",
        {"messages": {"type": "array", "items": MESSAGE}, "top_k": {"type": "integer"}, "speed": {"enum": ["fast"]}},
        ["messages", "speed"],
    )
    ga_message = json.loads(json.dumps(MESSAGE))
    ga_message["properties"]["role"]["enum"].append("system")
    ga = _fields(
        tmp_path,
        "ga",
        {"messages": {"type": "array", "items": ga_message}, "speed": {"enum": ["fast", "standard"]}, "diag": {}},
    )
    beta = _fields(tmp_path, "beta", {"messages": {"type": "array", "items": ga_message}, "betas": {"type": "array"}})
    found = {(d.kind, d.path): d.detail for d in compare_fields(ours, ga, beta, True, ("Params", "BetaParams"))}
    assert found[("forbids", "request.messages[].role")] == "values system"
    assert "values standard" in found[("forbids", "request.speed")]
    assert "required in ours" in found[("forbids", "request.speed")]
    assert ("lacks", "request.diag") in found
    assert ("lacks-beta", "request.betas") in found
    assert ("extra", "request.top_k") in found


def test_beta_only_and_response_required(tmp_path: Path) -> None:
    ours = _fields(tmp_path, "ours", {"clear_at": {"type": "string"}, "usage": {"type": "integer"}})
    ga = _fields(tmp_path, "ga", {"usage": {"type": "integer"}}, ["usage"])
    beta = _fields(tmp_path, "beta", {"clear_at": {"type": "string"}, "usage": {"type": "integer"}})
    found = {(d.kind, d.path) for d in compare_fields(ours, ga, beta, False, ("Message", "BetaMessage"))}
    assert found == {("beta-only", "request.clear_at"), ("required", "request.usage")}


def test_the_current_contract_names_the_sdk_type_of_each_difference(tmp_path: Path) -> None:
    """A missing GA type is one difference naming it; a field the SDK adds names its SDK type."""
    sdk = {"schemas": {}, "types": {"ga.system_message": "SystemMessageParam", "beta.system_message": "Beta"}}
    found = differences(sdk)
    system = next(d for d in found if d.path == "system_message")
    assert system.kind == "extra" and "SystemMessageParam" in system.detail
    schema = {"$defs": {"Params": MESSAGE}, "$ref": "#/$defs/Params"}
    sdk = {"schemas": {"ga.message": schema}, "types": {"ga.message": "Message"}}
    lacked = [d for d in differences(sdk) if d.kind == "lacks"]
    assert lacked == []  # role and content of the message are ours too


# --------------------------------------------------------------------------- the allow-list


def test_allowances_match_literally_but_for_stars() -> None:
    allowance = Allowance("extra", "*request.tools[]<*>.name", "why")
    assert allowance.covers(Difference("extra", "count_tokens.request.tools[]<bash_20250124>.name", ""))
    assert not allowance.covers(Difference("extra", "request.toolsx<a>.name", ""))
    assert not allowance.covers(Difference("lacks", "request.tools[]<a>.name", ""))


def test_judge_sorts_explained_unexplained_and_unused() -> None:
    used = Allowance("extra", "request.top_k", "deprecated, still accepted")
    unused = Allowance("lacks", "request.nothing", "gone")
    top_k, speed = Difference("extra", "request.top_k", ""), Difference("lacks", "request.speed", "")
    result = judge("9.9.9", [top_k, speed], [used, unused])
    assert result.explained == [(top_k, used)] and result.unexplained == [speed] and result.unused == [unused]


def test_an_allowance_needs_a_kind_a_path_and_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "allow.yaml"
    path.write_text("allow:\n  - {kind: extra, path: request.x}\n")
    with pytest.raises(SpecError, match="needs a path and a reason"):
        load_allowances(path)
    path.write_text("allow:\n  - {kind: odd, path: request.x, reason: r}\n")
    with pytest.raises(SpecError, match="needs a kind"):
        load_allowances(path)
    assert all(allowance.reason for allowance in load_allowances(allow_path()))


# --------------------------------------------------------------------------- installing


def test_a_bad_version_is_a_usage_error(capsys) -> None:
    assert _run("specs", "drift", "--sdk-version", "2.x; rm -rf /") == 2
    assert "is not a version number" in capsys.readouterr().err


def test_an_unreachable_index_is_one_clear_sentence(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    assert _run("specs", "drift", "--sdk-version", "0.0.1", "--cache", str(tmp_path / "cache")) == 1
    err = capsys.readouterr().err
    assert "pip could not install anthropic==0.0.1" in err and "Traceback" not in err
    assert not list((tmp_path / "cache").glob("anthropic-*"))


# --------------------------------------------------------------------------- the pinned SDK


def test_the_contract_follows_the_pinned_sdk_without_unexplained_drift() -> None:
    sdk = _sdk(DEFAULT_SDK_VERSION)
    assert sdk["version"] == DEFAULT_SDK_VERSION and not sdk["missing"]
    result = judge(sdk["version"], differences(sdk), load_allowances(allow_path()))
    assert result.unexplained == []
    assert result.unused == [], "allow-list entries that no longer match anything"
    assert parse(allow_path().read_text())["sdk_version"] == DEFAULT_SDK_VERSION


def test_against_1_17_0_the_ga_system_role_did_not_exist() -> None:
    sdk = _sdk(OLD_VERSION)
    found = differences(sdk)
    system = next(d for d in found if d.path == "system_message")
    assert system.kind == "extra"
    assert "neither SystemMessageParam (GA) nor BetaSystemMessageParam (beta)" in system.detail
    result = judge(sdk["version"], found, load_allowances(allow_path()))
    assert system in result.unexplained


def test_the_command_reports_the_pinned_release(capsys) -> None:
    _installed(DEFAULT_SDK_VERSION)  # installed (or skipped) before the command runs
    assert _run("specs", "drift") == 0
    out = capsys.readouterr().out
    assert f"anthropic {DEFAULT_SDK_VERSION} against our contract" in out and "0 unexplained" in out
