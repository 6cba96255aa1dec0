"""How one contract's field differs from another's: same, added, missing, narrower, wider, conflicting.

`narrower` and `wider` compare the sets of values each contract admits at that field (for a
request: what the server accepts; for a response: what it may send). A field that is narrower
in one respect and wider in another (a different type, an enum that both adds and drops
values) is `conflicting`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from conformance.specs.fields import Field
from conformance.specs.shapes import LOWER, UPPER, Bound


class Status(str, enum.Enum):
    SAME = "same"
    ADDED = "added"
    MISSING = "missing"
    NARROWER = "narrower"
    WIDER = "wider"
    CONFLICTING = "conflicting"


@dataclass(frozen=True)
class Cell:
    """The verdict on one field of one contract against the base, with what differs."""

    status: Status
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"status": self.status.value, "detail": self.detail} if self.detail else {"status": self.status.value}


def _combine(verdicts: list[Status]) -> Status:
    found = {verdict for verdict in verdicts if verdict is not Status.SAME}
    if not found:
        return Status.SAME
    if found == {Status.NARROWER}:
        return Status.NARROWER
    if found == {Status.WIDER}:
        return Status.WIDER
    return Status.CONFLICTING


def _sets(base: frozenset[str], other: frozenset[str]) -> Status:
    if base == other:
        return Status.SAME
    if other < base:
        return Status.NARROWER
    if other > base:
        return Status.WIDER
    return Status.CONFLICTING


def admitted_types(types: frozenset[str]) -> frozenset[str] | None:
    """The JSON types admitted, integers counted in `number`; None for any type."""
    if not types:
        return None
    return types | {"integer"} if "number" in types else types


def _types(base: Field, other: Field) -> tuple[Status, str]:
    mine, theirs = admitted_types(base.types), admitted_types(other.types)
    if mine == theirs:
        return Status.SAME, ""
    if mine is None:
        return Status.NARROWER, f"type {'|'.join(sorted(other.types))} (any type)"
    if theirs is None:
        return Status.WIDER, "any type"
    return _sets(mine, theirs), _delta("type", mine, theirs)


def _delta(label: str, mine: frozenset[str], theirs: frozenset[str], limit: int = 6) -> str:
    added = sorted(theirs - mine)
    dropped = sorted(mine - theirs)
    parts = [f"+{v}" for v in added[:limit]] + (["+…"] if len(added) > limit else [])
    parts += [f"-{v}" for v in dropped[:limit]] + (["-…"] if len(dropped) > limit else [])
    return f"{label} {' '.join(parts)}"


def _values(base: Field, other: Field) -> tuple[Status, str]:
    """Known values: two lists compare as sets; no list at all admits anything of the type."""
    if base.values is None and other.values is None:
        return Status.SAME, ""
    if base.values is None:
        return (Status.SAME, "") if other.open else (Status.NARROWER, f"only {', '.join(sorted(other.values or ()))}")
    if other.values is None:
        return (Status.SAME, "") if base.open else (Status.WIDER, "any value")
    return _sets(base.values, other.values), _delta("values", base.values, other.values)


def _bounds(base: Field, other: Field) -> tuple[Status, list[str]]:
    mine, theirs = base.bound_map, other.bound_map
    verdicts: list[Status] = []
    notes: list[str] = []
    for keyword in LOWER + UPPER:
        a, b = mine.get(keyword), theirs.get(keyword)
        if a == b:
            continue
        verdict = _bound(keyword in LOWER, a, b)
        verdicts.append(verdict)
        notes.append(f"{keyword} {b if b is not None else 'none'} (base {a if a is not None else 'none'})")
    return _combine(verdicts), notes


def _bound(lower: bool, base: Bound | None, other: Bound | None) -> Status:
    if base is None:
        return Status.NARROWER
    if other is None:
        return Status.WIDER
    # Positive when `other` admits less than `base` on this side.
    tighter = (other.value - base.value) if lower else (base.value - other.value)
    if tighter == 0:
        tighter = (1 if other.exclusive else 0) - (1 if base.exclusive else 0)
    return Status.NARROWER if tighter > 0 else Status.WIDER


def compare(base: Field | None, other: Field | None) -> Cell:
    """The verdict on `other` (a provider's field) against `base` (the canonical one)."""
    if base is None and other is None:
        raise ValueError("nothing to compare")
    if base is None:
        assert other is not None
        return Cell(Status.ADDED, other.describe())
    if other is None:
        return Cell(Status.MISSING)
    if base.opaque or other.opaque:
        return Cell(Status.SAME, "not compared (recursive or unresolved schema)")
    verdicts: list[Status] = []
    notes: list[str] = []
    for verdict, note in (_types(base, other), _values(base, other)):
        verdicts.append(verdict)
        if note and verdict is not Status.SAME:
            notes.append(note)
    bound_verdict, bound_notes = _bounds(base, other)
    verdicts.append(bound_verdict)
    notes.extend(bound_notes)
    # A variant row's `required` says whether its discriminator must be sent; a flat union has none to compare.
    if base.required != other.required and not base.path.endswith(">"):
        verdicts.append(Status.NARROWER if other.required else Status.WIDER)
        notes.append("required" if other.required else "optional")
    if base.additional != other.additional and "object" in (base.types | other.types):
        verdicts.append(Status.WIDER if other.additional else Status.NARROWER)
        notes.append("admits unknown properties" if other.additional else "refuses unknown properties")
    return Cell(_combine(verdicts), "; ".join(notes))
