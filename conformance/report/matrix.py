"""The compatibility matrix: features (and consumer profiles) x targets, from several report.json files.

Three renderings of one model: matrix.json for machines, matrix.md for a GitHub step summary or a
README, and matrix.html, one self-contained page where each cell opens the cases behind it with
their findings and (redacted) exchanges. As in report.html, everything that comes from a run is
untrusted: the HTML template autoescapes it under a strict Content-Security-Policy, and the
Markdown escapes it so that an endpoint's error message cannot inject markup into a step summary.
"""

from __future__ import annotations

import html
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conformance import __version__
from conformance.atomic import atomic_write_text
from conformance.cases import TIERS, Case
from conformance.consumers import Profile, breakage, readiness
from conformance.impact.names import BREAKS, DEGRADES, EFFECTS, client_title
from conformance.impact.tally import effect_of, tally
from conformance.model import OWN_DOCS_OUTCOMES, CaseResult, Outcome, RunReport
from conformance.redact import Redactor
from conformance.report.evidence import report_document, strict_json
from conformance.report.html import CaseView, _case_view, _environment
from conformance.report.json_report import headline, parse_timestamp, write_json_document
from conformance.report.junit import xml_text

MATRIX_VERSION = 1
# Worst first: a cell takes the colour of the worst outcome among its cases.
SEVERITY_ORDER = (
    Outcome.ERROR,
    Outcome.FAILED,
    Outcome.DEVIATION,
    Outcome.UNSUPPORTED,
    Outcome.WARNING,
    Outcome.SKIPPED,
    Outcome.PASSED,
)
SYMBOLS = {
    Outcome.PASSED: "✅",
    Outcome.WARNING: "🟡",
    Outcome.FAILED: "❌",
    Outcome.DEVIATION: "🟠",
    Outcome.UNSUPPORTED: "⚪",
    Outcome.SKIPPED: "⏭️",
    Outcome.ERROR: "💥",
}
# Failing cases listed per target in matrix.md; the rest are counted.
MARKDOWN_FAILURES = 25
# How a column whose run was interrupted is marked.
INCOMPLETE = "incomplete"


@dataclass
class Column:
    """One target, as one report.json describes it."""

    index: int
    label: str
    report: RunReport
    source: str = ""
    # A name given on the command line (`--label`), shown above the target's facts.
    title: str = ""
    # Link from the matrix to the report's own report.html, when it sits next to report.json.
    html_link: str = ""

    @property
    def host(self) -> str:
        return report_host(self.report)

    @property
    def date(self) -> str:
        return report_date(self.report)

    @property
    def failing(self) -> int:
        return sum(1 for result in self.report.results if result.outcome in (Outcome.FAILED, Outcome.ERROR))

    @property
    def incomplete(self) -> str:
        """ "incomplete (...)" when the run was interrupted before every case ran; "" for a whole run."""
        report = self.report
        if report.complete:
            return ""
        why = f"interrupted ({report.interrupted}), " if report.interrupted else ""
        return f"{INCOMPLETE} ({why}{len(report.not_run)} not run)"


@dataclass
class Cell:
    results: list[CaseResult] = field(default_factory=list)
    # Profile rows: the profile's cases (per today's catalogue) that this run did not include.
    not_run: list[str] = field(default_factory=list)
    # Client rows: how many of the run's cases have each effect on the client.
    effects: dict[str, int] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        counts = {outcome.value: 0 for outcome in SEVERITY_ORDER}
        for result in self.results:
            counts[result.outcome.value] += 1
        return counts

    @property
    def worst(self) -> Outcome | None:
        present = {result.outcome for result in self.results}
        return next((outcome for outcome in SEVERITY_ORDER if outcome in present), None)

    @property
    def own_docs(self) -> dict[str, int] | None:
        """The second axis: how many cases pass, fail or are not in the provider's own docs (None: not judged)."""
        judged = [result.own_docs["outcome"] for result in self.results if result.own_docs is not None]
        return {outcome: judged.count(outcome) for outcome in OWN_DOCS_OUTCOMES} if judged else None

    @property
    def own_docs_mark(self) -> str | None:
        """`own docs: failed 2 · passed 5 · not documented 1` (worst first), or None when not judged."""
        counts = self.own_docs
        if counts is None:
            return None
        parts = [f"{o.replace('-', ' ')} {counts[o]}" for o in ("failed", "passed", "not-documented") if counts[o]]
        return "own docs: " + " · ".join(parts)


