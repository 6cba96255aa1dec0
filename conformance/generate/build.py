"""From drawn bodies to ordinary cases: what is sent, what is expected, and which rule it tests.

A negative draw holds one field (or none, or an unknown one); it is moved into a minimal valid
request, so that the mutation is the only thing wrong with what is sent. The result must still
break the canonical contract, else it is dropped: schemathesis breaks the one-field schema, and
what it breaks there (a missing optional field) may be fine in the whole request. A negative case
expects a 4xx; every contract check then judges the error (envelope, status <-> type).

A positive draw is a whole narrowed request; it expects a 2xx that passes every check (a stream
when it asks for one). Each case is tagged `generated.<field>.<rule>`: the field path (list
indexes left out) and the rule broken, or `positive`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from conformance import contract
from conformance.cases import MODEL_PLACEHOLDER, Case, Step, StepRequest
from conformance.generate.schemas import Operation, Validity, canonical_request
from conformance.generate.strategy import POSITIVE, Drawn

PREFIX = "generated"
TIER = "core"
PROMPT = "Hello"
# Capabilities a field needs: a target that does not claim them may ignore the field altogether,
# so a malformed value it lets through says nothing.
FIELD_CAPABILITIES: dict[str, frozenset[str]] = {
    "tools": frozenset({"tools"}),
    "tool_choice": frozenset({"tools"}),
    "thinking": frozenset({"thinking"}),
    "cache_control": frozenset({"prompt-caching"}),
    "output_config.effort": frozenset({"effort"}),
    "output_config": frozenset({"structured-outputs"}),
}
# Keywords named after what they mean in a request.
RULE_NAMES = {"additionalProperties": "unknown-field", "unevaluatedProperties": "unknown-field"}
# schemathesis names the schema location it broke (`at /properties/...`): the field says it better.
_LOCATION = re.compile(r" at /\S*")


@dataclass(frozen=True)
class GeneratedCase:
    """A generated case and what it tests: the mode, the endpoint and field, the rule, and how
    schemathesis described what it did. `validity` tells whether another body would still test
    the same thing (the shrinker asks it)."""

    case: Case
    operation: Operation
    positive: bool
    field: str
    rule: str
    validity: Validity = dataclasses.field(compare=False, repr=False)
    description: str = ""

    @property
    def endpoint(self) -> str:
        return self.operation.endpoint

    def with_request(self, body: Any, raw_body: str | None = None) -> GeneratedCase:
        """The same case sending another body (the shrinker's candidates)."""
        step = self.case.steps[0]
        request = StepRequest(endpoint=step.request.endpoint, body=body, raw_body=raw_body)
        case = Case(
            id=case_id(self.case.feature, body, raw_body),
            feature=self.case.feature,
            spec=self.case.spec,
            tier=self.case.tier,
            steps=(Step(request=request, expect=step.expect),),
            title=self.case.title,
            requires=self.case.requires,
            generated=True,
        )
        return GeneratedCase(
            case, self.operation, self.positive, self.field, self.rule, self.validity, self.description
        )


def base_request(endpoint: str, max_tokens: int) -> dict[str, Any]:
    """The smallest valid request of an endpoint, which negative cases put their one field into."""
    body: dict[str, Any] = {"model": MODEL_PLACEHOLDER, "messages": [{"role": "user", "content": PROMPT}]}
    if endpoint == "messages":
        body["max_tokens"] = max_tokens
    return body


def case_id(feature: str, body: Any, raw_body: str | None) -> str:
    """`<feature>.<8 hex digits of the request>`: stable for the same request, unique per request."""
    text = raw_body if raw_body is not None else json.dumps(body, sort_keys=True, ensure_ascii=False)
    return f"{feature}.{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def build(drawn: Drawn, validity: Validity, max_tokens: int) -> GeneratedCase | None:
    """The case for a draw; None when it would not test what its mode says (a "negative" request
    the contract allows, a "positive" one it refuses)."""
    if drawn.mode is POSITIVE:
        return _positive(drawn, validity, max_tokens)
    return _negative(drawn, validity, max_tokens)


def _positive(drawn: Drawn, validity: Validity, max_tokens: int) -> GeneratedCase | None:
    body = drawn.body
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("max_tokens"), int):
        body = {**body, "max_tokens": min(body["max_tokens"], max_tokens)}
    if not validity.operation_valid(drawn.operation, body):
        return None
    endpoint = drawn.operation.endpoint
    streaming = body.get("stream") is True
    field = "stream" if streaming else "request"
    feature = _feature(endpoint, field, "positive")
    title = f"a {'streamed ' if streaming else ''}request valid against the contract is accepted"
    expect: dict[str, Any] = {"status": "2xx"}
    if endpoint == "messages":
        expect["stream"] = streaming
    case = _case(feature, endpoint, body, None, expect, _spec(endpoint, ()), title, _requires(endpoint, ""))
    return GeneratedCase(case, drawn.operation, True, field, "positive", validity, drawn.description)


