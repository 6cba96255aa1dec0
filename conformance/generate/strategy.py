"""Requests drawn from a generation document by schemathesis, reproducibly.

schemathesis builds a hypothesis strategy per operation (`as_strategy`, positive or negative
mode); each strategy is run under its own seed, derived from the run's seed and the operation, so
that one field's draws do not depend on how many another got. For a negative draw, schemathesis
says what it broke (the mutation: where, which keywords, which operator).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.errors import HypothesisException
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode

from conformance.generate.schemas import Operation

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# No NUL characters in strings: a request is meant to be re-run with curl from a shell script.
# No constants harvested from the Python modules loaded in the process: the same seed must give
# the same requests from the command line, under pytest or inside another program.
_CONFIG = {"generation": {"allow-x00": False, "codec": "utf-8"}, "analysis": {"constants": {"enabled": False}}}


@dataclass(frozen=True)
class Drawn:
    """One request body schemathesis generated for an operation.

    `body` is a JSON value, or bytes that are not JSON at all (schemathesis' syntax fuzzing).
    For a negative draw, `path` is where the mutation is (field names, and list indexes when
    schemathesis knows them), `keywords` the schema keywords it breaks, `operator` how
    (change_type, negate_constraints, remove_required_property, value_violator, syntax_fuzzing).
    """

    operation: Operation
    mode: GenerationMode
    body: Any
    description: str = ""
    path: tuple[str | int, ...] = ()
    keywords: tuple[str, ...] = ()
    operator: str = ""


def private_storage() -> None:
    """Keep hypothesis' files (it caches constants of local modules) out of the working directory,
    unless HYPOTHESIS_STORAGE_DIRECTORY says where they go. For the command line's own process."""
    if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "conformance-hypothesis")


def load(document: dict[str, Any]) -> Any:
    """The document as a schemathesis schema, with an explicit configuration (never a
    schemathesis.toml found in the working directory)."""
    return schemathesis.openapi.from_dict(document, config=SchemathesisConfig.from_dict(_CONFIG))


def derived_seed(seed: int, *parts: str) -> int:
    """A stable seed for one strategy: the same run seed and parts always give the same number."""
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def draw(schema: Any, operation: Operation, mode: GenerationMode, count: int, seed: int) -> list[Drawn]:
    """Up to `count` bodies for the operation (fewer when schemathesis cannot make more)."""
    strategy = schema[operation.path]["POST"].as_strategy(generation_mode=mode)
    drawn: list[Drawn] = []

    @hypothesis.seed(derived_seed(seed, operation.path, mode.value))
    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
        derandomize=False,
        report_multiple_bugs=False,
    )
    @given(strategy)
    def collect(case: Any) -> None:
        drawn.append(_drawn(operation, mode, case))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # An operation schemathesis can only partly satisfy: keep what it made.
        with contextlib.suppress(HypothesisException):
            collect()
    return drawn[:count]


def _drawn(operation: Operation, mode: GenerationMode, case: Any) -> Drawn:
    phase = case.meta.phase.data if case.meta is not None else None
    mutations = getattr(phase, "mutations", ()) if phase is not None else ()
    if mode is POSITIVE or not mutations:
        return Drawn(operation, mode, case.body, getattr(phase, "description", None) or "")
    mutation = mutations[0]
    return Drawn(
        operation,
        mode,
        case.body,
        description=phase.description or "",
        path=tuple(mutation.path),
        keywords=tuple(keyword for keyword in mutation.keywords if not keyword.startswith("x-")),
        operator=mutation.operator.value,
    )