@dataclass
class Row:
    key: str
    kind: str  # "feature", "profile" or "client" (the cases whose answers break or degrade a real client)
    name: str
    cells: list[Cell]
    title: str = ""
    description: str = ""
    # Profile rows: the profile, to say how many of its cases break its clients.
    profile: Profile | None = None

    @property
    def label(self) -> str:
        return self.title or self.name

    def readiness(self, cell: Cell) -> str | None:
        """Profile rows only: can this client be deployed on the cell's target."""
        if self.kind != "profile":
            return None
        return readiness((r.outcome for r in cell.results), len(cell.not_run))

    def impact(self, cell: Cell) -> str | None:
        """Client rows: the cases per effect on the client ("breaks 4 · degrades 2 · unaffected 9");
        profile rows: how many of its cases break its clients. None when no impact was computed."""
        if self.kind == "client":
            return " · ".join(f"{e} {cell.effects[e]}" for e in EFFECTS if cell.effects.get(e)) or None
        if self.kind == "profile" and self.profile is not None:
            return "; ".join(breakage(self.profile, cell.results)) or None
        return None


@dataclass
class Matrix:
    columns: list[Column]
    rows: list[Row]
    generated_at: str

    @property
    def feature_rows(self) -> list[Row]:
        return [row for row in self.rows if row.kind == "feature"]

    @property
    def profile_rows(self) -> list[Row]:
        return [row for row in self.rows if row.kind == "profile"]

    @property
    def client_rows(self) -> list[Row]:
        return [row for row in self.rows if row.kind == "client"]


def report_host(report: RunReport) -> str:
    """The base URL's host (and port): where the target was reached."""
    return urlsplit(report.target.base_url).netloc or report.target.base_url


def report_date(report: RunReport) -> str:
    started = parse_timestamp(report.started_at)
    return started.date().isoformat() if started else ""


def target_label(report: RunReport) -> str:
    """provider · model · host · date: how a column is named."""
    parts = [report.target.provider, report.target.model, report_host(report), report_date(report)]
    return " · ".join(part for part in parts if part)


def build_matrix(
    reports: Sequence[tuple[str, RunReport]],
    profiles: Iterable[Profile] = (),
    catalogue: list[Case] | None = None,
    out_dir: Path | None = None,
    titles: Sequence[str] = (),
    redactor: Redactor | None = None,
) -> Matrix:
    """The matrix of (source path, report) pairs, in the given order.

    `catalogue` (today's cases) lets a profile cell say which of the profile's cases a run left
    out; `out_dir` lets a column link to the report.html next to its report.json; `titles` name
    the columns in order (several runs against one target: "smoke", "claude-code"). Each report
    is first passed through the report bounds, made strict and redacted by `redactor` (when given;
    conformance.report.evidence), so that nothing the matrix writes is unbounded or holds a secret
    it knows.
    """
    reports = [(source, RunReport.from_dict(report_document(report, redactor))) for source, report in reports]
    columns: list[Column] = []
    seen: dict[str, int] = {}
    shared = Counter(_heading(report) for _, report in reports)
    for index, (source, report) in enumerate(reports):
        # Runs whose headings look alike (the same target twice) are told apart by where their report lies.
        default = _source_name(source, [s for s, r in reports if _heading(r) == _heading(report)])
        title = titles[index] if index < len(titles) else default if shared[_heading(report)] > 1 else ""
        label = f"{title}: {target_label(report)}" if title else target_label(report)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label} ({seen[label]})"
        columns.append(Column(index, label, report, source, title=title, html_link=_html_link(source, out_dir)))
    features = sorted({result.feature for column in columns for result in column.report.results})
    rows = [
        Row(
            f"r{index}",
            "feature",
            feature,
            [Cell(_by_id(r for r in column.report.results if r.feature == feature)) for column in columns],
        )
        for index, feature in enumerate(features)
    ]
    for profile in profiles:
        expected = profile.select(catalogue or [])
        cells = []
        for column in columns:
            results = _by_id(profile.select(column.report.results))
            tiers = _tiers_run(column.report)
            left_out = {case.id for case in expected if case.tier in tiers} - {r.id for r in column.report.results}
            cells.append(Cell(results, sorted(left_out)))
        rows.append(Row(f"r{len(rows)}", "profile", profile.name, cells, profile.title, profile.description, profile))
    clients = sorted({str(e.get("client")) for c in columns for r in c.report.results for e in r.impact})
    for client in clients:
        cells = [
            Cell(
                _by_id(r for r in column.report.results if effect_of(r, client) in (BREAKS, DEGRADES)),
                [],
                tally(column.report.results).get(client, {}),
            )
            for column in columns
        ]
        description = "cases whose recorded answers break or degrade it, replayed to it (docs/how-to/impact.md)"
        rows.append(Row(f"r{len(rows)}", "client", client, cells, client_title(client), description))
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return Matrix(columns=columns, rows=rows, generated_at=generated)


