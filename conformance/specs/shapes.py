"""What a JSON schema admits, normalised so that schemas written in different styles compare.

Anthropic's published spec writes a content block union as `oneOf` + `discriminator`, our
contract as `allOf` of `if`/`then` on `type`, a Go-generated spec as one flat object, a 3.0
spec with `nullable: true`. A `Shape` is the common denominator: the JSON types admitted, the
known literal values, numeric and length bounds, object properties (with which are required),
array items, and discriminated variants keyed by their `type` value. It is not a validator;
it is what diffing, merging and the cross-check with the official spec need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from conformance.specs.documents import Located, SpecError, resolve

# Bound keywords, by the kind of limit they set: (keyword, is-lower-bound).
LOWER = ("minimum", "minLength", "minItems")
UPPER = ("maximum", "maxLength", "maxItems")
JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})


@dataclass(frozen=True)
class Bound:
    """One side of a range: `value`, and whether the bound itself is excluded."""

    value: float
    exclusive: bool = False

    def __str__(self) -> str:
        number = int(self.value) if float(self.value).is_integer() else self.value
        return f"{number} (exclusive)" if self.exclusive else str(number)


@dataclass
class Shape:
    """The normalised form of one schema. Empty `types` admits any JSON type."""

    types: frozenset[str] = frozenset()
    # Known literal values (enum, const, discriminator keys); None when the schema names none.
    values: frozenset[str] | None = None
    # True when values beyond `values` are admitted too (an open enum, a forward-compatible type).
    open: bool = False
    bounds: dict[str, Bound] = field(default_factory=dict)
    properties: dict[str, Shape] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    # False when unknown object properties are refused (additionalProperties / unevaluatedProperties false).
    additional: bool = True
    items: Shape | None = None
    # Object variants told apart by the value of `discriminator` (e.g. content blocks by `type`).
    variants: dict[str, Shape] = field(default_factory=dict)
    discriminator: str | None = None
    deprecated: bool = False
    # Where the schema was written: `file#/pointer` of the node (the target of its $ref, if any).
    origin: str = ""
    # Where each property's and the items' schemas sit (the node holding the `$ref`, if one).
    properties_at: dict[str, str] = field(default_factory=dict)
    items_at: str = ""
    # The node could not be followed (a recursive or unresolvable reference).
    opaque: str = ""

    @property
    def is_object(self) -> bool:
        return "object" in self.types or bool(self.properties or self.variants)


def literal(value: Any) -> str:
    """A literal value as a comparable string: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


