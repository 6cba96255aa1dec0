"""matrix.html in a real headless browser (Debian's chromium, tests/browser.py): it renders, a click
on a filter changes the visible cells, a click on a cell opens its cases, and a screenshot is kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.cli import main
from conformance.reference import ReferenceServer
from tests.broken_gateway import broken_app
from tests.browser import ARTIFACTS, Browser


@pytest.fixture
def matrix_page(tmp_path: Path) -> Path:
    """matrix.html built by the command from two real runs: the reference server and a broken gateway."""
    selection = ["--tier", "core", "-k", "count_tokens,tools,streaming,headers"]
    main(["run", *selection, "--out", str(tmp_path / "reference")])
    with ReferenceServer(app=broken_app("count_tokens", "tools", api_key="k")) as server:
        argv = ["run", *selection, "--base-url", server.base_url, "--api-key", "k"]
        assert main([*argv, "--out", str(tmp_path / "broken")]) == 1
    reports = [str(tmp_path / name / "report.json") for name in ("reference", "broken")]
    assert main(["matrix", *reports, "--out", str(tmp_path / "matrix")]) == 0
    return tmp_path / "matrix" / "matrix.html"


CELLS = (
    "Object.fromEntries(Array.from(document.querySelectorAll('tr.mrow:not([hidden]) td.cell'))"
    ".filter(td => td.dataset.count !== '0').map(td => [td.dataset.row + '/' + td.dataset.t, td.dataset.worst]))"
)


def test_matrix_renders_filters_and_opens_cells(browser: Browser, matrix_page: Path) -> None:
    browser.open(matrix_page.as_uri())
    browser.wait_for("!document.getElementById('filters').hidden")  # the page's script ran under its CSP
    assert browser.evaluate("document.querySelectorAll('th.target').length") == 2
    before: dict[str, str] = browser.evaluate(CELLS)
    tools = browser.evaluate("document.querySelector('tr.mrow[data-label=\"tools\"]').dataset.row")
    count_tokens = browser.evaluate("document.querySelector('tr.mrow[data-label=\"count_tokens\"]').dataset.row")
    assert before[f"{tools}/1"] == before[f"{count_tokens}/1"] == "failed"  # column 1: the broken gateway
    assert "passed" in before.values()

    # Verdict filter: without passed cases, all-passing cells empty and failing ones stay.
    browser.click('button[data-filter="verdict"][data-value="passed"]')
    assert browser.evaluate("document.querySelector('button[data-value=\"passed\"]').ariaPressed") == "false"
    after: dict[str, str] = browser.evaluate(CELLS)
    assert after and set(after) < set(before)
    assert not [cell for cell, worst in before.items() if worst == "passed" and cell in after]
    assert all(after[cell] == "failed" for cell, worst in before.items() if worst == "failed")

    # Tier filter on top: without core, only smoke cases count.
    browser.click('button[data-filter="tier"][data-value="core"]')
    assert browser.evaluate(CELLS) != after

    # Back to everything, then open the broken gateway's tools cell.
    browser.click('button[data-filter="tier"][data-value="core"]')
    browser.click('button[data-filter="verdict"][data-value="passed"]')
    assert browser.evaluate(CELLS) == before
    browser.click(f'td.cell[data-row="{tools}"][data-t="1"] button')
    assert browser.evaluate("!document.getElementById('detail').hidden")
    shown = browser.evaluate(
        "Array.from(document.querySelectorAll('#cases details.case:not([hidden])')).map(d => d.dataset.outcome)"
    )
    assert shown and set(shown) == {"failed"}
    assert "tools" in browser.evaluate("document.getElementById('detail-title').textContent")
    browser.click("#cases details.case:not([hidden]) > summary")
    assert browser.evaluate("document.querySelector('#cases details.case:not([hidden])').open")
    assert "the tools upstream is down" in browser.evaluate(
        "document.querySelector('#cases details.case:not([hidden])').innerText"
    )

    path = browser.screenshot(ARTIFACTS / "matrix.png")
    assert path.stat().st_size > 10_000
    print(f"screenshot: {path}")
