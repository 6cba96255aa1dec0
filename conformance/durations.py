"""How long each case took the last time it ran against a target, so that the next run starts the slowest first.

A run of C cases at a time ends no sooner than its longest case: started last, a 2-second case adds its 2 s to
the end of the run, started first it runs while the short ones come and go. The previous run's durations are
the best estimate at hand. They are kept per target (the embedded reference server counts as one target,
whatever its port) in conformance.private_cache's folder, as plain JSON. A case never timed is estimated from
what it asks for (its steps, and whether one waits through a quiet stream).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from conformance.atomic import atomic_write_text
from conformance.private_cache import private_cache_dir

if TYPE_CHECKING:
    from conformance.cases import Case
    from conformance.model import CaseResult

REFERENCE = "embedded reference server"
# A step that waits through a quiet stretch of a stream counts as this many requests.
WAITING_STEP = 10


def slowest_first(cases: Sequence[Case], durations: dict[str, float]) -> list[Case]:
    """`cases`, the ones never timed first (they might be long, and the likely longest of them first), then the
    others by their last duration, longest first; ties keep their order."""
    return sorted(cases, key=lambda case: (-durations.get(case.id, math.inf), -_likely_cost(case)))


def _likely_cost(case: Case) -> int:
    """What a case never timed may cost, in requests: each step is one, and a step that measures the silences
    of a stream (`max_event_gap`) waits through one by design."""
    return case.requests + WAITING_STEP * sum("max_event_gap" in step.expect for step in case.steps)


def load_durations(target: str) -> dict[str, float]:
    """The durations last kept for `target` (a base URL, or REFERENCE); {} when there are none."""
    path = _path(target)
    if path is None:
        return {}
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {
        key: value
        for key, value in found.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    }


def keep_durations(target: str, results: Iterable[CaseResult]) -> None:
    """Add these results' durations to what is kept for `target` (silently not, where that cannot be done)."""
    path = _path(target)
    if path is None:
        return
    durations = {**load_durations(target), **{result.id: round(result.duration, 3) for result in results}}
    with contextlib.suppress(OSError):
        atomic_write_text(path, json.dumps(durations, sort_keys=True))


def _path(target: str) -> Path | None:
    folder = private_cache_dir()
    if folder is None:
        return None
    return folder / f"durations-{hashlib.sha256(target.encode()).hexdigest()[:24]}.json"
