"""Build a deterministic value that is valid against a JSON Schema (tool inputs, structured output).

It covers what tool schemas use in practice: `$ref` into `$defs`/`definitions`, `const`, `enum`,
`examples`, `default`, `anyOf`/`oneOf` (first usable branch), `allOf` (objects merged), typed
objects (every property, plus required names), arrays (`minItems`, `prefixItems`, `uniqueItems`),
strings (`format`, length bounds), numbers (bounds, `multipleOf`) and booleans. `pattern` is not
solved: a string with a pattern gets its first example or default when the schema gives one.
"""

from __future__ import annotations

import math
from typing import Any

# Deeper than this an object only gets its required properties, and deeper still nothing at all:
# it keeps recursive schemas (a tree of nodes) finite.
_FULL_DEPTH = 6
_MAX_DEPTH = 12

_STRING_FORMATS = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "12:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def example_value(schema: Any, root: Any = None) -> Any:
    """A value valid against `schema`; `root` resolves `$ref`s (defaults to the schema itself)."""
    return _Builder(schema if root is None else root).build(schema, depth=0, variant=0)


class _Builder:
    def __init__(self, root: Any) -> None:
        self.root = root

    def build(self, schema: Any, depth: int, variant: int) -> Any:
        if not isinstance(schema, dict):
            return _vary("example", variant)
        if "$ref" in schema and isinstance(schema["$ref"], str):
            return self.build(self._resolve(schema["$ref"]), depth + 1, variant)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][variant % len(schema["enum"])]
        if isinstance(schema.get("examples"), list) and schema["examples"] and variant == 0:
            return schema["examples"][0]
        if "default" in schema and variant == 0:
            return schema["default"]
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self.build(_first_usable(schema[key]), depth + 1, variant)
        if isinstance(schema.get("allOf"), list) and schema["allOf"]:
            return self._all_of(schema, depth, variant)
        return self._typed(schema, _schema_type(schema), depth, variant)

    def _typed(self, schema: dict[str, Any], kind: str, depth: int, variant: int) -> Any:
        if kind == "object":
            return self._object(schema, depth, variant)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "integer":
            return _integer(schema, variant)
        if kind == "number":
            return _number(schema, variant)
        if kind == "boolean":
            return variant % 2 == 0
        if kind == "null":
            return None
        return _string(schema, variant)

    def _object(self, schema: dict[str, Any], depth: int, variant: int) -> dict[str, Any]:
        if depth > _MAX_DEPTH:
            return {}
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        required = [name for name in schema.get("required") or [] if isinstance(name, str)]
        names = list(properties) if depth <= _FULL_DEPTH else [name for name in properties if name in required]
        value = {name: self.build(properties[name], depth + 1, variant) for name in names}
        for name in required:
            value.setdefault(name, _vary("example", variant))
        return value

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        prefix = schema.get("prefixItems") if isinstance(schema.get("prefixItems"), list) else []
        items = schema.get("items")
        minimum = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 0
        maximum = schema.get("maxItems") if isinstance(schema.get("maxItems"), int) else None
        count = max(minimum, len(prefix), 1 if items is not False else 0)
        if maximum is not None:
            count = min(count, maximum)
        if depth > _MAX_DEPTH:
            count = min(count, minimum)
        values = []
        for index in range(count):
            item_schema = prefix[index] if index < len(prefix) else items
            values.append(self.build(item_schema if item_schema is not None else {}, depth + 1, index))
        return values

    def _all_of(self, schema: dict[str, Any], depth: int, variant: int) -> Any:
        parts = [self.build(part, depth + 1, variant) for part in schema["allOf"]]
        rest = {key: item for key, item in schema.items() if key != "allOf"}
        if _schema_type(rest) == "object" or all(isinstance(part, dict) for part in parts):
            merged: dict[str, Any] = self._object(rest, depth, variant) if rest else {}
            for part in parts:
                if isinstance(part, dict):
                    merged.update(part)
            return merged
        return parts[0]

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            return {}
        node = self.root
        for part in ref[1:].split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return {}
        return node


def _first_usable(branches: list[Any]) -> Any:
    """The first branch that is not just `{"type": "null"}` (a nullable field gets a real value)."""
    for branch in branches:
        if not (isinstance(branch, dict) and branch.get("type") == "null"):
            return branch
    return branches[0]


def _schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if isinstance(k, str) and k != "null"]
        kind = kinds[0] if kinds else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _vary(text: str, variant: int) -> str:
    return text if variant == 0 else f"{text}-{variant + 1}"


def _string(schema: dict[str, Any], variant: int) -> str:
    fmt = schema.get("format")
    value = _vary(_STRING_FORMATS.get(fmt, "example") if isinstance(fmt, str) else "example", variant)
    min_length = schema.get("minLength") if isinstance(schema.get("minLength"), int) else 0
    max_length = schema.get("maxLength") if isinstance(schema.get("maxLength"), int) else None
    if len(value) < min_length:
        value += "x" * (min_length - len(value))
    if max_length is not None:
        value = value[:max_length]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _limits(schema: dict[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """(lower bound, lower is exclusive, upper bound, upper is exclusive); None when unbounded."""
    low, low_exclusive = schema.get("minimum"), False
    if _is_number(schema.get("exclusiveMinimum")) and (not _is_number(low) or schema["exclusiveMinimum"] >= low):
        low, low_exclusive = schema["exclusiveMinimum"], True
    high, high_exclusive = schema.get("maximum"), False
    if _is_number(schema.get("exclusiveMaximum")) and (not _is_number(high) or schema["exclusiveMaximum"] <= high):
        high, high_exclusive = schema["exclusiveMaximum"], True
    return (low if _is_number(low) else None), low_exclusive, (high if _is_number(high) else None), high_exclusive


def _integer(schema: dict[str, Any], variant: int) -> int:
    low, low_exclusive, high, high_exclusive = _limits(schema)
    first = (math.floor(low) + 1 if low_exclusive else math.ceil(low)) if low is not None else 1
    last = (math.ceil(high) - 1 if high_exclusive else math.floor(high)) if high is not None else None
    multiple = schema.get("multipleOf")
    step = multiple if isinstance(multiple, int) and not isinstance(multiple, bool) and multiple > 0 else 1
    value = math.ceil(first / step) * step + variant * step
    if last is not None and value > last:
        value = math.floor(last / step) * step
    return value


def _number(schema: dict[str, Any], variant: int) -> float | int:
    multiple = schema.get("multipleOf")
    if _is_number(multiple) and multiple > 0:
        low, _, high, _ = _limits(schema)
        scaled = {"minimum": low / multiple if low is not None else 1}
        if high is not None:
            scaled["maximum"] = high / multiple
        return _integer(scaled, variant) * multiple
    low, low_exclusive, high, high_exclusive = _limits(schema)
    if low is not None and high is not None:
        return low + (high - low) / 2 if low_exclusive or high_exclusive else low + (high - low) * (variant % 2) / 2
    if low is not None:
        return low + 1 + variant if low_exclusive else low + variant
    if high is not None:
        return high - 1 - variant if high_exclusive else high - variant
    return 1.5 + variant