class Builder:
    """Builds shapes from schema nodes of one or more documents, following $refs (cached)."""

    def __init__(self, strict: bool = True) -> None:
        # strict: an unresolvable reference is an error; otherwise it becomes an opaque shape.
        self.strict = strict
        self._cache: dict[tuple[Path, str], Shape] = {}
        self._stack: list[tuple[Path, str]] = []

    def build(self, node: Located) -> Shape:
        value = node.value
        if value is True or value == {}:
            return Shape(origin=node.location)
        if value is False:
            return Shape(types=frozenset({"never"}), origin=node.location)
        if not isinstance(value, dict):
            raise SpecError(f"{node.location}: a schema must be an object, got {type(value).__name__}")
        if isinstance(value.get("$ref"), str):
            return self._reference(node)
        return self._schema(node)

    # -- references ---------------------------------------------------------------------------

    def _reference(self, node: Located) -> Shape:
        try:
            target = resolve(node.value["$ref"], node.file)
        except SpecError as exc:
            if self.strict:
                raise
            return Shape(opaque=str(exc), origin=node.location)
        key = (target.file, target.pointer)
        if key in self._stack:
            return Shape(opaque=f"recursive reference to {target.location}", origin=target.location)
        shape = self._cache.get(key)
        if shape is None:
            self._stack.append(key)
            try:
                shape = self.build(target)
            finally:
                self._stack.pop()
            self._cache[key] = shape
        siblings = {k: v for k, v in node.value.items() if k != "$ref"}
        if set(siblings) - {"description", "title", "examples", "example", "default", "summary"}:
            shape = intersect(shape, self._schema(Located(node.file, node.pointer, siblings)))
        return shape

    # -- one schema object --------------------------------------------------------------------

    def _schema(self, node: Located) -> Shape:
        value: dict[str, Any] = node.value
        shape = self._own_keywords(node)
        shape.origin = node.location
        for keyword in ("anyOf", "oneOf"):
            if isinstance(value.get(keyword), list):
                branches = [self.build(node.child(keyword, i)) for i in range(len(value[keyword]))]
                disc = (value.get("discriminator") or {}).get("propertyName")
                shape = intersect(shape, union(branches, disc))
        conditions: list[tuple[Shape, Shape]] = []
        for index, part in enumerate(value.get("allOf") or []):
            if isinstance(part, dict) and "if" in part and "then" in part:
                conditions.append(
                    (self.build(node.child("allOf", index, "if")), self.build(node.child("allOf", index, "then")))
                )
            else:
                shape = intersect(shape, self.build(node.child("allOf", index)))
        if "if" in value and "then" in value:
            conditions.append((self.build(node.child("if")), self.build(node.child("then"))))
        if conditions:
            shape = _conditional_variants(shape, conditions)
        shape.origin = node.location
        return shape

    def _own_keywords(self, node: Located) -> Shape:
        value: dict[str, Any] = node.value
        shape = Shape(deprecated=bool(value.get("deprecated")))
        declared = value.get("type")
        if isinstance(declared, str):
            shape.types = frozenset({declared})
        elif isinstance(declared, list):
            shape.types = frozenset(t for t in declared if isinstance(t, str))
        if value.get("nullable") is True and shape.types:
            shape.types |= {"null"}
        if "const" in value:
            shape.values = frozenset({literal(value["const"])})
            shape.types = shape.types or _types_of([value["const"]])
        elif isinstance(value.get("enum"), list):
            shape.values = frozenset(literal(v) for v in value["enum"] if v is not None)
            if None in value["enum"]:
                shape.types |= {"null"}
            shape.types = shape.types or _types_of(value["enum"])
        for keyword in LOWER + UPPER:
            if isinstance(value.get(keyword), (int, float)) and not isinstance(value.get(keyword), bool):
                shape.bounds[keyword] = Bound(value[keyword])
        for keyword, target in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            bound = value.get(keyword)
            if isinstance(bound, (int, float)) and not isinstance(bound, bool):
                shape.bounds[target] = Bound(bound, exclusive=True)
            elif bound is True and target in shape.bounds:  # OpenAPI 3.0 style
                shape.bounds[target] = Bound(shape.bounds[target].value, exclusive=True)
        properties = value.get("properties")
        if isinstance(properties, dict):
            shape.properties = {name: self.build(node.child("properties", name)) for name in properties}
            shape.properties_at = {name: node.child("properties", name).location for name in properties}
        if isinstance(value.get("required"), list):
            shape.required = frozenset(name for name in value["required"] if isinstance(name, str))
        if value.get("additionalProperties") is False or value.get("unevaluatedProperties") is False:
            shape.additional = False
        if "items" in value and isinstance(value["items"], (dict, bool)):
            shape.items = self.build(node.child("items"))
            shape.items_at = node.child("items").location
        if not shape.types and (shape.properties or "additionalProperties" in value):
            shape.types = frozenset({"object"})
        if not shape.types and shape.items is not None:
            shape.types = frozenset({"array"})
        shape.types = frozenset(t for t in shape.types if t in JSON_TYPES)
        return shape


def _types_of(values: list[Any]) -> frozenset[str]:
    names = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        dict: "object",
        list: "array",
        type(None): "null",
    }
    return frozenset(names.get(type(v), "string") for v in values)


def discriminator_key(shape: Shape, prop: str) -> str | None:
    """The key of an object variant: the closed values of its discriminator property, joined."""
    if not shape.is_object:
        return None
    target = shape.properties.get(prop)
    if target is None or not target.values or target.open:
        return None
    return "|".join(sorted(target.values))


