"""report.html in a real headless browser (Debian's chromium, tests/browser.py): its script runs
under its CSP, the outcome toggles and the text filter change which cases show, "Expand all" opens
them, a link to #case-ID opens that case with its evidence, and a screenshot is kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.reference import ReferenceServer
from tests.broken_gateway import broken_app
from tests.browser import ARTIFACTS, Browser

SHOWN = "Array.from(document.querySelectorAll('details.case:not([hidden])')).map(d => d.id.slice(5))"


@pytest.fixture
def report_page(tmp_path: Path) -> tuple[Path, dict]:
    """report.html and report.json of a real run against a gateway whose count_tokens is broken."""
    with ReferenceServer(app=broken_app("count_tokens", api_key="k")) as server:
        selection = ["--tier", "core", "-k", "count_tokens,streaming"]
        argv = ["run", *selection, "--base-url", server.base_url, "--api-key", "k", "--out", str(tmp_path / "run")]
        assert main(argv) == 1
    return tmp_path / "run" / "report.html", json.loads((tmp_path / "run" / "report.json").read_text())


def test_report_renders_filters_and_opens_cases(browser: Browser, report_page: tuple[Path, dict]) -> None:
    page, report = report_page
    outcomes = {result["id"]: result["outcome"] for result in report["results"]}
    failed = sorted(case for case, outcome in outcomes.items() if outcome == "failed")
    passed = sorted(case for case, outcome in outcomes.items() if outcome == "passed")
    assert failed and passed

    browser.open(page.as_uri())
    browser.wait_for("!document.getElementById('filters').hidden")  # the page's script ran under its CSP
    assert sorted(browser.evaluate(SHOWN)) == sorted(outcomes)
    count = browser.evaluate("document.getElementById('shown-count').textContent")
    assert count == f"{len(outcomes)} of {len(outcomes)} cases"

    # Outcome toggle: without passed cases, only the others show.
    browser.click('button[data-outcome="passed"]')
    assert sorted(browser.evaluate(SHOWN)) == sorted(case for case in outcomes if case not in passed)

    # Text filter on top: one failing case by its id.
    browser.fill("#filter-text", failed[0])
    assert browser.evaluate(SHOWN) == [failed[0]]
    browser.fill("#filter-text", "no-such-case-anywhere")
    assert browser.evaluate(SHOWN) == []
    assert browser.evaluate("!document.getElementById('no-match').hidden")

    # Clear the filters, then expand everything that shows.
    browser.fill("#filter-text", "")
    browser.click('button[data-outcome="passed"]')
    assert sorted(browser.evaluate(SHOWN)) == sorted(outcomes)
    browser.click("#expand-all")
    assert browser.evaluate("Array.from(document.querySelectorAll('details.case')).every(d => d.open)")
    browser.click("#collapse-all")
    assert browser.evaluate("Array.from(document.querySelectorAll('details.case')).every(d => !d.open)")

    # A link to one case opens it, with its finding and the exchange as evidence.
    browser.evaluate(f"window.location.hash = {json.dumps('case-' + failed[0])}")
    browser.wait_for(f"document.getElementById({json.dumps('case-' + failed[0])}).open")
    text = browser.evaluate(f"document.getElementById({json.dumps('case-' + failed[0])}).innerText")
    finding = next(result for result in report["results"] if result["id"] == failed[0])["findings"][0]
    assert finding["check"] in text and "POST" in text and "/v1/messages/count_tokens" in text

    path = browser.screenshot(ARTIFACTS / "report.png")
    assert path.stat().st_size > 10_000