def _negative(drawn: Drawn, validity: Validity, max_tokens: int) -> GeneratedCase | None:
    operation = drawn.operation
    endpoint = operation.endpoint
    raw_body: str | None = None
    body: Any = None
    if isinstance(drawn.body, bytes):
        raw_body = drawn.body.decode("latin-1")  # sent as its UTF-8 encoding, never as valid JSON
        field, rule = "body", "syntax"
        if operation.field or _parses_to_valid(raw_body, endpoint, validity):
            return None  # a field's value cannot be bytes: the body operation makes these
    elif operation.field:
        body, field, rule = _in_field(drawn, max_tokens)
    elif isinstance(drawn.body, dict):
        body, field, rule = _around_fields(drawn, max_tokens)
    else:
        body, field, rule = drawn.body, "body", "type"
    if raw_body is None and validity.request_valid(endpoint, body):
        return None
    feature = _feature(endpoint, field, rule)
    names = tuple(field.split(".")) if field != "body" else ()
    spec = "headers.content-type" if rule == "syntax" else _spec(endpoint, names, unknown=rule == "unknown-field")
    title = f"{_describe(drawn.description, field, rule)}: refused with a 4xx Anthropic error"
    case = _case(feature, endpoint, body, raw_body, {"status": "4xx"}, spec, title, _requires(endpoint, field))
    return GeneratedCase(case, operation, False, field, rule, validity, drawn.description)


def _in_field(drawn: Drawn, max_tokens: int) -> tuple[dict[str, Any], str, str]:
    """The drawn value as its field of the base request; the field path and the rule it breaks."""
    field = drawn.operation.field
    body = base_request(drawn.operation.endpoint, max_tokens)
    body[field] = copy.deepcopy(drawn.body)
    if field != "max_tokens" and body.get("max_tokens", 0) > max_tokens:
        body["max_tokens"] = max_tokens
    names = [field, *(part for part in drawn.path if isinstance(part, str))]
    keywords = sorted({RULE_NAMES.get(keyword, keyword) for keyword in drawn.keywords})
    return body, ".".join(names), "+".join(keywords) or drawn.operator or "invalid"


def _around_fields(drawn: Drawn, max_tokens: int) -> tuple[dict[str, Any], str, str]:
    """The base request without the required fields the draw lacks, with the unknown fields it
    has (the values of known fields are the field operations' business)."""
    body = base_request(drawn.operation.endpoint, max_tokens)
    request = canonical_request(drawn.operation.endpoint).value
    missing = [field for field in request.get("required", []) if field not in drawn.body]
    unknown = {key: value for key, value in drawn.body.items() if key not in request["properties"]}
    for field in missing:
        body.pop(field, None)
    body.update(copy.deepcopy(unknown))
    if missing:
        return body, missing[0], "missing"
    return body, "body", "unknown-field"


def _parses_to_valid(raw_body: str, endpoint: str, validity: Validity) -> bool:
    try:
        parsed = json.loads(raw_body)
    except ValueError:
        return False
    return validity.request_valid(endpoint, parsed)


def _feature(endpoint: str, field: str, rule: str) -> str:
    scope = "" if endpoint == "messages" else f"{endpoint}."
    return f"{PREFIX}.{scope}{field}.{rule}"


def _describe(description: str, field: str, rule: str) -> str:
    if rule == "syntax":
        return "a body that is not JSON"
    if rule == "missing":
        return f"{field} missing"
    if rule == "unknown-field":
        return "an unknown field"
    first = _LOCATION.sub("", description.splitlines()[0]) if description else ""
    return f"{field} {first}" if first.startswith("violates") else f"{field} breaks {rule}"


def _requires(endpoint: str, field: str) -> frozenset[str]:
    needed: frozenset[str] = frozenset({"count_tokens"}) if endpoint == "count_tokens" else frozenset()
    for prefix in sorted(FIELD_CAPABILITIES, key=len, reverse=True):
        if field == prefix or field.startswith(prefix + "."):
            return needed | FIELD_CAPABILITIES[prefix]
    return needed


def _case(
    feature: str,
    endpoint: str,
    body: Any,
    raw_body: str | None,
    expect: dict[str, Any],
    spec: str,
    title: str,
    requires: frozenset[str],
) -> Case:
    request = StepRequest(endpoint=endpoint, body=body, raw_body=raw_body)
    return Case(
        id=case_id(feature, body, raw_body),
        feature=feature,
        spec=spec,
        tier=TIER,
        steps=(Step(request=request, expect=expect),),
        title=title,
        requires=requires,
        generated=True,
    )


def _spec(endpoint: str, names: tuple[str, ...], unknown: bool = False) -> str:
    """The deepest clause (`x-clause`) of the canonical request on the way down to the field."""
    node: Any = canonical_request(endpoint).value
    found = node.get("x-clause", "")
    for name in names:
        node = _property(node, name, depth=8)
        if node is None:
            break
        node = _resolved(node)
        found = node.get("x-clause", found)
    if unknown and isinstance(node, dict):
        found = node.get("x-clause-additionalProperties", found)
    if endpoint == "count_tokens" and found.startswith("messages.request.required"):
        return "count_tokens.request"
    return found


def _resolved(node: Any) -> Any:
    for _ in range(16):
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            return node
        node = contract.document()["components"]["schemas"].get(node["$ref"].rsplit("/", 1)[-1])
    return node


def _property(node: Any, name: str, depth: int) -> Any:
    """The schema of property `name` inside `node`, looking through refs, items and branches."""
    node = _resolved(node)
    if depth <= 0 or not isinstance(node, dict):
        return None
    properties = node.get("properties")
    if isinstance(properties, dict) and name in properties:
        return properties[name]
    children = [node.get("items"), node.get("then")]
    for key in ("anyOf", "oneOf", "allOf"):
        children.extend(node.get(key) or [])
    for child in children:
        if child is not None:
            found = _property(child, name, depth - 1)
            if found is not None:
                return found
    return None
