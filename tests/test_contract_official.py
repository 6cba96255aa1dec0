"""Our canonical contract against Anthropic's published OpenAPI spec, and against the facts list.

The cross-check reads ../shared/reference/specs/anthropic/openapi.yaml and skips when it is
absent: every Messages and count_tokens request property, response property, stream event and
error property there is in our contract, with a type ours admits, and every value of a closed
enum there is a value ours knows. Where the docs and that spec disagree, ours follows the docs
(tested at the end). The coverage tests need no reference material.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import contract
from conformance.specs.compare import admitted_types
from conformance.specs.documents import root
from conformance.specs.fields import Field, contract_fields, lookup, schema_fields

OFFICIAL = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "specs" / "anthropic" / "openapi.yaml"
# official component -> ours, and the section both are flattened under.
PAIRS = [
    ("CreateMessageParams", "CreateMessageParams", "request"),
    ("CountMessageTokensParams", "CountTokensParams", "count_tokens.request"),
    ("Message", "Message", "response"),
    ("CountMessageTokensResponse", "CountTokensResponse", "count_tokens.response"),
    ("MessageStreamEvent", "StreamEvent", "stream"),
    ("ErrorResponse", "ErrorResponse", "error"),
]


@pytest.fixture(scope="module")
def official_root():
    if not OFFICIAL.is_file():
        pytest.skip(f"the official spec is not at {OFFICIAL}")
    return root(OFFICIAL)


def _problems(theirs: dict[str, Field], ours: dict[str, Field]) -> list[str]:
    problems = []
    for path, official in theirs.items():
        mine = lookup(ours, path, ours)
        if mine is None:
            problems.append(f"{path}: not in our contract ({official.describe()})")
            continue
        wanted, admitted = admitted_types(official.types), admitted_types(mine.types)
        if admitted is not None and (wanted is None or not wanted <= admitted):
            problems.append(f"{path}: official {official.describe()}, ours {mine.describe()}")
        if official.values is not None and not official.open:
            if mine.values is not None and not official.values <= mine.values:
                problems.append(f"{path}: values {sorted(official.values - mine.values)} unknown to ours")
            elif mine.values is None and len(official.values) > 1 and "string" in (admitted or {"string"}):
                problems.append(f"{path}: ours names none of {sorted(official.values)}")
    return problems


@pytest.mark.parametrize(("theirs", "ours", "prefix"), PAIRS, ids=[pair[0] for pair in PAIRS])
def test_every_official_property_and_enum_value_is_ours(official_root, theirs, ours, prefix):
    official = schema_fields(official_root.child("components", "schemas", theirs), prefix)
    mine = schema_fields(root(contract.contract_path()).child("components", "schemas", ours), prefix)
    assert len(official) > 1
    assert _problems(official, mine) == []


def test_the_cross_check_notices_a_missing_property_and_value(official_root):
    official = schema_fields(official_root.child("components", "schemas", "Message"), "response")
    mine = dict(schema_fields(root(contract.contract_path()).child("components", "schemas", "Message"), "response"))
    del mine["response.stop_sequence"]
    reasons = mine["response.stop_reason"]
    mine["response.stop_reason"] = Field(reasons.path, reasons.types, frozenset({"end_turn"}))
    problems = _problems(official, mine)
    assert any(p.startswith("response.stop_sequence: not in our contract") for p in problems)
    assert any(p.startswith("response.stop_reason: values") for p in problems)


def test_where_the_docs_win_over_the_official_spec(official_root):
    """anthropic-version required, request_too_large an error type, ping an event: as the docs say."""
    official = official_root.value
    version = next(
        p for p in official["paths"]["/v1/messages"]["post"]["parameters"] if p["name"] == "anthropic-version"
    )
    assert version.get("required") is not True
    assert "request_too_large" not in official["components"]["schemas"]["ErrorType"]["enum"]
    ours = contract_fields(contract.contract_path())
    assert ours["header.anthropic-version"].required
    assert "request_too_large" in contract.enum("ErrorType")
    assert "ping" in contract.discriminated_types("StreamEvent")


# --------------------------------------------------------------------------- the facts list

FACTS_REQUEST_FIELDS = {
    "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p", "top_k",
    "metadata", "service_tier", "thinking", "tool_choice", "tools", "cache_control", "output_config", "container",
    "inference_geo", "speed", "diagnostics", "user_profile_id", "workspace_id",
}  # fmt: skip
FACTS_REQUEST_BLOCKS = {
    "text", "image", "document", "search_result", "thinking", "redacted_thinking", "tool_use", "tool_result",
    "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
    "bash_code_execution_tool_result", "text_editor_code_execution_tool_result", "tool_search_tool_result",
    "container_upload",
}  # fmt: skip
FACTS_RESPONSE_BLOCKS = FACTS_REQUEST_BLOCKS - {"image", "document", "search_result", "tool_result"}
# Blocks only a `role: system` message carries (SDK 2.17.0, mid-conversation-tool-changes beta).
FACTS_SYSTEM_MESSAGE_BLOCKS = {"tool_addition", "tool_removal"}
FACTS_RESPONSE_FIELDS = {
    "id", "type", "role", "content", "model", "stop_reason", "stop_sequence", "stop_details", "usage", "container",
}  # fmt: skip
FACTS_STOP_REASONS = {
    "end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal", "model_context_window_exceeded",
    "compaction",
}  # fmt: skip
FACTS_USAGE = {
    "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation",
    "server_tool_use", "service_tier", "inference_geo", "output_tokens_details",
}  # fmt: skip
FACTS_DELTAS = {"text_delta", "input_json_delta", "thinking_delta", "signature_delta", "citations_delta"}
FACTS_EVENTS = {
    "message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta",
    "message_stop", "ping", "error",
}  # fmt: skip
FACTS_ERRORS = {
    "invalid_request_error", "authentication_error", "permission_error", "not_found_error", "request_too_large",
    "rate_limit_error", "api_error", "overloaded_error", "timeout_error", "billing_error",
}  # fmt: skip
FACTS_TOOLS = {
    "custom", "bash_20250124", "code_execution_20250522", "code_execution_20250825", "code_execution_20260120",
    "memory_20250818", "text_editor_20250124", "text_editor_20250429", "text_editor_20250728", "web_search_20250305",
    "web_search_20260209", "web_fetch_20250910", "web_fetch_20260209", "web_fetch_20260309",
    "tool_search_tool_bm25_20251119", "tool_search_tool_regex_20251119",
}  # fmt: skip
FACTS_REQUEST_HEADERS = {"anthropic-version", "anthropic-beta", "anthropic-user-profile-id"}
FACTS_RESPONSE_HEADERS = {"request-id", "anthropic-organization-id"} | {
    f"anthropic-ratelimit-{kind}-{part}"
    for kind in ("requests", "tokens", "input-tokens", "output-tokens")
    for part in ("limit", "remaining", "reset")
}
FACTS_ERROR_STATUS = {"400": "invalid_request_error", "401": "authentication_error", "403": "permission_error",
                      "404": "not_found_error", "413": "request_too_large", "429": "rate_limit_error",
                      "500": "api_error", "529": "overloaded_error"}  # fmt: skip


@pytest.fixture(scope="module")
def ours() -> dict[str, Field]:
    return contract_fields(contract.contract_path())


def _children(fields: dict[str, Field], prefix: str) -> set[str]:
    return {path[len(prefix) :] for path in fields if path.startswith(prefix) and "." not in path[len(prefix) :]}


def test_every_listed_request_and_response_field(ours):
    assert _children(ours, "request.") >= FACTS_REQUEST_FIELDS
    assert {"model", "messages", "system", "tools", "tool_choice", "thinking", "cache_control", "output_config"} <= (
        _children(ours, "count_tokens.request.")
    )
    assert _children(ours, "response.") >= FACTS_RESPONSE_FIELDS
    assert _children(ours, "response.usage.") >= FACTS_USAGE
    assert ours["count_tokens.response.input_tokens"].required


def test_every_listed_type(ours):
    assert ours["request.messages[].content[].type"].values == FACTS_REQUEST_BLOCKS | FACTS_SYSTEM_MESSAGE_BLOCKS
    assert ours["request.messages[].role"].values == {"user", "assistant", "system"}
    assert (ours["response.content[].type"].values or set()) >= FACTS_RESPONSE_BLOCKS
    assert set(contract.enum("StopReason")) == FACTS_STOP_REASONS
    assert contract.discriminated_types("ContentBlockDelta") == FACTS_DELTAS
    assert contract.discriminated_types("StreamEvent") == FACTS_EVENTS
    assert set(contract.enum("ErrorType")) == FACTS_ERRORS
    tools = {key for path in ours if path.startswith("request.tools[]<") for key in path[16:].split(">")[0].split("|")}
    assert tools >= FACTS_TOOLS


def test_every_listed_header_and_status(ours):
    assert _children(ours, "header.") >= FACTS_REQUEST_HEADERS
    assert ours["auth"].values == {"x-api-key", "bearer"}
    assert _children(ours, "response_header.") >= FACTS_RESPONSE_HEADERS
    status_map = contract.document()["components"]["schemas"]["ErrorType"]["x-status"]
    assert FACTS_ERROR_STATUS.items() <= status_map.items()
    assert set(status_map) <= (ours["errors.status"].values or set())
