"""Validation of the JSON bodies of POST /v1/messages and POST /v1/messages/count_tokens.

Both request schemas are closed (`additionalProperties: false`): an unknown field is refused
with `<field>: Extra inputs are not permitted`. The first problem found is reported as a 400
invalid_request_error, its message naming the field as the API does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from conformance.imports import first_import
from conformance.reference import fields as f
from conformance.reference.content import VERSION_WITHOUT_SAMPLING, ContentValidator, cache_control, known_fields
from conformance.reference.conversation import check_conversation

SUPPORTED_VERSIONS = ("2023-06-01", "2023-01-01", VERSION_WITHOUT_SAMPLING)
ROLES = ("user", "assistant", "system")
# The betas behind a system message's per-turn controls and its tool addition/removal blocks: the
# GA SystemMessageParam has neither (Claude Code sends each with its beta, and drops both on retry).
PER_TURN_CONTROL_BETA = "per-turn-control"
TOOL_CHANGES_BETA = "mid-conversation-tool-changes"

SAMPLING_FIELDS = ("temperature", "top_p", "top_k")
COMMON_OPTIONAL = (
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "cache_control",
    "context_management",
    "mcp_servers",
    "speed",
    "user_profile_id",
    "workspace_id",
)
MESSAGES_OPTIONAL = (
    *COMMON_OPTIONAL,
    "stop_sequences",
    "stream",
    *SAMPLING_FIELDS,
    "metadata",
    "service_tier",
    "container",
    "inference_geo",
    "diagnostics",
)
TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,128}$"
VERSIONED_TOOL_TYPE = re.compile(r"^[a-z][a-z0-9_]*_\d{8}$")
# Toolsets (browser_toolset_20260801, ...) are versioned tools without a `name`.
TOOLSET_TYPE = re.compile(r"^[a-z][a-z0-9_]*_toolset_\d{8}$")
CUSTOM_TOOL_OPTIONAL = (
    "type",
    "description",
    "cache_control",
    "strict",
    "eager_input_streaming",
    "allowed_callers",
    "defer_loading",
    "input_examples",
)
EFFORT_LEVELS = ("low", "medium", "high", "xhigh", "max")
SPEEDS = ("standard", "fast")
CLEAR_AT = ("next_user_message", "never")
THINKING_DISPLAY = ("summarized", "omitted")
MIN_THINKING_BUDGET = 1024
INVALID_SCHEMA = (
    "JSON schema is invalid - please consult https://json-schema.org or our documentation at "
    "https://docs.anthropic.com/en/docs/tool-use"
)
BUDGET_ABOVE_MAX_TOKENS = (
    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
)


@dataclass(frozen=True)
class RequestContext:
    """What the headers say about how to read the body."""

    version: str = "2023-06-01"
    betas: tuple[str, ...] = ()

    def has_beta(self, prefix: str) -> bool:
        """True when a beta of this family (any date) was sent."""
        return any(beta.startswith(prefix) for beta in self.betas)


def validate_messages_request(body: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    """Check a Messages body; returns it unchanged when it is valid."""
    optional = MESSAGES_OPTIONAL
    if context.version == VERSION_WITHOUT_SAMPLING:
        optional = tuple(name for name in optional if name not in SAMPLING_FIELDS)
    f.obj(body, "", ("model", "messages", "max_tokens"), optional)
    max_tokens = f.integer(body["max_tokens"], "max_tokens", ge=1)
    _validate_common(body, context)
    _validate_generation(body)
    budget = (body.get("thinking") or {}).get("budget_tokens")
    if budget is not None and budget >= max_tokens:
        f.fail("", BUDGET_ABOVE_MAX_TOKENS)
    check_conversation(body)
    return body


def validate_count_request(body: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    """Check a count_tokens body; returns it unchanged when it is valid."""
    f.obj(body, "", ("model", "messages"), COMMON_OPTIONAL)
    _validate_common(body, context)
    check_conversation(body)
    return body


def _validate_common(body: dict[str, Any], context: RequestContext) -> None:
    f.string(body["model"], "model", min_length=1)
    _validate_messages(body["messages"], context)
    if "system" in body:
        _validate_system(body["system"], context)
    tool_names = _validate_tools(body["tools"]) if "tools" in body else []
    if "tool_choice" in body:
        _validate_tool_choice(body["tool_choice"], tool_names)
    if "thinking" in body:
        _validate_thinking(body["thinking"], body.get("tool_choice"))
    if "output_config" in body:
        _validate_output_config(body["output_config"])
    cache_control(body.get("cache_control"), "cache_control")
    f.optional(body.get("speed"), f.literal, "speed", choices=SPEEDS)
    for name in ("user_profile_id", "workspace_id"):
        if name in body:
            f.string(body[name], name)
    f.optional(body.get("context_management"), f.open_obj, "context_management")
    if "mcp_servers" in body:
        for index, server in enumerate(f.array(body["mcp_servers"], "mcp_servers")):
            f.open_obj(server, f"mcp_servers.{index}")


def _validate_messages(value: Any, context: RequestContext) -> None:
    messages = f.array(value, "messages")
    if not messages:
        f.fail("messages", "at least one message is required")
    validator = ContentValidator(context.version)
    for index, message in enumerate(messages):
        location = f"messages.{index}"
        f.open_obj(message, location, ("role",))
        role = f.literal(message["role"], f.at(location, "role"), ROLES)
        if role == "system":
            _validate_system_message(message, location, validator, context)
            continue
        f.obj(message, location, ("role", "content"))
        content = message["content"]
        if not isinstance(content, (str, list)):
            f.fail(f.at(location, "content"), "Input should be a valid string or a list of content blocks")
        validator.message_content(content, f.at(location, "content"), role)
        if not content and not (role == "assistant" and index == len(messages) - 1):
            f.fail(location, "all messages must have non-empty content except for the optional final assistant message")


def _validate_system_message(
    message: dict[str, Any], location: str, validator: ContentValidator, context: RequestContext
) -> None:
    """A `role: system` message (GA): text applying from that turn on. With the per-turn-control
    beta it may carry `output_config` ({effort}) and `clear_at`, and then leave out content when
    output_config has a field (`{}` is accepted beside content); with the
    mid-conversation-tool-changes beta its content may hold tool addition/removal blocks."""
    controls = ("output_config", "clear_at") if context.has_beta(PER_TURN_CONTROL_BETA) else ()
    f.obj(message, location, ("role",), ("content", *controls))
    if message.get("output_config") is not None:
        config = f.obj(message["output_config"], f.at(location, "output_config"), (), ("effort",))
        f.optional(config.get("effort"), f.literal, f.at(location, "output_config.effort"), choices=EFFORT_LEVELS)
    f.optional(message.get("clear_at"), f.literal, f.at(location, "clear_at"), choices=CLEAR_AT)
    content = message.get("content")
    if content is not None:
        if not isinstance(content, (str, list)):
            f.fail(f.at(location, "content"), "Input should be a valid string or a list of content blocks")
        validator.system_message_content(content, f.at(location, "content"), context.has_beta(TOOL_CHANGES_BETA))
    if not content and not message.get("output_config"):
        f.fail(location, "a system message must have content or output_config fields")


def _validate_system(value: Any, context: RequestContext) -> None:
    if not isinstance(value, (str, list)):
        f.fail("system", "Input should be a valid string or a list of text blocks")
    ContentValidator(context.version).text_blocks(value, "system")


def _validate_generation(body: dict[str, Any]) -> None:
    """The fields only /v1/messages takes: stopping, streaming, sampling and service options."""
    if "stop_sequences" in body:
        for index, sequence in enumerate(f.array(body["stop_sequences"], "stop_sequences")):
            if not f.string(sequence, f"stop_sequences.{index}").strip():
                f.fail("stop_sequences", "each stop sequence must contain non-whitespace")
    if "stream" in body:
        f.boolean(body["stream"], "stream")
    for name in ("temperature", "top_p"):
        if name in body:
            f.number(body[name], name, ge=0, le=1)
    if "top_k" in body:
        f.integer(body["top_k"], "top_k", ge=0)
    if "metadata" in body:
        metadata = f.obj(body["metadata"], "metadata", (), ("user_id",))
        f.optional(metadata.get("user_id"), f.string, "metadata.user_id", max_length=512)
    if "service_tier" in body:
        f.literal(body["service_tier"], "service_tier", ("auto", "standard_only"))
    f.optional(body.get("inference_geo"), f.string, "inference_geo")
    if isinstance(body.get("container"), dict):
        container = f.obj(body["container"], "container", (), ("id", "skills"))
        f.optional(container.get("id"), f.string, "container.id")
        if container.get("skills") is not None:
            for index, skill in enumerate(f.array(container["skills"], "container.skills")):
                location = f"container.skills.{index}"
                f.obj(skill, location, ("type", "skill_id"), ("version",))
                f.literal(skill["type"], f.at(location, "type"), ("anthropic", "custom"))
                f.string(skill["skill_id"], f.at(location, "skill_id"))
                if "version" in skill:
                    f.string(skill["version"], f.at(location, "version"))
    else:
        f.optional(body.get("container"), f.string, "container")
    if body.get("diagnostics") is not None:
        diagnostics = f.obj(body["diagnostics"], "diagnostics", (), ("previous_message_id",))
        f.optional(diagnostics.get("previous_message_id"), f.string, "diagnostics.previous_message_id")


def _validate_tools(value: Any) -> list[str]:
    names: list[str] = []
    for index, tool in enumerate(f.array(value, "tools")):
        location = f"tools.{index}"
        if not isinstance(tool, dict):
            f.fail(location, "Input should be a valid dictionary")
        kind = tool.get("type")
        if kind is None or kind == "custom":
            _validate_custom_tool(tool, f.at(location, "custom"))
        elif isinstance(kind, str) and VERSIONED_TOOL_TYPE.match(kind):
            named = not TOOLSET_TYPE.match(kind)
            f.open_obj(tool, f.at(location, kind), ("name",) if named else ())
            if named:
                f.string(tool["name"], f.at(f.at(location, kind), "name"), min_length=1)
            cache_control(tool.get("cache_control"), f.at(f.at(location, kind), "cache_control"))
            known_fields("ToolDefinition")(tool, f.at(location, kind))
        else:
            f.fail(
                location,
                f"Input tag '{kind}' found using 'type' does not match any of the expected tags: "
                "'custom' or a versioned tool type such as 'web_search_20250305'",
            )
        if "name" in tool:
            names.append(tool["name"])
    if len(set(names)) != len(names):
        f.fail("tools", "Tool names must be unique.")
    return names


def _validate_custom_tool(tool: dict[str, Any], location: str) -> None:
    f.obj(tool, location, ("name", "input_schema"), CUSTOM_TOOL_OPTIONAL)
    f.string(tool["name"], f.at(location, "name"), pattern=TOOL_NAME_PATTERN)
    if "description" in tool:
        f.string(tool["description"], f.at(location, "description"))
    schema_location = f.at(location, "input_schema")
    schema = f.open_obj(tool["input_schema"], schema_location, ("type",))
    f.literal(schema["type"], f.at(schema_location, "type"), ("object",))
    f.optional(schema.get("properties"), f.open_obj, f.at(schema_location, "properties"))
    if schema.get("required") is not None:
        for index, name in enumerate(f.array(schema["required"], f.at(schema_location, "required"))):
            f.string(name, f.at(f.at(schema_location, "required"), index))
    _check_json_schema(schema, schema_location)
    for name in ("strict", "defer_loading"):
        if name in tool:
            f.boolean(tool[name], f.at(location, name))
    f.optional(tool.get("eager_input_streaming"), f.boolean, f.at(location, "eager_input_streaming"))
    if "allowed_callers" in tool:
        for index, caller in enumerate(f.array(tool["allowed_callers"], f.at(location, "allowed_callers"))):
            f.string(caller, f.at(f.at(location, "allowed_callers"), index))
    if "input_examples" in tool:
        for index, example in enumerate(f.array(tool["input_examples"], f.at(location, "input_examples"))):
            f.open_obj(example, f.at(f.at(location, "input_examples"), index))
    cache_control(tool.get("cache_control"), f.at(location, "cache_control"))


def _check_json_schema(schema: dict[str, Any], location: str) -> None:
    first_import("jsonschema")  # here: only requests with tools need it, and it is slow to import
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError:
        f.fail(location, INVALID_SCHEMA)


def _validate_tool_choice(value: Any, tool_names: list[str]) -> None:
    def parallel(choice: dict[str, Any], location: str) -> None:
        f.obj(choice, location, ("type",), ("disable_parallel_tool_use",))
        if "disable_parallel_tool_use" in choice:
            f.boolean(choice["disable_parallel_tool_use"], f.at(location, "disable_parallel_tool_use"))

    def named(choice: dict[str, Any], location: str) -> None:
        f.obj(choice, location, ("type", "name"), ("disable_parallel_tool_use",))
        f.string(choice["name"], f.at(location, "name"))
        if "disable_parallel_tool_use" in choice:
            f.boolean(choice["disable_parallel_tool_use"], f.at(location, "disable_parallel_tool_use"))

    def none(choice: dict[str, Any], location: str) -> None:
        f.obj(choice, location, ("type",))

    kind = f.tagged(value, "tool_choice", {"auto": parallel, "any": parallel, "tool": named, "none": none})
    if kind in ("any", "tool") and not tool_names:
        f.fail("tool_choice", "tool_choice may only be specified while providing tools.")
    if kind == "tool" and value["name"] not in tool_names:
        f.fail("tool_choice.tool.name", f"Tool '{value['name']}' not found in `tools`.")


def _validate_thinking(value: Any, tool_choice: Any) -> None:
    def enabled(config: dict[str, Any], location: str) -> None:
        f.obj(config, location, ("type", "budget_tokens"), ("display",))
        f.integer(config["budget_tokens"], f.at(location, "budget_tokens"), ge=MIN_THINKING_BUDGET)
        f.optional(config.get("display"), f.literal, f.at(location, "display"), choices=THINKING_DISPLAY)

    def adaptive(config: dict[str, Any], location: str) -> None:
        f.obj(config, location, ("type",), ("display",))
        f.optional(config.get("display"), f.literal, f.at(location, "display"), choices=THINKING_DISPLAY)

    def bare(config: dict[str, Any], location: str) -> None:
        f.obj(config, location, ("type",))

    kind = f.tagged(
        value, "thinking", {"enabled": enabled, "disabled": bare, "adaptive": adaptive, "between_tools": bare}
    )
    if kind != "disabled" and isinstance(tool_choice, dict) and tool_choice.get("type") in ("any", "tool"):
        f.fail("", "Thinking may not be enabled when tool_choice forces tool use.")


def _validate_output_config(value: Any) -> None:
    config = f.obj(value, "output_config", (), ("effort", "format"))
    f.optional(config.get("effort"), f.literal, "output_config.effort", choices=EFFORT_LEVELS)

    def json_schema(output_format: dict[str, Any], location: str) -> None:
        f.obj(output_format, location, ("type", "schema"))
        schema = f.open_obj(output_format["schema"], f.at(location, "schema"))
        _check_json_schema(schema, f.at(location, "schema"))

    if config.get("format") is not None:
        f.tagged(config["format"], "output_config.format", {"json_schema": json_schema})
