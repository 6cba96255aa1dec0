"""The canonical contract (specs/anthropic/openapi.yaml): its schemas as compiled validators, and its clauses.

Every component schema gets one Draft 2020-12 validator, compiled once per process. References
(`#/components/schemas/...`) resolve inside the contract document through a `referencing`
registry. A validation error is reported as a `ValidationProblem` with a readable JSON path and
the clause id of the deepest `x-clause` on the way to the failing keyword, so a finding can
name the exact rule it breaks.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.imports import first_import
from conformance.paths import specs_dir

if TYPE_CHECKING:  # imported where first used: a command that validates nothing does not pay for them
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError
    from referencing import Registry

CONTRACT_URI = "urn:conformance:anthropic:openapi"
_SCHEMA_PREFIX = "#/components/schemas/"
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class ValidationProblem:
    """One way an instance breaks a schema: where (a path like `content[0].text`), what, and which clause."""

    path: str
    message: str
    clause: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def at(self, root: str) -> str:
        """The problem with its path under `root`: at("body") -> "body.content[0].text: ..."."""
        if not self.path:
            return f"{root}: {self.message}"
        separator = "" if self.path.startswith("[") else "."
        return f"{root}{separator}{self.path}: {self.message}"


def contract_path() -> Path:
    """specs/anthropic/openapi.yaml: the canonical contract."""
    return specs_dir() / "anthropic" / "openapi.yaml"


@functools.cache
def document() -> dict[str, Any]:
    """The parsed contract (loaded once per process; every validator is compiled from it once)."""
    from conformance.specs.documents import load  # libyaml when available; dates stay strings

    return load(contract_path())


@functools.cache
def _registry() -> Registry:
    first_import("referencing.jsonschema")
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    return Registry().with_resource(CONTRACT_URI, Resource(document(), DRAFT202012))


def schema_names() -> set[str]:
    """The names of all component schemas."""
    return set(document()["components"]["schemas"])


@functools.cache
def _validator(schema_name: str) -> Draft202012Validator:
    first_import("jsonschema")
    from jsonschema import Draft202012Validator

    if schema_name not in document()["components"]["schemas"]:
        raise KeyError(f"the contract has no schema {schema_name!r}")
    return Draft202012Validator({"$ref": f"{CONTRACT_URI}{_SCHEMA_PREFIX}{schema_name}"}, registry=_registry())


def validate(schema_name: str, instance: Any) -> list[ValidationProblem]:
    """Validate `instance` against a component schema; an empty list means valid."""
    return [
        ValidationProblem(
            path=format_path(leaf.absolute_path),
            message=_shorten(message),
            clause=_clause_of(schema_name, leaf),
        )
        for error in _validator(schema_name).iter_errors(instance)
        for leaf, message in _leaves(error)
    ]


def is_valid(schema_name: str, instance: Any) -> bool:
    """True when `instance` validates against the component schema."""
    return _validator(schema_name).is_valid(instance)


def format_path(parts: Iterable[Any], root: str = "") -> str:
    """Render a JSON path: ["content", 0, "text"] -> "content[0].text" (prefixed by `root` if given)."""
    text = root
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def clause(clause_id: str) -> dict[str, str]:
    """A clause: {title, text, source}. Raises KeyError for an unknown id."""
    return document()["x-clauses"][clause_id]


def clause_ids() -> set[str]:
    """All clause ids the contract defines."""
    return set(document()["x-clauses"])


def enum(schema_name: str) -> list[Any]:
    """The `enum` of a component schema (e.g. the error types)."""
    return list(document()["components"]["schemas"][schema_name].get("enum", []))


@functools.cache
def discriminated_types(schema_name: str) -> frozenset[str]:
    """The `type` values a schema knows by name: the consts of its `if`/`then` branches.

    Anything else validates through the schema's generic fallback (forward compatibility).
    """
    known = set()
    for branch in document()["components"]["schemas"][schema_name].get("allOf", []):
        const = branch.get("if", {}).get("properties", {}).get("type", {}).get("const")
        if isinstance(const, str):
            known.add(const)
    return frozenset(known)


def schema_clause(schema_name: str) -> str:
    """The clause a component schema encodes (its `x-clause`), or "" when it names none."""
    return document()["components"]["schemas"][schema_name].get("x-clause", "")


def _leaves(error: ValidationError) -> list[tuple[ValidationError, str]]:
    """The errors worth reporting for `error`, each with its message.

    An anyOf/oneOf error only says "not valid under any of the given schemas". When exactly one
    branch matches the instance's type (e.g. the object branch of a nullable object), the errors
    inside that branch are the real ones; when no branch matches the type, the message lists
    the accepted types; otherwise the summary error stays.
    """
    if not error.context:
        return [(error, error.message)]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    mismatched = [
        next(
            (sub for sub in subs if sub.validator in ("type", "const") and sub.absolute_path == error.absolute_path),
            None,
        )
        for subs in branches.values()
    ]
    fitting = [subs for subs, miss in zip(branches.values(), mismatched, strict=True) if miss is None]
    if len(fitting) == 1:
        return [leaf for sub in fitting[0] for leaf in _leaves(sub)]
    if not fitting and all(miss is not None and miss.validator == "type" for miss in mismatched):
        types = " or ".join(repr(miss.validator_value) for miss in mismatched if miss is not None)
        return [(error, f"{error.instance!r} is not of type {types}")]
    return [(error, error.message)]


def _shorten(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"


def _resolve(ref: str) -> Any:
    if not ref.startswith(_SCHEMA_PREFIX):
        return None
    return document()["components"]["schemas"].get(ref[len(_SCHEMA_PREFIX) :])


def _clause_of(schema_name: str, error: ValidationError) -> str:
    """The deepest `x-clause` on the schema path of `error`, starting at the named component.

    jsonschema's schema paths step through `$ref`s silently (a path goes from `items` straight
    to the target's `allOf`), so a segment missing from a node means "follow this node's $ref".
    `x-clause-<keyword>` on the schema holding the failing keyword wins over its `x-clause`.
    """
    node: Any = document()["components"]["schemas"][schema_name]
    found = node.get("x-clause", "")
    for segment in error.absolute_schema_path:
        node, found = _step(node, segment, found)
        if node is None:
            return found
    return found


def _step(node: Any, segment: Any, found: str) -> tuple[Any, str]:
    """Move from `node` to its child `segment` (through $refs), picking up x-clauses on the way."""
    while True:
        if isinstance(node, dict) and node.get("x-clause"):
            found = node["x-clause"]
        if isinstance(node, dict) and segment in node:
            if isinstance(segment, str):
                found = node.get(f"x-clause-{segment}", found)
            return node[segment], found
        if isinstance(node, list) and isinstance(segment, int) and segment < len(node):
            return node[segment], found
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            node = _resolve(node["$ref"])
            continue
        return None, found
