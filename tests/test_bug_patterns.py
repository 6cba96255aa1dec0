"""Every known bug pattern is caught: docs/reference/bug-patterns.md maps each to cases (or says why none),
and a broken variant of the reference server per pattern is run through those cases.

The pattern numbers are those of the shared list of real incompatibilities (numbers are stable,
with gaps); when that list is present next to the project, the table must cover exactly its numbers.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from conformance.cases import load_cases
from conformance.checks import CHECKS
from conformance.model import Outcome, RunReport, Severity
from conformance.reference import ReferenceServer
from conformance.runner import run_suite
from conformance.target import Target
from tests.broken_variants import API_KEY, VARIANTS, Catch

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "docs" / "reference" / "bug-patterns.md"
SHARED_LIST = ROOT.parent / "shared" / "reference" / "bug-patterns.md"
PATTERNS = (1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 16, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
            33, 34, 35, 36, 37, 38, 39, 41, 42, 43, 44, 45)  # fmt: skip
CASES = {case.id: case for case in load_cases()}


def table() -> dict[int, dict[str, object]]:
    """The rows of the pattern table: number -> {cases, checks, reason}."""
    rows: dict[int, dict[str, object]] = {}
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].isdigit():
            continue
        number = int(cells[0])
        assert number not in rows, f"pattern {number} has two rows"
        rows[number] = {
            "cases": re.findall(r"`([a-z_]+\.[a-z0-9_.-]+)`", cells[2]),
            "checks": re.findall(r"`([a-z_]+(?:\.[a-z0-9_-]+)?)`", cells[3]),
            "reason": cells[4],
        }
    return rows


def test_the_table_has_a_row_for_every_pattern() -> None:
    assert sorted(table()) == list(PATTERNS)


def test_the_numbers_are_those_of_the_shared_list() -> None:
    if not SHARED_LIST.is_file():
        pytest.skip(f"no shared list at {SHARED_LIST}")
    numbers = {int(n) for n in re.findall(r"^(\d+)\. \*\*", SHARED_LIST.read_text(encoding="utf-8"), re.MULTILINE)}
    assert numbers == set(PATTERNS)


@pytest.mark.parametrize("number", PATTERNS)
def test_every_pattern_is_caught_by_a_case_or_a_check_or_says_why_not(number: int) -> None:
    row = table()[number]
    assert row["cases"] or row["checks"] or len(str(row["reason"])) > 20, f"pattern {number}: nothing catches it"
    unknown_cases = [case for case in row["cases"] if case not in CASES]
    assert not unknown_cases, f"pattern {number} names cases that do not exist: {unknown_cases}"
    unknown_checks = [name for name in row["checks"] if name not in CHECKS and not name.startswith("expect.")]
    assert not unknown_checks, f"pattern {number} names checks that do not exist: {unknown_checks}"


def test_the_table_names_the_cases_that_catch_each_variant() -> None:
    rows = table()
    for catch in VARIANTS:
        missing = [case for case in catch.cases if case not in rows[catch.pattern]["cases"]]
        assert not missing, (
            f"pattern {catch.pattern}: {catch.variant.__name__} is caught by {missing}, not in the table"
        )


def run(catch: Catch) -> RunReport:
    with ReferenceServer(app=catch.variant()) as server:
        target = Target(base_url=server.base_url, api_key=API_KEY)
        return asyncio.run(run_suite(target, [CASES[case] for case in catch.cases], concurrency=4))


@pytest.mark.parametrize("catch", VARIANTS, ids=[f"{c.pattern}-{c.variant.__name__}" for c in VARIANTS])
def test_each_broken_variant_is_caught(catch: Catch) -> None:
    for result in run(catch).results:
        failures = {f.check for f in result.findings if f.severity is Severity.FAILURE}
        assert result.outcome is catch.outcome, f"{result.id}: {result.outcome.value} ({result.reason}); {failures}"
        if catch.outcome is Outcome.FAILED:
            assert failures & set(catch.checks), f"{result.id}: caught by {sorted(failures)}, not by {catch.checks}"
        if catch.outcome is Outcome.WARNING:
            warnings = {f.check for f in result.findings if f.severity is Severity.WARNING}
            assert warnings & set(catch.checks), f"{result.id}: warned by {sorted(warnings)}, not by {catch.checks}"


def test_the_reference_itself_passes_the_cases_the_variants_use() -> None:
    cases = sorted({case for catch in VARIANTS for case in catch.cases})
    with ReferenceServer(api_key=API_KEY) as server:
        target = Target(base_url=server.base_url, api_key=API_KEY)
        report = asyncio.run(run_suite(target, [CASES[case] for case in cases], concurrency=8))
    assert {result.id: result.outcome.value for result in report.results} == dict.fromkeys(cases, "passed")
