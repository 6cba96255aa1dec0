"""The pytest plugin: `pytest --conformance` collects the catalogue as items, one per case."""

from __future__ import annotations

import functools
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conformance.cases import Case, load_cases, select, tiers_up_to
from conformance.cli import main
from conformance.consumers import get_profile
from conformance.reference import ReferenceServer
from tests.broken_gateway import broken_app

pytest_plugins = ["pytester"]

EXAMPLE_CONFTEST = Path(__file__).resolve().parents[1] / "docs" / "examples" / "conftest.py"


@functools.cache
def catalogue() -> tuple[Case, ...]:
    return tuple(load_cases())


def case_ids(tier: str = "extended") -> list[str]:
    return [case.id for case in select(catalogue(), tiers_up_to(tier))]


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if line.startswith("conformance::")]


@pytest.fixture
def broken_tools() -> Iterator[str]:
    with ReferenceServer(app=broken_app("tools", api_key="k")) as server:
        yield server.base_url


def test_inert_without_the_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_own(): pass")
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=1)
    assert not collected(pytester.runpytest("--co", "-q"))


def test_one_item_per_case_next_to_the_projects_own_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_own(): pass")
    result = pytester.runpytest("--conformance", "--co", "-q")
    assert collected(result) == [f"conformance::{case_id}" for case_id in case_ids()]
    assert "test_one_item_per_case_next_to_the_projects_own_tests.py::test_own" in result.stdout.str()


def test_the_catalogue_passes_against_the_reference_server(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--conformance", "-q")
    result.assert_outcomes(passed=len(case_ids()))
    assert result.ret == 0


def test_works_with_xdist(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--conformance", "-n", "2", "-m", "tier_smoke", "-q")
    result.assert_outcomes(passed=len(case_ids("smoke")))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-m", "tier_smoke"], lambda: case_ids("smoke")),
        (["-k", "count_tokens"], lambda: [i for i in case_ids() if "count_tokens" in i]),
        (
            ["-m", "feature_tools and not tier_smoke"],
            lambda: [
                c.id
                for c in catalogue()
                if c.feature == "tools" and c.tier != "smoke" and c.tier in tiers_up_to("extended")
            ],
        ),
        (
            ["--profile", "claude-code"],
            lambda: [c.id for c in get_profile("claude-code").select(catalogue())],  # its provider probes too
        ),
        (
            ["-m", "profile_claude_code and tier_smoke"],
            lambda: [c.id for c in get_profile("claude-code").select(select(catalogue(), ["smoke"]))],
        ),
        (
            ["--conformance-tier", "smoke", "-k", "streaming"],
            lambda: [c.id for c in select(catalogue(), ["smoke"], "streaming")],
        ),
    ],
)
def test_selection(pytester: pytest.Pytester, args: list[str], expected: Callable[[], list[str]]) -> None:
    result = pytester.runpytest("--conformance", "--co", "-q", *args)
    assert collected(result) == [f"conformance::{case_id}" for case_id in expected()]
    assert expected()


def test_findings_are_readable_assertion_messages(pytester: pytest.Pytester, broken_tools: str) -> None:
    result = pytester.runpytest("--conformance", "--base-url", broken_tools, "--api-key", "k", "-k", "choice-any")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*conformance::tools.choice-any*",
            "tools.choice-any: failed (tools, spec messages.request.tool_choice)",
            "  - expect.status: expected HTTP 200, got 500 (the tools upstream is down)*",
            f"  step 0: POST {broken_tools}/v1/messages -> 500 *",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_the_baseline_turns_known_failures_into_xfail(
    pytester: pytest.Pytester, broken_tools: str, tmp_path: Path
) -> None:
    argv = ["run", "--base-url", broken_tools, "--api-key", "k", "--out", str(tmp_path / "run")]
    selection = ["-k", "tools.choice or count_tokens.basic"]
    assert main([*argv, "-k", "tools.choice,count_tokens.basic"]) == 1
    baseline = tmp_path / "baseline.yaml"
    assert main(["baseline", "write", str(tmp_path / "run" / "report.json"), "-o", str(baseline)]) == 0
    failing = sum(1 for line in baseline.read_text().splitlines() if line.startswith("  tools.choice"))
    assert failing == 4

    options = ["--conformance", "--base-url", broken_tools, "--api-key", "k", "--baseline", str(baseline), *selection]
    known = pytester.runpytest(*options)
    known.assert_outcomes(passed=1, xfailed=4)
    assert known.ret == 0

    # The gateway breaks count_tokens too: that one is new, and fails.
    with ReferenceServer(app=broken_app("tools", "count_tokens", api_key="k")) as worse:
        options[2] = worse.base_url
        regressed = pytester.runpytest(*options)
    regressed.assert_outcomes(failed=1, xfailed=4)

    # Fixed on the reference server: the baselined cases XPASS (not strict: the run still passes).
    fixed = pytester.runpytest("--conformance", "--baseline", str(baseline), *selection)
    fixed.assert_outcomes(passed=1, xpassed=4)
    assert fixed.ret == 0


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--baseline", "missing.yaml"], "*cannot read baseline missing.yaml*"),
        (["--profile", "nope"], "*unknown profile 'nope'*"),
        (["--conformance-retries", "-1"], "*--conformance-retries: expected a whole number, 0 or more, got '-1'*"),
        (["--conformance-capabilities", ","], "*--conformance-capabilities: expected a comma-separated list of names*"),
    ],
)
def test_usage_errors(pytester: pytest.Pytester, args: list[str], said: str) -> None:
    result = pytester.runpytest("--conformance", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([said])


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--conformance-tier", "smok"], "unknown tier 'smok': did you mean 'smoke'?"),
        (["--conformance-profile", "claude-cod"], "unknown profile 'claude-cod': did you mean 'claude-code'?"),
        (["--conformance-capabilities", "vision,thinkin"], "unknown capability 'thinkin': did you mean 'thinking'?"),
        (["--provider", "openrouterr"], "unknown provider 'openrouterr': did you mean 'openrouter'?"),
        (["--auth", "bearr"], "unknown auth style 'bearr': did you mean 'bearer'?"),
        (["--conformance-fail-on", "warnings"], "unknown fail-on level 'warnings': did you mean 'warning'?"),
    ],
)
def test_a_misspelt_name_stops_the_session_with_a_suggestion(
    pytester: pytest.Pytester, args: list[str], complaint: str
) -> None:
    result = pytester.runpytest("--conformance", "--co", "-q", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert not collected(result)
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: " + complaint), result.errlines


def test_the_example_conftest_starts_the_gateway(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(EXAMPLE_CONFTEST, pytester.path / "conftest.py")
    # The reference server plays the gateway this repository would start.
    monkeypatch.setenv("GATEWAY_COMMAND", f"{sys.executable} -m conformance serve --port {{port}} --any-key")
    result = pytester.runpytest_subprocess("--conformance", "-m", "tier_smoke", "-q")
    result.assert_outcomes(passed=len(case_ids("smoke")))
    assert "the embedded reference server" not in result.stdout.str()
