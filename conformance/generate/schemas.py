"""The OpenAPI documents schemathesis generates from, built out of the contracts.

Negative cases come from the canonical contract, one synthetic operation per request field
(`/messages/temperature` has a body holding only `temperature`), so that a mutation lands on a
known field and generating `temperature` never pays for generating `messages`. Anthropic's
rules say what must be refused; a provider's documented leniency is a deviation of its profile.

Positive cases come from the target provider's contract (the canonical one by default): its
request schema narrowed to what is cheap and accepted on its own merits (a placeholder model,
one short user turn, `max_tokens` clamped), keeping, as the contract has them, the optional
fields whose validity the schema alone decides (sampling, stop sequences, system, metadata,
service tier). Streamed requests get an operation of their own (`stream: true` required), so
that a share of the positive cases always streams. Fields whose validity depends on the rest of
the request (tool_use ids, thinking signatures, budgets below max_tokens) would make "valid
against the schema" a lie.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from conformance import contract
from conformance.cases import MODEL_PLACEHOLDER
from conformance.specs.documents import Located, deref, inline, root
from conformance.specs.fields import find_operations

ENDPOINTS = ("messages", "count_tokens")
# Optional request fields positive cases vary, when the provider's contract has them.
POSITIVE_FIELDS = ("system", "stop_sequences", "temperature", "top_p", "top_k", "metadata", "service_tier")
# The one user turn of a positive case: short plain text, so a positive case costs a few tokens.
PROMPT = {"type": "string", "minLength": 1, "maxLength": 40, "pattern": "^[A-Za-z][A-Za-z0-9 ,.?!]*$"}
_SHORT_TEXT = {"type": "string", "maxLength": 40, "pattern": "\\S"}
# What positive cases add to the contract's schema of a field (allOf): short values, and the rules
# the API enforces beyond its schema (text and stop sequences that are not blank; no citations on a
# system prompt, which cite nothing; cache_control exactly as documented, no 1h/5m ordering puzzle).
POSITIVE_NARROWING: dict[str, Any] = {
    "stop_sequences": {"type": "array", "maxItems": 4, "items": _SHORT_TEXT},
    "system": {
        "anyOf": [
            _SHORT_TEXT,
            {
                "type": "array",
                "maxItems": 2,
                "items": {
                    "type": "object",
                    "properties": {
                        "text": _SHORT_TEXT,
                        "citations": False,
                        "cache_control": {"type": "object", "propertyNames": {"const": "type"}},
                    },
                },
            },
        ]
    },
}
GENERATION_URI = "urn:conformance:generate"
_MEDIA = "application/json"


@dataclass(frozen=True)
class Operation:
    """One synthetic operation of a generation document: which endpoint and field it stands for."""

    endpoint: str
    path: str
    # The field whose value a negative operation generates; "" for the body as a whole (and for
    # positive operations, "stream" for the streamed one).
    field: str = ""


def _document(paths: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI 3.1 document with these operations' bodies and the canonical component schemas
    (what `$ref`s left in a body resolve to). No parameters and no security: the suite sends the
    headers itself, so schemathesis varies the body only."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "conformance generation", "version": "1"},
        "paths": {
            path: {
                "post": {
                    "requestBody": {"required": True, "content": {_MEDIA: {"schema": schema}}},
                    "responses": {"default": {"description": "any answer"}},
                }
            }
            for path, schema in paths.items()
        },
        "components": {"schemas": copy.deepcopy(contract.document()["components"]["schemas"])},
    }


def _request_node(contract_path: Path, endpoint: str) -> Located | None:
    """The request body schema of an endpoint in a contract file (None when it has no such operation)."""
    operations = find_operations(root(contract_path))
    if endpoint not in operations:
        return None
    body = deref(deref(operations[endpoint][1].child("requestBody")).child("content", _MEDIA, "schema"))
    return body if isinstance(body.value, dict) else None


@functools.cache
def canonical_request(endpoint: str) -> Located:
    """The canonical request schema of an endpoint: a component schema, whose `$ref`s point into
    the canonical components."""
    node = _request_node(contract.contract_path(), endpoint)
    if node is None or not node.pointer.startswith("/components/schemas/"):
        raise KeyError(f"the canonical contract has no {endpoint} request component")
    return node


def negative_document() -> tuple[dict[str, Any], list[Operation]]:
    """Per canonical request, one operation for the body as a whole (its fields required or not,
    unknown ones refused, values left open: schemathesis drops a required field, adds an unknown
    one, sends something other than an object or not JSON at all), then one per field whose body
    is that field's value (every mutation lands inside the field)."""
    paths: dict[str, Any] = {}
    operations: list[Operation] = []
    for endpoint in ENDPOINTS:
        request = canonical_request(endpoint).value
        paths[f"/{endpoint}"] = {
            "type": "object",
            "properties": {field: {} for field in request["properties"]},
            "required": list(request.get("required", [])),
            "additionalProperties": False,
        }
        operations.append(Operation(endpoint, f"/{endpoint}"))
        for field, schema in request["properties"].items():
            path = f"/{endpoint}/{field}"
            paths[path] = copy.deepcopy(schema)
            operations.append(Operation(endpoint, path, field))
    return _document(paths), operations


