"""How much a schema problem weighs: a required key whose schema allows null, sent absent, is a warning.

The API sends every key of a Message, the nullable ones as null (`stop_sequence: null`), and the
contract requires them. The official clients read an absent nullable key as null (their models
default it), so a target that leaves one out differs from the API in a way a client that reads the
raw JSON may feel, but not one the SDKs notice: a warning, not a failure (docs/reference/verdicts.md).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from conformance import contract
from conformance.checks.validation import problems
from conformance.model import Severity

# How jsonschema words a missing required key, and the note on an absent nullable one (both axes use them).
REQUIRED_PROPERTY = re.compile(r"'([^']+)' is a required property")
NULLABLE_NOTE = "its schema allows null: the API sends null here, and the official clients read an absent key as null"
_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def weigh(schema_name: str, instance: Any, problem: contract.ValidationProblem, root: str) -> tuple[str, Severity]:
    """The finding's message (the problem under `root`) and its severity."""
    if absent_nullable(schema_name, instance, problem):
        return f"{problem.at(root)} ({NULLABLE_NOTE})", Severity.WARNING
    return problem.at(root), Severity.FAILURE


def absent_nullable(schema_name: str, instance: Any, problem: contract.ValidationProblem) -> bool:
    """True when `problem` is a missing required key that, sent as null, would satisfy the schema."""
    match = REQUIRED_PROPERTY.fullmatch(problem.message)
    holder = _at(instance, problem.path)
    if match is None or not isinstance(holder, dict) or match.group(1) in holder:
        return False
    key = match.group(1)
    patched = copy.deepcopy(instance)
    _at(patched, problem.path)[key] = None
    key_path = contract.format_path([key], problem.path)
    return not any(
        remaining == problem
        or remaining.path == key_path
        or remaining.path.startswith((key_path + ".", key_path + "["))
        for remaining in problems(schema_name, patched)
    )


def _at(instance: Any, path: str) -> Any:
    """The value at a path as `contract.format_path` writes it (`content[0].input`); None when there is none."""
    value = instance
    for index, key in _PATH_PART.findall(path):
        if index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        elif key and isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return None
    return value