def _conditional_variants(base: Shape, conditions: list[tuple[Shape, Shape]]) -> Shape:
    """`allOf: [{if: {properties: {type: {const: X}}}, then: S}, ...]`: variants keyed by X.

    The base's own properties apply to every variant; values the base admits beyond the keys
    (forward compatibility) make the discriminator open.
    """
    for prop in ("type", *sorted({p for cond, _ in conditions for p in cond.properties})):
        keys = [discriminator_key(cond, prop) for cond, _ in conditions]
        if all(keys):
            break
    else:
        return base  # conditions that are not a discriminator: keep only what is unconditional
    variants: dict[str, Shape] = {}
    for key, (_, then) in zip(keys, conditions, strict=True):
        assert key is not None
        variant = intersect(replace(base, variants={}, discriminator=None), then)
        variant.properties = dict(variant.properties)
        variant.properties[prop] = Shape(types=frozenset({"string"}), values=frozenset(key.split("|")))
        variants[key] = variant
    declared = base.properties.get(prop)
    if declared is not None and declared.values and not declared.open:
        # Declared values without a condition of their own are variants with only the base's fields.
        plain = replace(base, variants={}, discriminator=None)
        for value in sorted(declared.values - {k for key in variants for k in key.split("|")}):
            variants[value] = replace(
                plain,
                properties={**plain.properties, prop: Shape(types=frozenset({"string"}), values=frozenset({value}))},
            )
    out = replace(base, variants={**base.variants, **variants}, discriminator=prop)
    known = frozenset(k for key in variants for k in key.split("|"))
    closed = declared is not None and declared.values is not None and not declared.open
    values = (declared.values or frozenset()) | known if declared is not None else known
    out.properties = {**base.properties, prop: Shape(types=frozenset({"string"}), values=values, open=not closed)}
    return out


def union(branches: list[Shape], discriminator: str | None = None) -> Shape:
    """What anyOf/oneOf admits: anything one of the branches admits."""
    if not branches:
        return Shape()
    if len(branches) == 1:
        return branches[0]
    prop = discriminator or "type"
    objects = [b for b in branches if b.is_object and "array" not in b.types]
    keyed = [(discriminator_key(b, prop), b) for b in objects]
    variants: dict[str, Shape] = {}
    for b in objects:
        if b.variants and b.discriminator == prop:
            variants.update(b.variants)
    for key, b in keyed:
        if key is not None and not b.variants:
            variants[key] = b
    discriminated = len(variants) >= 2 and all(key is not None or b.variants for key, b in keyed)
    out = Shape(types=frozenset().union(*(b.types for b in branches)))
    if any(not b.types and not b.opaque for b in branches):
        out.types = frozenset()
    out.opaque = next((b.opaque for b in branches if b.opaque), "") if all(b.opaque for b in branches) else ""
    out.deprecated = all(b.deprecated for b in branches)
    _union_values(out, branches)
    _union_bounds(out, branches)
    if discriminated:
        out.variants = variants
        out.discriminator = prop
        known = frozenset(k for key in variants for k in key.split("|"))
        open_ = any(b.variants and b.properties.get(prop, Shape()).open for b in objects)
        out.properties = {prop: Shape(types=frozenset({"string"}), values=known, open=open_)}
        out.required = frozenset({prop})
        out.additional = any(v.additional for v in variants.values())
    elif objects:
        names = {name for b in objects for name in b.properties}
        out.properties = {
            name: union([b.properties[name] for b in objects if name in b.properties]) for name in sorted(names)
        }
        out.required = frozenset.intersection(*(b.required for b in objects))
        out.additional = any(b.additional for b in objects)
        out.properties_at = {k: v for b in reversed(objects) for k, v in b.properties_at.items()}
    arrays = [b.items for b in branches if "array" in b.types and b.items is not None]
    if arrays:
        out.items = union(arrays)
        out.items_at = next((b.items_at for b in branches if b.items_at), "")
    return out


