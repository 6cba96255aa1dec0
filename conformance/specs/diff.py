"""The spec diff matrix: every field of every provider's documented contract against Anthropic's.

Rows are field paths (see conformance.specs.fields), columns providers, cells one of same /
added / missing / narrower / wider / conflicting (conformance.specs.compare). Nothing is sent
anywhere: the matrix is computed from the contracts under specs/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.specs.compare import Cell, Status, compare
from conformance.specs.fields import Field, contract_fields, lookup
from conformance.specs.profiles import CANONICAL, ProviderProfile, known_providers, load_profile

SYMBOLS = {
    Status.SAME: "=",
    Status.ADDED: "+",
    Status.MISSING: "\u2212",  # a minus sign
    Status.NARROWER: "<",
    Status.WIDER: ">",
    Status.CONFLICTING: "≠",
}
# Rows shown even when every provider agrees: what a reader looks for first.
KEY_ROWS = re.compile(
    r"^(auth|endpoint\.\w+|header\.[\w-]+|errors\.status|stream\.type|stream\.sentinel"
    r"|(count_tokens\.)?(request|response)(\.\w+)?|response\.content\[\]\.type|error\.error\.type|error\.request_id)$"
)
_LAST_SEGMENT = re.compile(r"(\.[^.<>\[\]]+|\[\]|<[^<>]*>)$")


def parent(path: str) -> str:
    """`request.tools[]<custom>.name` -> `request.tools[]<custom>` (and "" at the top)."""
    return _LAST_SEGMENT.sub("", path)


@dataclass
class Row:
    """One field: the canonical definition and each provider's verdict."""

    path: str
    base: Field | None
    cells: dict[str, Cell] = field(default_factory=dict)
    # Deviations whose `field` is this row, per provider.
    deviations: dict[str, list[str]] = field(default_factory=dict)

    @property
    def differs(self) -> bool:
        return any(cell.status is not Status.SAME for cell in self.cells.values())

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "anthropic": self.base.describe() if self.base else None}
        data["cells"] = {name: cell.to_dict() for name, cell in self.cells.items() if cell.status is not Status.SAME}
        if self.deviations:
            data["deviations"] = self.deviations
        return data


@dataclass
class Matrix:
    providers: list[str]
    rows: list[Row]
    profiles: dict[str, ProviderProfile]

    def __post_init__(self) -> None:
        self._by_path = {row.path: row for row in self.rows}

    def row(self, path: str) -> Row | None:
        return self._by_path.get(path)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per provider, how many fields have each status."""
        result = {name: {status.value: 0 for status in Status} for name in self.providers}
        for row in self.rows:
            for name, cell in row.cells.items():
                result[name][cell.status.value] += 1
        return result

    def implied(self, row: Row, provider: str) -> bool:
        """True when the cell only repeats its parent's verdict (a field inside a missing or added one)."""
        cell = row.cells[provider]
        if cell.status not in (Status.MISSING, Status.ADDED):
            return False
        above = self._by_path.get(parent(row.path))
        return above is not None and above.cells.get(provider, Cell(Status.SAME)).status is cell.status

    def shown(self) -> list[Row]:
        """The rows a reader needs: key rows, and rows where some provider differs in its own right
        (a count_tokens field that only repeats its Messages twin is left out)."""
        return [
            row
            for row in self.rows
            if KEY_ROWS.match(row.path) or (self._own_difference(row) and not self._repeats(row))
        ]

    def _own_difference(self, row: Row) -> bool:
        return any(cell.status is not Status.SAME and not self.implied(row, name) for name, cell in row.cells.items())

    def _repeats(self, row: Row) -> bool:
        if not row.path.startswith("count_tokens.request."):
            return False
        twin = self._by_path.get(row.path.removeprefix("count_tokens."))
        return twin is not None and all(
            twin.cells.get(name) == cell or self.implied(row, name) for name, cell in row.cells.items()
        )

    def _row_dict(self, row: Row) -> dict[str, Any]:
        data = row.to_dict()
        for name in list(data["cells"]):
            if self.implied(row, name):
                data["cells"][name]["implied"] = True
        return data

    def to_dict(self) -> dict[str, Any]:
        """Profiles, counts and the shown rows (cells only where a provider differs)."""
        return {
            "schema_version": 1,
            "base": CANONICAL,
            "providers": self.providers,
            "statuses": {status.value: SYMBOLS[status] for status in Status},
            "profiles": {name: self.profiles[name].summary() for name in [CANONICAL, *self.providers]},
            "counts": self.counts(),
            "fields": [self._row_dict(row) for row in self.shown()],
        }


def build_matrix(providers: list[str] | None = None, directory: Path | None = None) -> Matrix:
    """Compare each provider's contract with the canonical one (all known providers by default)."""
    names = [name for name in (providers or known_providers(directory)) if name != CANONICAL]
    profiles = {name: load_profile(name, directory) for name in [CANONICAL, *names]}
    base = contract_fields(profiles[CANONICAL].contract_path)
    theirs = {name: contract_fields(profiles[name].contract_path) for name in names}
    rows = build_rows(base, theirs)
    for name in names:
        by_path = {row.path: row for row in rows}
        for deviation in profiles[name].deviations:
            if deviation.field in by_path:
                by_path[deviation.field].deviations.setdefault(name, []).append(deviation.id)
    return Matrix(providers=names, rows=rows, profiles=profiles)


def build_rows(base: dict[str, Field], theirs: dict[str, dict[str, Field]]) -> list[Row]:
    """One row per field of `base` or of any contract in `theirs`, each with a cell per contract."""
    rows = {path: Row(path, found) for path, found in base.items()}
    for name, fields in theirs.items():
        covered: set[str] = set()
        for row in list(rows.values()):
            if row.base is None:
                continue
            other = lookup(fields, row.path, base)
            if other is not None:
                covered.add(other.path)
            row.cells[name] = compare(row.base, other)
        for path, other in fields.items():
            if path in base or path in covered:
                continue  # compared above (a flat union's field is compared through the variant rows)
            rows.setdefault(path, Row(path, None)).cells[name] = compare(None, other)
    ordered = sorted(rows.values(), key=lambda row: _section_order(row.path))
    for row in ordered:
        for name in theirs:
            row.cells.setdefault(name, Cell(Status.SAME))
    return ordered


_SECTIONS = ("endpoint", "auth", "header", "request", "response", "response_header", "stream", "error", "count_tokens")


def _section_order(path: str) -> int:
    head = re.split(r"[.<\[]", path, maxsplit=1)[0]
    if head == "errors":
        head = "error"
    return _SECTIONS.index(head) if head in _SECTIONS else len(_SECTIONS)
