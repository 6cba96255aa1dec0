"""Client impact observed by running the real clients: the broken variants of the reference server are
run, their failing answers replayed to the pinned Python and TypeScript SDKs and Claude Code, and each
variant gets the effect those clients really show.

The clients must be installed in .clients/ (`python -m conformance.clients` installs them; CI runs it):
where they are not, these tests are skipped, except under CI=true, where they fail. One replay batch per
client serves the whole module.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from conformance.cases import load_cases
from conformance.cli import main
from conformance.clients import install
from conformance.clients.versions import CLAUDE_CODE, CLIENTS, PYTHON_SDK, TYPESCRIPT_SDK
from conformance.impact.compute import compute_impact
from conformance.impact.names import BREAKS, DEFAULT_WORKDIR, DEGRADES, UNAFFECTED
from conformance.model import CaseResult, Outcome, RunReport
from conformance.peers.process import PeerError, installed_version, node_executable
from conformance.reference import ReferenceServer
from conformance.runner import run_suite
from conformance.target import Target
from tests import broken_variants as variants

WORKDIR = Path(__file__).resolve().parents[1] / DEFAULT_WORKDIR
CASES = {case.id: case for case in load_cases()}
SDKS = (PYTHON_SDK.name, TYPESCRIPT_SDK.name)
EVERY_CLIENT = (CLAUDE_CODE.name, *SDKS)
# The variants replayed (one case each): stream framing, tool input, stop reasons, errors, mid-stream errors.
REPLAYED = {
    "DoneSentinel": "streaming.text",
    "OpenAIErrors": "errors.overloaded",
    "DropBlockStart": "streaming.text",
    "ToolBlockPerChunk": "tools.streaming-tool-use",
    "DropInputJsonDelta": "tools.streaming-tool-use",
    "StopSequenceDropped": "streaming.stop-sequence",
    "MidStreamErrorSwallowed": "errors.mid-stream-overloaded",
    "ServerErrorOnBadToolInput": "errors.tool-use-input-not-an-object",
    "NoCountTokens": "count_tokens.basic",
}

# Answers of the contract a client fails on by itself: Claude Code ends with an error on a refusal.
CLIENTS_OWN = ("stop_reasons.refusal-stream",)


def missing_clients() -> list[str]:
    """The clients not installed (pinned) in .clients/, each with why."""
    missing = []
    venv = WORKDIR / f"{PYTHON_SDK.name}-{PYTHON_SDK.pinned}"
    if not (venv / "bin" / "python").exists():
        missing.append(f"{PYTHON_SDK.name} (no {venv})")
    package = WORKDIR / f"{TYPESCRIPT_SDK.name}-{TYPESCRIPT_SDK.pinned}" / "node_modules" / TYPESCRIPT_SDK.package
    if installed_version(package) != TYPESCRIPT_SDK.pinned:
        missing.append(f"{TYPESCRIPT_SDK.name} (not in {package})")
    try:
        node_executable()
    except PeerError as exc:
        missing.append(str(exc))
    binary = WORKDIR / f"{CLAUDE_CODE.name}-{CLAUDE_CODE.pinned}" / "node_modules" / CLAUDE_CODE.package / "bin"
    if not (binary / "claude.exe").is_file() or (binary / "claude.exe").stat().st_size < install.STUB_MAX_BYTES:
        missing.append(f"{CLAUDE_CODE.name} (no native binary in {binary})")
    return missing


@pytest.fixture(scope="module", autouse=True)
def clients_installed() -> None:
    missing = missing_clients()
    if missing:
        why = f"the clients are not installed ({'; '.join(missing)}): run `python -m conformance.clients`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why)
        pytest.skip(why)


def run_cases(app: object, case_ids: list[str]) -> RunReport:
    with ReferenceServer(app=app, api_key=variants.API_KEY) as server:
        target = Target(base_url=server.base_url, api_key=variants.API_KEY)
        return asyncio.run(run_suite(target, [CASES[case_id] for case_id in case_ids], concurrency=4))


@pytest.fixture(scope="module")
def impact() -> dict[str, dict[str, dict[str, str]]]:
    """Per variant (and "reference": the contract's own answers, marked failing), the impact per client."""
    results: list[tuple[str, CaseResult]] = []
    for name, case_id in REPLAYED.items():
        report = run_cases(getattr(variants, name)(), [case_id])
        results += [(name, result) for result in report.results]
    reference = run_cases(None, sorted({*REPLAYED.values(), *CLIENTS_OWN}))
    for result in reference.results:
        result.outcome = Outcome.FAILED  # replayed as if it had failed: a control
        results.append(("reference", result))
    combined = RunReport(reference.target, reference.started_at, reference.finished_at, [r for _, r in results])
    compute_impact(combined, list(CLIENTS.values()), WORKDIR)
    effects: dict[str, dict[str, dict[str, str]]] = {}
    for name, result in results:
        assert result.outcome is not Outcome.PASSED, f"{name}: {result.id} passed"
        for entry in result.impact:
            effects.setdefault(f"{name}:{result.id}" if name == "reference" else name, {})[entry["client"]] = entry
    return effects


def effects_of(impact: dict, key: str) -> dict[str, str]:
    return {client: entry["effect"] for client, entry in impact[key].items()}


def test_the_contracts_own_answers_leave_every_client_unaffected(impact: dict) -> None:
    controls = {key: effects_of(impact, key) for key in impact if key.startswith("reference:")}
    assert len(controls) == len({*REPLAYED.values(), *CLIENTS_OWN})
    for key, effects in controls.items():
        assert set(effects.values()) == {UNAFFECTED}, (key, impact[key])


def test_what_a_client_does_with_the_contracts_own_answer_is_not_blamed_on_the_target(impact: dict) -> None:
    detail = impact["reference:stop_reasons.refusal-stream"][CLAUDE_CODE.name]["detail"]
    assert detail.startswith("the contract's own answer does the same:")


def test_a_done_sentinel_after_message_stop_leaves_every_client_unaffected(impact: dict) -> None:
    assert effects_of(impact, "DoneSentinel") == dict.fromkeys(EVERY_CLIENT, UNAFFECTED)


def test_an_openai_shaped_error_still_reaches_every_client_as_its_status(impact: dict) -> None:
    assert effects_of(impact, "OpenAIErrors") == dict.fromkeys(EVERY_CLIENT, UNAFFECTED)
    assert all("529" in entry["detail"] or "Overloaded" in entry["detail"] for entry in impact["OpenAIErrors"].values())


def test_a_stream_without_content_block_start_breaks_every_client(impact: dict) -> None:
    assert effects_of(impact, "DropBlockStart") == dict.fromkeys(EVERY_CLIENT, BREAKS)
    assert all(entry["detail"] for entry in impact["DropBlockStart"].values())  # each client's own message


def test_a_tool_call_split_over_blocks_breaks_the_sdks_json_parsing(impact: dict) -> None:
    effects = effects_of(impact, "ToolBlockPerChunk")
    assert {effects[sdk] for sdk in SDKS} == {BREAKS}


def test_tool_input_that_never_streams_degrades_the_sdks(impact: dict) -> None:
    for sdk in SDKS:
        assert impact["DropInputJsonDelta"][sdk]["effect"] == DEGRADES
        assert "lacks city" in impact["DropInputJsonDelta"][sdk]["detail"]


def test_a_dropped_stop_sequence_degrades_every_client(impact: dict) -> None:
    assert effects_of(impact, "StopSequenceDropped") == dict.fromkeys(EVERY_CLIENT, DEGRADES)


def test_a_swallowed_mid_stream_error_degrades_every_client(impact: dict) -> None:
    assert effects_of(impact, "MidStreamErrorSwallowed") == dict.fromkeys(EVERY_CLIENT, DEGRADES)


def test_a_500_where_a_400_is_due_degrades_every_client(impact: dict) -> None:
    assert effects_of(impact, "ServerErrorOnBadToolInput") == dict.fromkeys(EVERY_CLIENT, DEGRADES)


def test_a_missing_count_tokens_breaks_the_sdks_and_is_no_call_of_claude_code(impact: dict) -> None:
    assert effects_of(impact, "NoCountTokens") == dict.fromkeys(SDKS, BREAKS)


@pytest.mark.parametrize(
    ("variant", "case", "flags", "code"),
    [
        ("DoneSentinel", "streaming.text", ["--impact"], 1),
        ("DoneSentinel", "streaming.text", ["--fail-on", "breaks"], 0),
        ("OpenAIErrors", "errors.missing-max-tokens", ["--fail-on-impact", "claude-code"], 0),
    ],
)
def test_run_with_impact_reports_each_failing_case_on_every_client(
    tmp_path: Path, variant: str, case: str, flags: list[str], code: int
) -> None:
    with ReferenceServer(app=getattr(variants, variant)(), api_key=variants.API_KEY) as server:
        argv = ["run", "--base-url", server.base_url, "--api-key", variants.API_KEY, "-k", case, "--no-preflight"]
        assert main([*argv, "--out", str(tmp_path), "--min-passed", "0", *flags]) == code
    [result] = json.loads((tmp_path / "report.json").read_text())["results"]
    assert result["outcome"] == "failed"
    assert {entry["client"]: entry["effect"] for entry in result["impact"]} == dict.fromkeys(EVERY_CLIENT, UNAFFECTED)
