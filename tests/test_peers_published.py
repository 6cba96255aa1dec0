"""The published peers results stay explained: the reference route passes everything, every case a
peer's route does not pass is named in docs/background/peers.md in a row with its spec clause and a
reproduction, and each route's committed baseline expects exactly what its committed report shows.
A newly found difference therefore lands together with its explanation, or this test fails."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from conformance.baseline import Baseline, Expectation, load_baseline
from conformance.peers.harness import BASELINE, MATRIX_ORDER
from conformance.report import load_report

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "reports" / "peers"
DOC = ROOT / "docs" / "background" / "peers.md"
# The docs section that explains each peer's routes: (heading that opens it, heading that closes it).
SECTIONS = {
    "litellm": ("## What LiteLLM", "## vLLM"),
    "vllm": ("### What vLLM", "## Portkey"),
    "portkey": ("### What Portkey", "## claude-code-router"),
    "ccr": ("### What claude-code-router", None),
}
ROW = re.compile(r"^\|\s*([A-Z]\d+)\s*\|(.*)\|\s*$")
CASE_PATTERN = re.compile(r"[a-z][a-z_-]*\.[a-z0-9*_.-]+")


def explained_rows(peer: str) -> dict[str, list[str]]:
    """Row number -> its cells (case(s), clause, what happens, reproduction) in the peer's section."""
    text = DOC.read_text(encoding="utf-8")
    opening, closing = SECTIONS[peer]
    section = text[text.index(opening) : text.index(closing) if closing else len(text)]
    rows = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            # Reproductions may hold an escaped pipe (`\|`); it is not a cell boundary.
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", match.group(2))]
            rows[match.group(1)] = cells
    return rows


def case_patterns(rows: dict[str, list[str]]) -> list[str]:
    return [pattern for cells in rows.values() for pattern in CASE_PATTERN.findall(cells[0])]


def peer_of(route: str) -> str:
    return route.split("-", 1)[0]


def not_passing(route: str) -> dict[str, Expectation]:
    """The committed report's cases that did not pass, as a baseline written from it would list them."""
    return Baseline.from_results(load_report(PEERS / route / "report.json")).expectations


def test_the_reference_route_passes_everything() -> None:
    assert not_passing("reference") == {}


@pytest.mark.parametrize("peer", sorted(SECTIONS))
def test_every_explanation_names_its_clause_and_a_reproduction(peer: str) -> None:
    rows = explained_rows(peer)
    assert rows, f"no difference rows for {peer} in {DOC.name}"
    for number, cells in rows.items():
        assert len(cells) == 4, f"{number}: expected case(s) | clause | what happens | reproduction, got {cells}"
        cases, clause, what, reproduction = cells
        assert CASE_PATTERN.search(cases), f"{number}: names no case"
        assert clause and what, f"{number}: no clause or no description"
        assert "curl" in reproduction or "as V" in reproduction or "report.json" in reproduction, (
            f"{number}: no reproduction"
        )


@pytest.mark.parametrize("route", [route for route in MATRIX_ORDER if route != "reference"])
def test_every_difference_of_a_route_is_explained(route: str) -> None:
    patterns = case_patterns(explained_rows(peer_of(route)))
    unexplained = [
        f"{case} ({expectation.outcome.value}: {expectation.reason})"
        for case, expectation in not_passing(route).items()
        if not any(fnmatch.fnmatchcase(case, pattern) for pattern in patterns)
    ]
    assert unexplained == [], f"{route}: not explained in {DOC.name}: {unexplained}"


@pytest.mark.parametrize("route", MATRIX_ORDER)
def test_each_baseline_expects_what_its_report_shows(route: str) -> None:
    committed = load_baseline(PEERS / route / BASELINE).expectations
    shown = not_passing(route)
    assert {case: e.outcome for case, e in committed.items()} == {case: e.outcome for case, e in shown.items()}
