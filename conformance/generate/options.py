"""The knobs of generation and the budget of a run: plain data, cheap to import (the command
line reads its defaults from here without loading schemathesis)."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.request_defaults import CANONICAL

DEFAULT_COUNT = 20  # `--generated` without a number
DEFAULT_MAX_TOKENS = 16
# One generated case in POSITIVE_SHARE is positive, when positive generation is on.
POSITIVE_SHARE = 4
# Requests shrinking may spend on one failure (the budget may leave less).
SHRINK_REQUESTS = 8


class BudgetError(ValueError):
    """The selected cases alone need more than the budget allows."""


@dataclass(frozen=True)
class GenerationOptions:
    """`--generated N` and its companions. `positive` is already decided: on for a loopback target,
    off for any other unless asked for."""

    count: int
    seed: int
    provider: str = CANONICAL
    positive: bool = True
    max_tokens: int = DEFAULT_MAX_TOKENS
    shrink_requests: int = SHRINK_REQUESTS


@dataclass(frozen=True)
class Budget:
    """Bounds on the whole run (None: unbounded)."""

    max_requests: int | None = None
    max_output_tokens: int | None = None
