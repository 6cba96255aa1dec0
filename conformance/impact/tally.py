"""Counting impact (pure): per client, how many cases each effect has; read by the console, the
matrix, the consumer profiles and the gate."""

from __future__ import annotations

from collections.abc import Iterable

from conformance.impact.names import EFFECTS, client_title
from conformance.model import CaseResult


def effect_of(result: CaseResult, client: str) -> str | None:
    """The case's effect on `client`, or None when it was not computed (or the client makes no such call)."""
    return next((entry.get("effect") for entry in result.impact if entry.get("client") == client), None)


def tally(results: Iterable[CaseResult]) -> dict[str, dict[str, int]]:
    """Per client, the number of cases of each effect."""
    counts: dict[str, dict[str, int]] = {}
    for result in results:
        for entry in result.impact:
            per = counts.setdefault(str(entry.get("client")), {})
            per[str(entry.get("effect"))] = per.get(str(entry.get("effect")), 0) + 1
    return counts


def summary_lines(results: list[CaseResult]) -> list[str]:
    """One line per client: "breaks Claude Code: 4 cases, degrades it: 2, unaffected: 10"."""
    lines = []
    for client, counts in sorted(tally(results).items()):
        parts = [f"{effect} {counts[effect]}" for effect in EFFECTS if counts.get(effect)]
        lines.append(f"{client_title(client)}: {', '.join(parts)}")
    return lines