def _tiers_run(report: RunReport) -> tuple[str, ...]:
    """The tiers a run selected: up to the most expensive tier among its cases (a smoke run did not leave
    out the core cases, it never meant to run them)."""
    ran = [TIERS.index(result.tier) for result in report.results if result.tier in TIERS]
    return TIERS[: max(ran) + 1] if ran else TIERS


def _heading(report: RunReport) -> tuple[str, str, str, bool]:
    """What names a column's target at a glance: provider, model, and the host unless it is the embedded
    reference server (on a new port each run, yet the same target)."""
    target = report.target
    return target.provider, target.model, "" if target.reference else report_host(report), target.reference


def _source_name(source: str, alike: list[str]) -> str:
    """The shortest tail of `source`'s directory that differs from those of the `alike` sources ("" if none)."""
    parts = Path(source).parent.parts
    for size in range(1, len(parts) + 1):
        tail = "/".join(parts[-size:])
        if sum(1 for other in alike if "/".join(Path(other).parent.parts[-size:]) == tail) == 1:
            return tail
    return ""


def _by_id(results: Iterable[CaseResult]) -> list[CaseResult]:
    return sorted(results, key=lambda result: result.id)


def _html_link(source: str, out_dir: Path | None) -> str:
    if not source or out_dir is None:
        return ""
    page = Path(source).parent / "report.html"
    if not page.is_file():
        return ""
    return Path(os.path.relpath(page.resolve(), Path(out_dir).resolve())).as_posix()


# -- matrix.json ----------------------------------------------------------------------------------


def matrix_to_dict(matrix: Matrix) -> dict[str, Any]:
    targets = []
    for column in matrix.columns:
        target = column.report.target
        targets.append(
            {
                "label": column.label,
                "title": column.title,
                "provider": target.provider,
                "model": target.model,
                "host": column.host,
                "base_url": target.base_url,
                "reference": target.reference,
                "date": column.date,
                "started_at": column.report.started_at,
                "report": column.source,
                "summary": column.report.summary(),
                "complete": column.report.complete,
                "interrupted": column.report.interrupted,
                "not_run": len(column.report.not_run),
            }
        )
    rows = []
    for row in matrix.rows:
        cells = []
        for cell in row.cells:
            data: dict[str, Any] = {
                "counts": cell.counts,
                "worst": cell.worst.value if cell.worst else None,
                "cases": {result.id: result.outcome.value for result in cell.results},
            }
            if row.kind == "profile":
                data["readiness"] = row.readiness(cell)
                data["not_run"] = cell.not_run
            impact = row.impact(cell)
            if impact is not None:
                data["impact"] = impact
            if cell.own_docs is not None:
                data["own_docs"] = cell.own_docs
            cells.append(data)
        rows.append({"kind": row.kind, "name": row.name, "title": row.title, "cells": cells})
    return {
        "matrix_version": MATRIX_VERSION,
        "tool": {"name": "conformance", "version": __version__},
        "generated_at": matrix.generated_at,
        "targets": targets,
        "rows": rows,
    }


