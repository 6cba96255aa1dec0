"""A contract as a flat map of fields: `request.temperature`, `response.content[]<text>.citations`...

Paths name where a value sits in the exchange. Segments: `.name` an object property, `[]` the
items of an array, `<key>` the variant of a discriminated union whose `type` is `key`. Sections:

| prefix | what |
|---|---|
| `endpoint.messages`, `endpoint.count_tokens` | the operation exists (its full path is the value) |
| `auth` | how requests authenticate (x-api-key, bearer, basic, none) |
| `header.NAME` | a request header parameter |
| `request.`, `response.` | the Messages request body and JSON response body |
| `response_header.NAME` | a header of the 200 response |
| `stream.` | SSE event payloads (`stream<message_delta>.usage...`); `stream.event` the `event:` line |
| `stream.sentinel` | a non-JSON end-of-stream marker such as `[DONE]` |
| `error.` | the error body; `errors.status` the documented error statuses |
| `count_tokens.request.`, `count_tokens.response.` | the count_tokens bodies |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.specs.documents import Located, SpecError, deref, modified, recording, root
from conformance.specs.shapes import Bound, Builder, Shape, union

# Below an event's payload, stream fields go this many properties deep (the rest repeats `response`).
STREAM_DEPTH = 2
_VARIANT = re.compile(r"<[^<>]*>")


@dataclass(frozen=True)
class Field:
    """What a contract says about the value at one path."""

    path: str
    types: frozenset[str] = frozenset()
    values: frozenset[str] | None = None
    open: bool = False
    bounds: tuple[tuple[str, Bound], ...] = ()
    required: bool = False
    additional: bool = True
    deprecated: bool = False
    # Where the field's schema sits (`file#/pointer`): the node that holds it (a property, items)
    # and the definition it refers to (the same node when it holds no $ref).
    origin: str = ""
    definition: str = ""
    opaque: str = ""

    @property
    def bound_map(self) -> dict[str, Bound]:
        return dict(self.bounds)

    def describe(self) -> str:
        """A one-line summary: `number [0, 1], required`."""
        parts = []
        types = "|".join(sorted(self.types)) if self.types else "any"
        if self.values is not None:
            shown = ", ".join(sorted(self.values)[:12]) + (", …" if len(self.values) > 12 else "")
            types += f" {{{shown}{', …open' if self.open else ''}}}"
        parts.append(types)
        bounds = self.bound_map
        for low, high in (("minimum", "maximum"), ("minLength", "maxLength"), ("minItems", "maxItems")):
            if low in bounds or high in bounds:
                label = {"minimum": "", "minLength": "length ", "minItems": "items "}[low]
                lo = bounds.get(low)
                hi = bounds.get(high)
                left = ("(" if lo and lo.exclusive else "[") + (str(lo.value if lo else "")).removesuffix(".0")
                right = (str(hi.value if hi else "")).removesuffix(".0") + (")" if hi and hi.exclusive else "]")
                parts.append(f"{label}{left}, {right}")
        if self.required:
            parts.append("required")
        if not self.additional:
            parts.append("closed")
        if self.deprecated:
            parts.append("deprecated")
        return ", ".join(parts)


def strip_variants(path: str) -> str:
    """`response.content[]<text>.text` -> `response.content[].text` (for flat, untyped unions)."""
    return _VARIANT.sub("", path)


def lookup(fields: dict[str, Field], path: str, base: dict[str, Field] | None = None) -> Field | None:
    """The field at `path` in `fields`.

    A variant segment (`<key>`) that `fields` lacks is skipped when `fields` describes that union
    as one flat object (Bifrost's content block, a single ToolCaller object): its fields then sit
    at the flat path. The flat object must admit `key` in its discriminator; one without a
    discriminator stands only for the variant that needs none (e.g. a custom tool, whose `type`
    is optional), which `base` (the canonical fields) tells.
    """
    found = fields.get(path)
    if found is not None or "<" not in path:
        return found
    current = ""
    canonical = ""
    for part in re.split(r"(<[^<>]*>)", path):
        if not part:
            continue
        canonical += part
        if not part.startswith("<") or current + part in fields:
            current += part
            continue
        if current not in fields:
            return None
        discriminant = fields.get(current + ".type")
        if discriminant is None:
            variant = (base or {}).get(canonical)
            if variant is None or variant.required:
                return None
        elif (
            discriminant.values is not None
            and not discriminant.open
            and not set(part[1:-1].split("|")) & discriminant.values
        ):
            return None
    return fields.get(current)


class Flattener:
    """Turns the shapes of one contract into fields."""

    def __init__(self, strict: bool = True) -> None:
        self.builder = Builder(strict=strict)
        self.fields: dict[str, Field] = {}

    def add(self, path: str, shape: Shape, required: bool = False, depth: int | None = None, at: str = "") -> None:
        self.fields[path] = Field(
            path=path,
            types=shape.types,
            values=shape.values,
            open=shape.open,
            bounds=tuple(sorted(shape.bounds.items())),
            required=required,
            additional=shape.additional,
            deprecated=shape.deprecated,
            origin=at or shape.origin,
            definition=shape.origin,
            opaque=shape.opaque,
        )
        if depth is not None and depth <= 0:
            return
        below = None if depth is None else depth - 1
        for name, prop in shape.properties.items():
            at = shape.properties_at.get(name, "")
            if shape.variants and name == shape.discriminator:
                self.add(f"{path}.{name}", prop, name in shape.required, 0, at)
                continue
            if shape.variants:
                continue  # the variants carry their own copy of the common properties
            self.add(f"{path}.{name}", prop, name in shape.required, below, at)
        for key, variant in shape.variants.items():
            self._variant(f"{path}<{key}>", variant, shape.discriminator, depth)
        if shape.items is not None:
            self.add(f"{path}[]", shape.items, False, depth, shape.items_at)

    def _variant(self, path: str, variant: Shape, discriminator: str | None, depth: int | None) -> None:
        # `required` of a variant: whether its discriminator must be present (false for a default variant).
        self.fields[path] = Field(
            path=path,
            types=frozenset({"object"}),
            required=discriminator in variant.required,
            additional=variant.additional,
            origin=variant.origin,
            definition=variant.origin,
        )
        below = None if depth is None else depth - 1
        for name, prop in variant.properties.items():
            if name != discriminator:
                self.add(f"{path}.{name}", prop, name in variant.required, below, variant.properties_at.get(name, ""))
        for key, inner in variant.variants.items():
            self._variant(f"{path}<{key}>", inner, variant.discriminator, depth)
        if variant.items is not None:
            self.add(f"{path}[]", variant.items, False, depth, variant.items_at)

    def schema(self, path: str, node: Located, depth: int | None = None) -> None:
        self.add(path, self.builder.build(node), True, depth, node.location)


def schema_fields(node: Located, prefix: str, strict: bool = True) -> dict[str, Field]:
    """The fields of one schema (e.g. a component of the official spec) under `prefix`."""
    flattener = Flattener(strict)
    flattener.schema(prefix, node)
    return flattener.fields


def find_operations(document: Located) -> dict[str, tuple[str, Located]]:
    """The POST operations for messages and count_tokens: {kind: (full path, operation)}.

    A path counts when it ends with /messages or /messages/count_tokens (a query string and a
    server path prefix allowed); among several (Bifrost serves the API under many prefixes),
    the shortest wins.
    """
    paths = document.value.get("paths") or {}
    prefix = _server_path(document.value)
    found: dict[str, tuple[str, Located]] = {}
    for raw in sorted(paths, key=len):
        if "{" in raw:
            continue
        path = raw.split("?")[0].rstrip("/")
        kind = (
            "count_tokens"
            if path.endswith("/messages/count_tokens")
            else "messages"
            if path.endswith("/messages")
            else None
        )
        if kind is None or kind in found:
            continue
        item = deref(document.child("paths", raw))
        if isinstance(item.value, dict) and isinstance(item.value.get("post"), dict):
            found[kind] = (prefix + path, item.child("post"))
    return found


def _server_path(document: dict[str, Any]) -> str:
    servers = document.get("servers") or []
    url = servers[0].get("url", "") if servers and isinstance(servers[0], dict) else ""
    match = re.match(r"^(?:[a-z]+://[^/]+)?(/[^?#]*)?", url)
    return (match.group(1) or "").rstrip("/") if match else ""


_CACHE: dict[tuple[Path, bool], tuple[tuple[tuple[str, int], ...], dict[str, Field]]] = {}


def contract_fields(path: Path, strict: bool = True) -> dict[str, Field]:
    """Every field of the contract (OpenAPI document) at `path`.

    Cached until one of the files it was read from (itself and those its $refs name) changes.
    """
    key = (path.resolve(), strict)
    cached = _CACHE.get(key)
    if cached is not None and modified({Path(name) for name, _ in cached[0]}) == cached[0]:
        return cached[1]
    with recording() as files:
        fields = _contract_fields(key[0], strict)
    _CACHE[key] = (modified(files), fields)
    return fields


def _contract_fields(path: Path, strict: bool) -> dict[str, Field]:
    document = root(path)
    flattener = Flattener(strict)
    operations = find_operations(document)
    if "messages" not in operations:
        raise SpecError(f"{path}: no POST .../messages operation")
    _auth(flattener, document, operations["messages"][1])
    for kind, (full_path, operation) in operations.items():
        flattener.fields[f"endpoint.{kind}"] = Field(
            path=f"endpoint.{kind}", types=frozenset({"object"}), values=frozenset({full_path})
        )
        prefix = "" if kind == "messages" else "count_tokens."
        if kind == "messages":
            _headers(flattener, operation, _credential_headers(document))
        body = (
            _content(deref(operation.child("requestBody")), "application/json")
            if "requestBody" in operation.value
            else None
        )
        if body is not None and "schema" in body.value:
            flattener.schema(f"{prefix}request", body.child("schema"))
        _responses(flattener, operation, prefix)
    return flattener.fields


def _content(holder: Located, media: str) -> Located | None:
    """The media type object `media` of a request body or response (itself after $refs)."""
    content = holder.value.get("content") if isinstance(holder.value, dict) else None
    if not isinstance(content, dict):
        return None
    for name in content:
        if name.split(";")[0].strip().lower() == media:
            return holder.child("content", name)
    return None


def _credential_headers(document: Located) -> set[str]:
    """Headers that carry credentials: Anthropic's and those of the document's API-key schemes."""
    schemes = ((document.value.get("components") or {}).get("securitySchemes")) or {}
    names = {
        str(s.get("name", "")).lower() for s in schemes.values() if isinstance(s, dict) and s.get("in") == "header"
    }
    return names | {"authorization", "x-api-key"}


def _auth(flattener: Flattener, document: Located, operation: Located) -> None:
    requirements = operation.value.get("security", document.value.get("security"))
    schemes = ((document.value.get("components") or {}).get("securitySchemes")) or {}
    if requirements is None:
        return
    styles: set[str] = set()
    for requirement in requirements:
        if not requirement:
            styles.add("none")
        for name in requirement:
            scheme = schemes.get(name) or {}
            if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
                header = str(scheme.get("name", "")).lower()
                styles.add("bearer" if header == "authorization" else header)
            elif scheme.get("type") == "http":
                styles.add(str(scheme.get("scheme", "")).lower())
            else:
                styles.add(str(scheme.get("type", name)))
    flattener.fields["auth"] = Field(path="auth", types=frozenset({"string"}), values=frozenset(styles or {"none"}))


def _headers(flattener: Flattener, operation: Located, credentials: set[str]) -> None:
    """Header parameters, but not those that carry credentials (the `auth` field covers them)."""
    for index in range(len(operation.value.get("parameters") or [])):
        parameter = deref(operation.child("parameters", index))
        value = parameter.value
        if not isinstance(value, dict) or value.get("in") != "header" or "name" not in value:
            continue
        name = str(value["name"]).lower()
        if name in credentials:
            continue
        shape = flattener.builder.build(parameter.child("schema")) if "schema" in value else Shape()
        flattener.add(f"header.{name}", shape, bool(value.get("required")))


def _responses(flattener: Flattener, operation: Located, prefix: str) -> None:
    errors: list[Shape] = []
    statuses: set[str] = set()
    for status in operation.value.get("responses") or {}:
        code = str(status).upper()
        response = deref(operation.child("responses", status))
        body = _content(response, "application/json")
        if code.startswith("2"):
            if body is not None and "schema" in body.value:
                flattener.schema(f"{prefix}response", body.child("schema"))
            if not prefix:
                _response_headers(flattener, response)
                _stream(flattener, response)
        elif code[0] in "45" or code == "DEFAULT":
            statuses.add(code.lower() if code == "DEFAULT" else code)
            if body is not None and "schema" in body.value:
                shape = flattener.builder.build(body.child("schema"))
                if all(shape is not known for known in errors):
                    errors.append(shape)
    if prefix:
        return
    flattener.fields["errors.status"] = Field(
        path="errors.status", types=frozenset({"integer"}), values=frozenset(statuses)
    )
    if errors:
        flattener.add("error", union(errors), True)


def _response_headers(flattener: Flattener, response: Located) -> None:
    for name in response.value.get("headers") or {}:
        header = deref(response.child("headers", name))
        shape = flattener.builder.build(header.child("schema")) if "schema" in header.value else Shape()
        flattener.add(f"response_header.{name.lower()}", shape, bool(header.value.get("required")))


def _stream(flattener: Flattener, response: Located) -> None:
    media = _content(response, "text/event-stream")
    if media is None:
        return
    key = "itemSchema" if "itemSchema" in media.value else "schema" if "schema" in media.value else None
    if key is None:
        return
    payloads: list[Located] = []
    sentinels: set[str] = set()
    item = deref(media.child(key))
    _event_payloads(item, payloads, sentinels)
    framing = flattener.builder.build(item)
    if "data" in framing.properties and "event" in framing.properties:
        # The item models SSE framing: is the `event:` line (the name the SDKs dispatch on) sent?
        flattener.add("stream.event", framing.properties["event"], "event" in framing.required, 0)
    if payloads:
        flattener.add("stream", union([flattener.builder.build(node) for node in payloads]), True, STREAM_DEPTH)
    if sentinels:
        flattener.fields["stream.sentinel"] = Field(
            path="stream.sentinel", types=frozenset({"string"}), values=frozenset(sentinels)
        )


def _event_payloads(item: Located, payloads: list[Located], sentinels: set[str]) -> None:
    """Collect the JSON payload schemas of an SSE item schema, and the non-JSON sentinels.

    An item is `{event, data}` with `data` a JSON string (`contentSchema` says what it holds),
    an object (specs that model the parsed payload), or a constant like `[DONE]`; or the item
    schema is directly the payload union.
    """
    value = item.value
    if not isinstance(value, dict):
        return
    for keyword in ("oneOf", "anyOf"):
        for index in range(len(value.get(keyword) or [])):
            _event_payloads(deref(item.child(keyword, index)), payloads, sentinels)
    data = (value.get("properties") or {}).get("data")
    if data is None:
        if not any(k in value for k in ("oneOf", "anyOf")):
            payloads.append(item)
        return
    node = deref(item.child("properties", "data"))
    if "contentSchema" in node.value:
        payloads.append(node.child("contentSchema"))
    elif "const" in node.value and isinstance(node.value["const"], str):
        sentinels.add(node.value["const"])
    elif node.value.get("type") == "object" or "$ref" in data or "properties" in node.value or "oneOf" in node.value:
        payloads.append(node)
