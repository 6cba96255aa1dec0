"""The contract file (specs/anthropic/openapi.yaml) and its loader."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from conformance import contract
from conformance.checks import CHECKS

CHECKS_DIR = Path(contract.__file__).parent / "checks"
OFFICIAL_SPEC = (
    Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "specs" / "anthropic" / "openapi.yaml"
)

REQUIRED_CLAUSES = [
    "messages.request.required",
    "messages.request.model",
    "messages.request.max_tokens",
    "messages.request.messages",
    "messages.request.role",
    "messages.request.content",
    "messages.request.system",
    "messages.request.stop_sequences",
    "messages.request.sampling",
    "messages.request.metadata",
    "messages.request.tools",
    "messages.request.tool_choice",
    "messages.request.tool_result",
    "messages.request.image",
    "messages.request.thinking",
    "messages.request.unknown-field",
    "messages.response.message",
    "messages.response.content",
    "messages.response.stop_reason",
    "messages.response.usage",
    "stream.format",
    "stream.order",
    "stream.block-lifecycle",
    "stream.delta-type",
    "stream.no-done-sentinel",
    "stream.ping",
    "stream.error-event",
    "stream.unknown-events",
    "stream.tool-input",
    "stream.thinking-signature",
    "stream.reassembly",
    "count_tokens.request",
    "count_tokens.response",
    "errors.envelope",
    "errors.status-map",
    "headers.anthropic-version",
    "headers.auth",
    "headers.request-id",
    "headers.content-type",
]

REQUIRED_SCHEMAS = [
    "Message",
    "ContentBlock",
    "TextBlock",
    "ThinkingBlock",
    "RedactedThinkingBlock",
    "ToolUseBlock",
    "ServerToolUseBlock",
    "WebSearchToolResultBlock",
    "Citation",
    "CharLocationCitation",
    "PageLocationCitation",
    "ContentBlockLocationCitation",
    "WebSearchResultLocationCitation",
    "SearchResultLocationCitation",
    "Usage",
    "MessageDeltaUsage",
    "StopReason",
    "StreamEvent",
    "MessageStartEvent",
    "ContentBlockStartEvent",
    "ContentBlockDeltaEvent",
    "ContentBlockDelta",
    "ContentBlockStopEvent",
    "MessageDeltaEvent",
    "MessageStopEvent",
    "PingEvent",
    "ErrorEvent",
    "ErrorResponse",
    "ErrorType",
    "CountTokensResponse",
    "CreateMessageParams",
    "CountTokensParams",
]


def _walk(node: Any, path: str = ""):
    """Every (path, dict) in the document."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for position, value in enumerate(node):
            yield from _walk(value, f"{path}/{position}")


# --------------------------------------------------------------------------- the document


def test_the_document_is_openapi_3_2_with_both_operations_and_a_described_stream():
    document = contract.document()
    assert document["openapi"].startswith("3.2")
    assert document["paths"]["/v1/messages"]["post"]["operationId"] == "messages_post"
    assert document["paths"]["/v1/messages/count_tokens"]["post"]["operationId"] == "messages_count_tokens_post"
    stream = document["paths"]["/v1/messages"]["post"]["responses"]["200"]["content"]["text/event-stream"]
    assert stream["itemSchema"] == {"$ref": "#/components/schemas/StreamItem"}


