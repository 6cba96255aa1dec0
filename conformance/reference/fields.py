"""Field checks that fail the way the real API does: `<dotted.location>: <pydantic-style message>`.

Each check raises a 400 invalid_request_error on the first problem, so a refusal names exactly
one field, e.g. `max_tokens: Field required` or `messages.0.role: Input should be 'user' or
'assistant'`. Members of a union tagged by `type` add the tag to the location
(`messages.0.content.1.image.source`), as the API's messages do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, NoReturn

from conformance.reference.errors import invalid_request


def at(location: str, key: str | int) -> str:
    return f"{location}.{key}" if location else str(key)


def fail(location: str, message: str) -> NoReturn:
    raise invalid_request(f"{location}: {message}" if location else message)


def obj(value: Any, location: str, required: Collection[str] = (), optional: Collection[str] = ()) -> dict[str, Any]:
    """A JSON object with exactly these keys allowed (`additionalProperties: false`)."""
    if not isinstance(value, dict):
        fail(location, "Input should be a valid dictionary")
    for key in required:
        if key not in value:
            fail(at(location, key), "Field required")
    for key in value:
        if key not in required and key not in optional:
            fail(at(location, key), "Extra inputs are not permitted")
    return value


def open_obj(value: Any, location: str, required: Collection[str] = ()) -> dict[str, Any]:
    """A JSON object with these keys required and any others allowed."""
    if not isinstance(value, dict):
        fail(location, "Input should be a valid dictionary")
    for key in required:
        if key not in value:
            fail(at(location, key), "Field required")
    return value


def string(
    value: Any, location: str, *, min_length: int = 0, max_length: int | None = None, pattern: str | None = None
) -> str:
    if not isinstance(value, str):
        fail(location, "Input should be a valid string")
    if len(value) < min_length:
        fail(location, f"String should have at least {_plural(min_length, 'character')}")
    if max_length is not None and len(value) > max_length:
        fail(location, f"String should have at most {_plural(max_length, 'character')}")
    if pattern is not None and not re.search(pattern, value):
        fail(location, f"String should match pattern '{pattern}'")
    return value


def integer(value: Any, location: str, *, ge: int | None = None) -> int:
    """An integer; bools are refused and a float counts only when it has no fractional part."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(location, "Input should be a valid integer")
    if isinstance(value, float):
        if not value.is_integer():
            fail(location, "Input should be a valid integer, got a number with a fractional part")
        value = int(value)
    if ge is not None and value < ge:
        fail(location, f"Input should be greater than or equal to {ge}")
    return value


def number(value: Any, location: str, *, ge: float | None = None, le: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(location, "Input should be a valid number")
    if ge is not None and value < ge:
        fail(location, f"Input should be greater than or equal to {ge}")
    if le is not None and value > le:
        fail(location, f"Input should be less than or equal to {le}")
    return value


def boolean(value: Any, location: str) -> bool:
    if not isinstance(value, bool):
        fail(location, "Input should be a valid boolean")
    return value


def array(value: Any, location: str) -> list[Any]:
    if not isinstance(value, list):
        fail(location, "Input should be a valid list")
    return value


def literal(value: Any, location: str, choices: Collection[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        fail(location, f"Input should be {_alternatives(choices)}")
    return value


def optional(value: Any, check: Callable[..., Any], location: str, **options: Any) -> None:
    """Apply `check` unless the value is JSON null or absent (for the API's nullable fields)."""
    if value is not None:
        check(value, location, **options)


def tagged(value: Any, location: str, handlers: Mapping[str, Callable[[dict[str, Any], str], None]]) -> str:
    """Dispatch an object on its `type` to the handler of that tag; returns the tag."""
    if not isinstance(value, dict):
        fail(location, "Input should be a valid dictionary or object to extract fields from")
    if "type" not in value:
        fail(location, "Unable to extract tag using discriminator 'type'")
    tag = value["type"]
    if not isinstance(tag, str) or tag not in handlers:
        expected = ", ".join(f"'{name}'" for name in handlers)
        fail(location, f"Input tag '{tag}' found using 'type' does not match any of the expected tags: {expected}")
    handlers[tag](value, at(location, tag))
    return tag


def _alternatives(choices: Collection[str]) -> str:
    quoted = [f"'{choice}'" for choice in choices]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
