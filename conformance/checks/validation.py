"""Schema validation for the checks: a fast yes/no first, the precise validator only for what fails.

Almost everything a target sends is valid, and `jsonschema_rs` (compiled Rust) says so about a
hundred times faster than `jsonschema`. Only an instance it rejects goes to
`contract.validate`, whose problems (JSON path, message, clause id) are the findings, so a
finding reads the same whichever path found it. The fast validator is compiled from the same
contract document, with formats not asserted, as `jsonschema` does by default. Where the two
could disagree, the fast one may only be the stricter: an instance it rejects and the precise
one accepts yields no problem, as before.

`precise_only()` turns the fast path off, for the whole process while it lasts (tests prove the findings
are the same with and without it).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from conformance import contract

_precise_only = False


@functools.cache
def _fast_validator(schema_name: str, many: bool = False) -> Any:
    """The jsonschema_rs validator of a component schema, or of an array of it when `many` (compiled once
    per process)."""
    import jsonschema_rs  # imported when first needed, like contract's jsonschema

    if schema_name not in contract.schema_names():
        raise KeyError(f"the contract has no schema {schema_name!r}")
    registry = jsonschema_rs.Registry([(contract.CONTRACT_URI, contract.document())])
    reference = {"$ref": f"{contract.CONTRACT_URI}#/components/schemas/{schema_name}"}
    schema = {"type": "array", "items": reference} if many else reference
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=False, registry=registry)


def _fast(schema_name: str, many: bool = False) -> Any:
    """The fast validator of a schema, or None within `precise_only()`."""
    return None if _precise_only else _fast_validator(schema_name, many)


def problems(schema_name: str, instance: Any) -> tuple[contract.ValidationProblem, ...]:
    """The schema problems of `instance` against a component schema; () when it is valid."""
    fast = _fast(schema_name)
    if fast is not None and fast.is_valid(instance):
        return ()
    return tuple(contract.validate(schema_name, instance))


def problems_of_each(schema_name: str, instances: list[Any]) -> list[tuple[contract.ValidationProblem, ...]]:
    """`problems()` of each instance. All of them are first checked in one call, which is the whole
    work when they are valid (as they nearly always are)."""
    fast = _fast(schema_name, many=True)
    if fast is not None and fast.is_valid(instances):
        return [()] * len(instances)
    return [problems(schema_name, instance) for instance in instances]


@contextlib.contextmanager
def precise_only() -> Iterator[None]:
    """Within the block, every instance goes to the precise validator (on every thread)."""
    global _precise_only
    before, _precise_only = _precise_only, True
    try:
        yield
    finally:
        _precise_only = before