def test_each_stream_event_has_its_own_item_description():
    """The SSE item schema names the payload schema of every known event (OpenAPI 3.2 itemSchema)."""
    item = contract.document()["components"]["schemas"]["StreamItem"]
    described = {
        branch["if"]["properties"]["event"]["const"]: branch["then"]["properties"]["data"]["contentSchema"]["$ref"]
        for branch in item["allOf"]
    }
    assert set(described) == contract.discriminated_types("StreamEvent")
    for event, ref in described.items():
        payload = contract.document()["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert payload["properties"]["type"]["const"] == event


def test_every_clause_the_cases_use_exists():
    assert set(REQUIRED_CLAUSES) <= contract.clause_ids()


def test_every_clause_is_complete():
    for clause_id in contract.clause_ids():
        entry = contract.clause(clause_id)
        assert {"title", "text", "source"} <= set(entry), clause_id
        assert entry["source"].startswith("https://"), clause_id
        assert entry["text"].strip(), clause_id


def test_every_clause_reference_in_the_document_exists():
    ids = contract.clause_ids()
    for path, node in _walk({key: value for key, value in contract.document().items() if key != "x-clauses"}):
        for key, value in node.items():
            if key.startswith("x-clause"):
                assert value in ids, f"{path}/{key}: {value}"


def test_every_clause_the_checks_cite_exists():
    """String literals in the checks that look like clause ids are clause ids (or check names)."""
    prefixes = ("messages.", "stream.", "count_tokens.", "errors.", "headers.")
    known = contract.clause_ids() | set(CHECKS)
    cited = set()
    for source in CHECKS_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and value.startswith(prefixes) and " " not in value:
                cited.add(value)
    assert cited, "the scan found nothing"
    assert cited <= known, cited - known


def test_the_schemas_the_checks_need_exist_and_are_valid_json_schema():
    assert set(REQUIRED_SCHEMAS) <= contract.schema_names()
    for name in contract.schema_names():
        Draft202012Validator.check_schema(contract.document()["components"]["schemas"][name])


def test_all_refs_resolve():
    schemas = contract.schema_names()
    for path, node in _walk(contract.document()):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            assert ref.removeprefix("#/components/schemas/") in schemas, f"{path}: {ref}"


def _reachable(*roots: str) -> set[str]:
    """The component schemas reachable from the named ones through $refs."""
    schemas = contract.document()["components"]["schemas"]
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for _, node in _walk(schemas[name]):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                pending.append(ref.removeprefix("#/components/schemas/"))
    return seen


def test_responses_never_forbid_unknown_properties():
    """Forward compatibility: additionalProperties/unevaluatedProperties false belong to request schemas only."""
    responses = _reachable("Message", "StreamEvent", "StreamItem", "ErrorResponse", "CountTokensResponse")
    assert {"TextBlock", "WebFetchToolResultBlock", "ErrorObject"} <= responses
    for name in responses:
        for path, node in _walk(contract.document()["components"]["schemas"][name], name):
            assert node.get("additionalProperties") is not False, path
            assert node.get("unevaluatedProperties") is not False, path


def test_requests_are_strict():
    """Every request block and tool definition refuses unknown properties, as the API does."""
    schemas = contract.document()["components"]["schemas"]
    for name in _reachable("CreateMessageParams") - _reachable("Message", "StreamEvent", "ErrorResponse"):
        schema = schemas[name]
        types = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
        if "object" in types and "properties" in schema and name not in ("ToolOptions", "ToolChoice"):
            closed = schema.get("additionalProperties") is False or schema.get("unevaluatedProperties") is False
            assert closed or (
                "allOf" in schema and name in ("InputContentBlock", "ToolDefinition", "ThinkingConfig")
            ), name


def test_request_too_large_and_newer_stop_reasons_are_in_the_enums():
    assert "request_too_large" in contract.enum("ErrorType")
    assert {"pause_turn", "refusal", "model_context_window_exceeded"} <= set(contract.enum("StopReason"))


# --------------------------------------------------------------------------- the loader


def test_validators_are_compiled_once():
    assert contract._validator("Message") is contract._validator("Message")


def test_unknown_schema_and_clause_names_raise():
    with pytest.raises(KeyError):
        contract.validate("NoSuchSchema", {})
    with pytest.raises(KeyError):
        contract.clause("no.such.clause")


def test_schema_clause():
    assert contract.schema_clause("Message") == "messages.response.message"
    assert contract.schema_clause("ErrorObject") == ""


def test_problems_have_a_readable_path_and_the_deepest_clause():
    message = {"id": "m", "type": "message", "role": "assistant", "model": "x", "stop_reason": "end_turn",
               "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1},
               "content": [{"type": "text", "text": 5}]}  # fmt: skip
    [problem] = contract.validate("Message", message)
    assert str(problem) == "content[0].text: 5 is not of type 'string'"
    assert problem.at("body") == "body.content[0].text: 5 is not of type 'string'"
    assert problem.clause == "messages.response.content"


def test_keyword_specific_clauses():
    body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "n": 2}
    [problem] = contract.validate("CreateMessageParams", body)
    assert problem.clause == "messages.request.unknown-field"
    assert problem.message == "Additional properties are not allowed ('n' was unexpected)"


