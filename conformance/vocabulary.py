"""Closed vocabularies (capabilities, providers, tiers, profiles): a name outside one is an error with a
"did you mean", never a run that quietly skips what the typo left out."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UnknownName(ValueError):
    """A name that is not in its vocabulary; the message is one sentence with the closest known name."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str | None:
    """The one-sentence complaint about `name` when it is not one of `known`, else None."""
    choices = sorted(known)
    if name in choices:
        return None
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown {kind} {name!r}: {hint}known: {', '.join(choices)}"


def check_names(kind: str, given: Iterable[str], known: Iterable[str]) -> None:
    """Raise UnknownName on the first of `given` (in sorted order) that is not `known`."""
    known = list(known)
    for name in sorted(given):
        problem = unknown_name(kind, name, known)
        if problem:
            raise UnknownName(problem)