def _union_values(out: Shape, branches: list[Shape]) -> None:
    scalar = [b for b in branches if b.types - {"object", "array", "null"} or not b.types]
    with_values = [b for b in scalar if b.values is not None]
    if not with_values:
        return
    out.values = frozenset().union(*(b.values or frozenset() for b in with_values))
    out.open = any(b.open for b in with_values) or len(with_values) < len(scalar)


def _union_bounds(out: Shape, branches: list[Shape]) -> None:
    relevant = [b for b in branches if b.types - {"null"} or not b.types]
    for keyword in LOWER:
        found = [b.bounds.get(keyword) for b in relevant]
        if found and all(found):
            out.bounds[keyword] = min(found, key=_lower_key)  # type: ignore[arg-type]
    for keyword in UPPER:
        found = [b.bounds.get(keyword) for b in relevant]
        if found and all(found):
            out.bounds[keyword] = max(found, key=_upper_key)  # type: ignore[arg-type]


def _lower_key(bound: Bound) -> tuple[float, int]:
    """Order lower bounds from loosest to tightest."""
    return (bound.value, 1 if bound.exclusive else 0)


def _upper_key(bound: Bound) -> tuple[float, int]:
    """Order upper bounds from tightest to loosest."""
    return (bound.value, 0 if bound.exclusive else 1)


def intersect(a: Shape, b: Shape) -> Shape:
    """What allOf admits: what both admit (approximately: enough for comparison)."""
    if b.opaque and not a.opaque:
        return a
    if a.opaque:
        return b
    out = replace(a)
    if a.types and b.types:
        types = a.types & b.types
        if ("number" in a.types and "integer" in b.types) or ("integer" in a.types and "number" in b.types):
            types |= {"integer"}
        out.types = types
    else:
        out.types = a.types or b.types
    out.values, out.open = _intersect_values(a, b)
    out.bounds = dict(a.bounds)
    for keyword, bound in b.bounds.items():
        mine = out.bounds.get(keyword)
        if mine is None:
            out.bounds[keyword] = bound
        elif keyword in LOWER:
            out.bounds[keyword] = max(mine, bound, key=_lower_key)
        else:
            out.bounds[keyword] = min(mine, bound, key=_upper_key)
    out.properties = dict(a.properties)
    for name, prop in b.properties.items():
        out.properties[name] = intersect(out.properties[name], prop) if name in out.properties else prop
    out.required = a.required | b.required
    out.additional = a.additional and b.additional
    out.properties_at = {**b.properties_at, **a.properties_at}
    out.items_at = a.items_at or b.items_at
    if a.items is not None and b.items is not None:
        out.items = intersect(a.items, b.items)
    else:
        out.items = a.items or b.items
    if a.variants or b.variants:
        out.variants = {}
        for key in [*a.variants, *(k for k in b.variants if k not in a.variants)]:
            mine = a.variants.get(key, replace(a, variants={}, discriminator=None))
            theirs = b.variants.get(key, replace(b, variants={}, discriminator=None))
            out.variants[key] = intersect(mine, theirs)
        out.discriminator = a.discriminator or b.discriminator
        admitted = out.properties.get(out.discriminator or "")
        if admitted is not None and admitted.values is not None and not admitted.open:
            out.variants = {k: v for k, v in out.variants.items() if set(k.split("|")) & admitted.values}
    out.deprecated = a.deprecated or b.deprecated
    out.origin = a.origin or b.origin
    return out


def _intersect_values(a: Shape, b: Shape) -> tuple[frozenset[str] | None, bool]:
    """Known values both admit: a closed list narrows an open one; two open lists pool what they know."""
    if a.values is None or b.values is None:
        return (a.values, a.open) if b.values is None else (b.values, b.open)
    if a.open and b.open:
        return a.values | b.values, True
    if a.open:
        return b.values, False
    if b.open:
        return a.values, False
    return a.values & b.values, False