def positive_document(contract_path: Path, max_tokens: int) -> tuple[dict[str, Any], list[Operation]]:
    """One operation per endpoint the contract serves: its request narrowed as the module says.

    An endpoint missing from the provider's contract gets no positive cases; a contract without a
    messages request at all (only paths) falls back to the canonical one.
    """
    paths: dict[str, Any] = {}
    operations: list[Operation] = []
    for endpoint in ENDPOINTS:
        node = _request_node(contract_path, endpoint) or (
            _request_node(contract.contract_path(), endpoint) if endpoint == "messages" else None
        )
        if node is None or not isinstance(node.value.get("properties"), dict):
            continue
        properties: dict[str, Any] = {
            "model": {"const": MODEL_PLACEHOLDER},
            "messages": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {
                    "type": "object",
                    "required": ["role", "content"],
                    "additionalProperties": False,
                    "properties": {"role": {"const": "user"}, "content": PROMPT},
                },
            },
        }
        required = ["model", "messages"]
        if endpoint == "messages":
            properties["max_tokens"] = {"type": "integer", "minimum": 1, "maximum": max_tokens}
            required.append("max_tokens")
        for field in POSITIVE_FIELDS:
            if field in node.value["properties"]:
                schema = inline(node.child("properties", field))
                properties[field] = (
                    {"allOf": [schema, POSITIVE_NARROWING[field]]} if field in POSITIVE_NARROWING else schema
                )
        path = f"/{endpoint}"
        paths[path] = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
        operations.append(Operation(endpoint, path))
        if endpoint == "messages" and "stream" in node.value["properties"]:
            streamed = {**properties, "stream": {"const": True}}
            paths[path + "/stream"] = {**paths[path], "properties": streamed, "required": [*required, "stream"]}
            operations.append(Operation(endpoint, path + "/stream", "stream"))
    return _document(paths), operations


class Validity:
    """Whether a built body is valid against a generation document's schema for an operation.

    Negative cases are checked against the whole canonical request (the mutation moved into a
    valid request must still break the contract); positive ones against the narrowed request
    that generated them (a shrunk positive case must still be one).
    """

    def __init__(self, document: dict[str, Any]) -> None:
        self._registry = Registry().with_resource(GENERATION_URI, Resource(document, DRAFT202012))
        self._validators: dict[str, Draft202012Validator] = {}

    def _validator(self, pointer: str) -> Draft202012Validator:
        if pointer not in self._validators:
            self._validators[pointer] = Draft202012Validator(
                {"$ref": f"{GENERATION_URI}#{pointer}"}, registry=self._registry
            )
        return self._validators[pointer]

    def request_valid(self, endpoint: str, body: Any) -> bool:
        """Valid against the canonical request of the endpoint."""
        return self._validator(canonical_request(endpoint).pointer).is_valid(body)

    @staticmethod
    def invalid_at(endpoint: str, body: Any, field: str) -> bool:
        """True when the canonical request finds a problem at `field` (a dotted path, list indexes
        left out), inside it or at one of its parents (a union that no branch fits): the body
        still breaks the rule its case is about, not another one."""
        name = canonical_request(endpoint).pointer.rsplit("/", 1)[-1]
        wanted = field.split(".")
        for problem in contract.validate(name, body):
            names = [part for part in re.split(r"\[-?\d+\]|\.", problem.path) if part]
            if names[: len(wanted)] == wanted[: len(names)]:  # at the field, inside it, or around it
                return True
        return False

    def operation_valid(self, operation: Operation, body: Any) -> bool:
        """Valid against the body schema of one operation of the document."""
        escaped = operation.path.replace("~", "~0").replace("/", "~1")
        return self._validator(f"/paths/{escaped}/post/requestBody/content/application~1json/schema").is_valid(body)