def _user(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


BMP_IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "Qk0="}}


@pytest.mark.parametrize(
    ("change", "clause"),
    [
        ({"max_tokens": None}, "messages.request.required"),
        ({"model": ""}, "messages.request.model"),
        ({"max_tokens": "64"}, "messages.request.max_tokens"),
        ({"messages": []}, "messages.request.messages"),
        ({"messages": [{"role": "wizard", "content": "Hi"}]}, "messages.request.role"),
        ({"messages": _user({"type": "text", "text": ""})}, "messages.request.content"),
        ({"system": 5}, "messages.request.system"),
        ({"stop_sequences": "###"}, "messages.request.stop_sequences"),
        ({"temperature": 1.5}, "messages.request.sampling"),
        ({"metadata": {"user_id": "u", "email": "e"}}, "messages.request.metadata"),
        ({"tools": [{"name": "bad name", "input_schema": {"type": "object"}}]}, "messages.request.tools"),
        ({"tool_choice": {"type": "tool"}}, "messages.request.tool_choice"),
        ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "messages.request.thinking"),
        ({"messages": _user({"type": "tool_result"})}, "messages.request.tool_result"),
        ({"messages": _user(BMP_IMAGE)}, "messages.request.image"),
    ],
)  # fmt: skip
def test_request_rules_cite_their_clauses(change, clause):
    """Each request rule, broken alone, yields exactly one problem citing its clause."""
    body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
    body.update(change)
    body = {key: value for key, value in body.items() if value is not None}
    problems = contract.validate("CreateMessageParams", body)
    assert [problem.clause for problem in problems] == [clause], problems


def test_count_tokens_params_reject_messages_only_fields():
    body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
    [problem] = contract.validate("CountTokensParams", body)
    assert problem.clause == "count_tokens.request"


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ("StreamEvent", {"type": "content_block_annotation", "whatever": [1]}),
        ("ContentBlockDelta", {"type": "compaction_delta", "content": "summary"}),
        ("ContentBlock", {"type": "advisor_tool_result", "tool_use_id": "srvtoolu_1", "content": {}}),
        ("Citation", {"type": "video_location", "cited_text": "x", "start_second": 3}),
        ("Usage", {"input_tokens": 1, "output_tokens": 2, "iterations": [{"type": "compaction"}], "new_counter": 3}),
    ],
)
def test_unknown_types_and_keys_validate(schema, instance):
    assert contract.validate(schema, instance) == []


# --------------------------------------------------------------------------- against the official spec


@pytest.fixture(scope="module")
def official() -> dict[str, Any]:
    if not OFFICIAL_SPEC.is_file():
        pytest.skip(f"the official spec is not at {OFFICIAL_SPEC}")
    return json.loads(OFFICIAL_SPEC.read_text(encoding="utf-8"))["components"]["schemas"]


def _props(schema: dict[str, Any]) -> set[str]:
    return set(schema.get("properties", {}))


def test_our_enums_cover_the_official_ones(official):
    assert set(official["StopReason"]["enum"]) <= set(contract.enum("StopReason"))
    assert set(official["ErrorType"]["enum"]) <= set(contract.enum("ErrorType"))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("Message", "Message"),
        ("Usage", "Usage"),
        ("MessageDeltaUsage", "MessageDeltaUsage"),
        ("CreateMessageParams", "CreateMessageParams"),
        ("CountTokensParams", "CountMessageTokensParams"),
        ("CountTokensResponse", "CountMessageTokensResponse"),
    ],
)
def test_we_define_every_official_property(official, ours, theirs):
    assert _props(official[theirs]) <= _props(contract.document()["components"]["schemas"][ours])


def test_we_know_the_official_content_block_and_event_types(official):
    block_types = set(official["ContentBlock"]["discriminator"]["mapping"])
    event_types = set(official["MessageStreamEvent"]["discriminator"]["mapping"])
    delta_types = set(official["ContentBlockDeltaEvent"]["properties"]["delta"]["discriminator"]["mapping"])
    # Our response schemas name the common block types and tolerate the rest.
    assert contract.discriminated_types("ContentBlock") <= block_types
    assert event_types <= contract.discriminated_types("StreamEvent")
    assert delta_types == contract.discriminated_types("ContentBlockDelta")