# -- matrix.md ------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_escape(text: str, limit: int = 200) -> str:
    """Untrusted text made inert in Markdown (and the HTML it allows): one line, capped, no control characters."""
    text = " ".join(xml_text(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def _md_counts(cell: Cell) -> str:
    counts = cell.counts
    parts = [f"{SYMBOLS[o]} {counts[o.value]}" for o in SEVERITY_ORDER if counts[o.value]]
    return " · ".join(parts) or "—"


def _md_cell(row: Row, cell: Cell) -> str:
    text = _md_counts(cell)
    state = row.readiness(cell)
    if state is not None:
        text = f"**{state}**<br>{text}"
        if cell.not_run:
            text += f"<br>{len(cell.not_run)} not run"
    impact = row.impact(cell)
    if impact is not None:
        text = f"{md_escape(impact)}" if row.kind == "client" else f"{text}<br>{md_escape(impact)}"
    if cell.own_docs_mark and row.kind != "client":
        text += f"<br>{cell.own_docs_mark}"
    return text


def render_matrix_markdown(matrix: Matrix) -> str:
    """matrix.md: a table that GitHub renders in a step summary or a README."""
    lines = ["## Compatibility matrix", ""]
    if not matrix.columns:
        return "\n".join([*lines, "No reports.", ""])
    header = ["Feature"]
    for column in matrix.columns:
        target = column.report.target
        parts = [f"**{md_escape(column.title)}**"] if column.title else []
        parts += [f"**{md_escape(target.provider or '?')}**", md_escape(target.model, 80)]
        parts += [
            md_escape(column.host, 80),
            column.date,
            f"⚠️ {md_escape(column.incomplete)}" if column.incomplete else "",
        ]
        header.append("<br>".join(part for part in parts if part))
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for row in matrix.rows:
        name = md_escape(row.name) if row.kind == "feature" else f"**{md_escape(row.label)}** ({row.kind})"
        lines.append("| " + " | ".join([name, *(_md_cell(row, cell) for cell in row.cells)]) + " |")
    legend = " · ".join(f"{SYMBOLS[o]} {o.value}" for o in SEVERITY_ORDER)
    lines += ["", legend, ""]
    for column in matrix.columns:
        failing = sorted(
            (r for r in column.report.results if r.outcome in (Outcome.FAILED, Outcome.ERROR)), key=lambda r: r.id
        )
        if not failing:
            continue
        lines.append(f"<details><summary>{md_escape(column.label)}: {len(failing)} failing</summary>")
        lines.append("")
        for result in failing[:MARKDOWN_FAILURES]:
            reason = md_escape(headline(result))
            lines.append(f"- {SYMBOLS[result.outcome]} {md_escape(result.id)}" + (f": {reason}" if reason else ""))
        if len(failing) > MARKDOWN_FAILURES:
            lines.append(f"- … and {len(failing) - MARKDOWN_FAILURES} more (see matrix.html)")
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# -- matrix.html ----------------------------------------------------------------------------------


@dataclass
class _CaseEntry:
    """One case of one target on the page, with the rows it counts in."""

    column: int
    rows: str
    view: Any
    # The case in its run's own report.html, when that page sits next to its report.json: the exchanges
    # are shown there, not copied into the matrix a second time.
    link: str = ""


def render_matrix_html(matrix: Matrix) -> str:
    """matrix.html: one self-contained page, cells opening the cases behind them."""
    entries = []
    for column in matrix.columns:
        for result in sorted(column.report.results, key=lambda r: r.id):
            rows = " ".join(row.key for row in matrix.rows if any(r is result for r in row.cells[column.index].results))
            if column.html_link:
                view = CaseView(result, headline(result))
                entries.append(_CaseEntry(column.index, rows, view, f"{column.html_link}#case-{result.id}"))
            else:
                entries.append(_CaseEntry(column.index, rows, _case_view(result)))
    template = _environment().get_template("matrix.html.j2")
    return template.render(
        matrix=matrix,
        entries=entries,
        outcomes=[outcome.value for outcome in SEVERITY_ORDER],
        tiers=TIERS,
        tool_version=__version__,
    )


def write_matrix(matrix: Matrix, out_dir: Path) -> dict[str, Path]:
    """Write matrix.html, matrix.md and matrix.json into `out_dir`; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"html": out_dir / "matrix.html", "md": out_dir / "matrix.md", "json": out_dir / "matrix.json"}
    atomic_write_text(paths["html"], render_matrix_html(matrix))
    atomic_write_text(paths["md"], render_matrix_markdown(matrix))
    write_json_document(paths["json"], strict_json(matrix_to_dict(matrix)))
    return paths
