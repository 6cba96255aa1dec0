"""Validation of request content blocks: message content, system blocks and tool_result content.

Blocks are a union tagged by `type`. Each known type has its closed set of fields; an unknown
type is refused. Server-tool round-trip blocks (`server_tool_use`, `web_search_tool_result`, …)
are accepted as they come, since the reference server never produces them and only needs to
carry them. Rules that depend on the role of the message are checked here too.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from conformance import contract
from conformance.reference import fields as f

TOOL_ID_PATTERN = r"^[a-zA-Z0-9_-]+$"
TOOL_REFERENCE_PATTERN = r"^[a-zA-Z0-9_-]{1,256}$"
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
CITATION_TYPES = (
    "char_location",
    "page_location",
    "content_block_location",
    "web_search_result_location",
    "search_result_location",
)
SERVER_TOOL_BLOCKS = (
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "container_upload",
    "mcp_tool_use",
    "mcp_tool_result",
)
ASSISTANT_ONLY = ("tool_use", "thinking", "redacted_thinking", "server_tool_use", "mcp_tool_use")
USER_ONLY = ("tool_result",)
VERSION_WITHOUT_SAMPLING = "2026-10-21"


def cache_control(value: Any, location: str) -> None:
    """`{type: "ephemeral", ttl?: "5m"|"1h"}` or null."""
    if value is None:
        return
    f.tagged(value, location, {"ephemeral": _ephemeral})


def _ephemeral(value: dict[str, Any], location: str) -> None:
    f.obj(value, location, ("type",), ("ttl",))
    if "ttl" in value:
        f.literal(value["ttl"], f.at(location, "ttl"), ("5m", "1h"))


class ContentValidator:
    """Validates content blocks; `version` is the request's anthropic-version."""

    def __init__(self, version: str) -> None:
        self.version = version
        self._message_blocks = {
            "text": self._text,
            "image": self._image,
            "document": self._document,
            "search_result": self._search_result,
            "thinking": self._thinking,
            "redacted_thinking": self._redacted_thinking,
            "tool_use": self._tool_use,
            "tool_result": self._tool_result,
            **{name: known_fields("InputContentBlock") for name in SERVER_TOOL_BLOCKS},
        }
        self._tool_result_blocks = {
            "text": self._text,
            "image": self._image,
            "search_result": self._search_result,
            "document": self._document,
            "tool_reference": _tool_reference,
            "browser_state": _browser_state,
        }

    def message_content(self, content: Any, location: str, role: str) -> None:
        """The content of a user or assistant message: a string or a list of blocks."""
        if isinstance(content, str):
            return
        for index, block in enumerate(f.array(content, location)):
            block_location = f.at(location, index)
            kind = f.tagged(block, block_location, self._message_blocks)
            self._role_rules(block, kind, block_location, role)

    def text_blocks(self, content: Any, location: str) -> None:
        """A string or a list of text blocks (system prompts and system-role messages)."""
        if isinstance(content, str):
            return
        for index, block in enumerate(f.array(content, location)):
            f.tagged(block, f.at(location, index), {"text": self._text})

    def system_message_content(self, content: Any, location: str, tool_changes: bool) -> None:
        """A system message's content: a string or text blocks, and with `tool_changes` (its beta)
        tool_addition and tool_removal blocks."""
        if isinstance(content, str):
            return
        changes = {"tool_addition": _tool_change, "tool_removal": _tool_change} if tool_changes else {}
        for index, block in enumerate(f.array(content, location)):
            f.tagged(block, f.at(location, index), {"text": self._text, **changes})

    def _role_rules(self, block: dict[str, Any], kind: str, location: str, role: str) -> None:
        if role == "user" and kind in ASSISTANT_ONLY:
            f.fail(location, f"`{kind}` blocks can only be in `assistant` messages")
        if role == "assistant" and kind in USER_ONLY:
            f.fail(location, f"`{kind}` blocks can only be in `user` messages")
        if self.version == VERSION_WITHOUT_SAMPLING:
            if role == "assistant" and kind == "document":
                f.fail(location, f"`document` blocks are not allowed in `assistant` messages in {self.version}")
            if role == "user" and kind == "text" and block.get("citations"):
                f.fail(
                    f.at(location, "citations"), f"citations on `user` text blocks are not allowed in {self.version}"
                )

    def _text(self, block: dict[str, Any], location: str) -> None:
        f.obj(block, location, ("type", "text"), ("citations", "cache_control"))
        text = f.string(block["text"], f.at(location, "text"))
        area = location.split(".", 1)[0]
        if not text:
            f.fail(area, "text content blocks must be non-empty")
        if not text.strip():
            f.fail(area, "text content blocks must contain non-whitespace text")
        if block.get("citations") is not None:
            citations_location = f.at(location, "citations")
            for index, citation in enumerate(f.array(block["citations"], citations_location)):
                f.tagged(
                    citation,
                    f.at(citations_location, index),
                    {name: known_fields("Citation") for name in CITATION_TYPES},
                )
        cache_control(block.get("cache_control"), f.at(location, "cache_control"))

    def _image(self, block: dict[str, Any], location: str) -> None:
        f.obj(block, location, ("type", "source"), ("cache_control", "transformations"))
        f.tagged(block["source"], f.at(location, "source"), {"base64": _base64_image, "url": _url_source})
        cache_control(block.get("cache_control"), f.at(location, "cache_control"))
        f.optional(block.get("transformations"), f.open_obj, f.at(location, "transformations"))

    def _document(self, block: dict[str, Any], location: str) -> None:
        f.obj(block, location, ("type", "source"), ("title", "context", "citations", "cache_control"))
        sources = {"base64": _base64_pdf, "text": _plain_text, "content": self._content_source, "url": _url_source}
        f.tagged(block["source"], f.at(location, "source"), sources)
        f.optional(block.get("title"), f.string, f.at(location, "title"), min_length=1, max_length=500)
        f.optional(block.get("context"), f.string, f.at(location, "context"), min_length=1)
        f.optional(block.get("citations"), _citations_config, f.at(location, "citations"))
        cache_control(block.get("cache_control"), f.at(location, "cache_control"))

    def _content_source(self, source: dict[str, Any], location: str) -> None:
        f.obj(source, location, ("type", "content"))
        content = source["content"]
        if isinstance(content, str):
            return
        for index, block in enumerate(f.array(content, f.at(location, "content"))):
            f.tagged(block, f.at(f.at(location, "content"), index), {"text": self._text, "image": self._image})

    def _search_result(self, block: dict[str, Any], location: str) -> None:
        f.obj(block, location, ("type", "source", "title", "content"), ("citations", "cache_control"))
        f.string(block["source"], f.at(location, "source"))
        f.string(block["title"], f.at(location, "title"))
        content_location = f.at(location, "content")
        for index, item in enumerate(f.array(block["content"], content_location)):
            f.tagged(item, f.at(content_location, index), {"text": self._text})
        if "citations" in block:
            _citations_config(block["citations"], f.at(location, "citations"))
        cache_control(block.get("cache_control"), f.at(location, "cache_control"))

    def _thinking(self, block: dict[str, Any], location: str) -> None:
        f.obj(block, location, ("type", "thinking", "signature"))
        f.string(block["thinking"], f.at(location, "thinking"))
        f.string(block["signature"], f.at(location, "signature"))

    def _redacted_thinking(self, block: dict[str, Any], location: str) -> None:
        f.obj(block, location, ("type", "data"))
        f.string(block["data"], f.at(location, "data"))

    def _tool_use(self, block: dict[str, Any], location: str) -> None:
        f.obj(block, location, ("type", "id", "name", "input"), ("cache_control", "caller", "toolset_name"))
        f.string(block["id"], f.at(location, "id"), pattern=TOOL_ID_PATTERN)
        f.string(block["name"], f.at(location, "name"), min_length=1, max_length=200)
        if not isinstance(block["input"], dict):
            f.fail(f.at(location, "input"), "Input should be a valid dictionary")
        f.optional(block.get("caller"), _caller, f.at(location, "caller"))
        f.optional(block.get("toolset_name"), f.string, f.at(location, "toolset_name"))
        cache_control(block.get("cache_control"), f.at(location, "cache_control"))

    def _tool_result(self, block: dict[str, Any], location: str) -> None:
        f.obj(block, location, ("type", "tool_use_id"), ("content", "is_error", "cache_control", "toolset_name"))
        f.optional(block.get("toolset_name"), f.string, f.at(location, "toolset_name"))
        f.string(block["tool_use_id"], f.at(location, "tool_use_id"), pattern=TOOL_ID_PATTERN)
        content = block.get("content")
        if content is not None and not isinstance(content, str):
            content_location = f.at(location, "content")
            for index, item in enumerate(f.array(content, content_location)):
                f.tagged(item, f.at(content_location, index), self._tool_result_blocks)
        if "is_error" in block:
            f.boolean(block["is_error"], f.at(location, "is_error"))
        cache_control(block.get("cache_control"), f.at(location, "cache_control"))


def known_fields(schema: str) -> Callable[[dict[str, Any], str], None]:
    """A check of something sent back as the API answered it or documents it (citations,
    server-tool blocks, versioned tools): its known fields must have the types and bounds of the
    contract's `schema`; keys the contract does not know pass."""

    def check(value: dict[str, Any], location: str) -> None:
        problems = contract.validate(schema, value)
        if problems:
            first = problems[0]
            f.fail(f"{location}.{first.path}" if first.path else location, first.message)

    return check


def _citations_config(value: Any, location: str) -> None:
    f.obj(value, location, (), ("enabled",))
    if "enabled" in value:
        f.boolean(value["enabled"], f.at(location, "enabled"))


def _caller(value: Any, location: str) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        f.fail(location, "Input should be a valid dictionary with a string `type`")


def _tool_change(block: dict[str, Any], location: str) -> None:
    """tool_addition / tool_removal: `tool` references (or defines) the tool, by its own `type`."""
    f.obj(block, location, ("type", "tool"), ("cache_control",))
    f.open_obj(block["tool"], f.at(location, "tool"), ("type",))
    cache_control(block.get("cache_control"), f.at(location, "cache_control"))


def _browser_state(block: dict[str, Any], location: str) -> None:
    """What a browser toolset reports back in a tool_result: carried as sent (its `tabs` required)."""
    f.open_obj(block, location, ("type", "tabs"))
    cache_control(block.get("cache_control"), f.at(location, "cache_control"))


def _tool_reference(block: dict[str, Any], location: str) -> None:
    f.obj(block, location, ("type", "tool_name"), ("cache_control",))
    f.string(block["tool_name"], f.at(location, "tool_name"), pattern=TOOL_REFERENCE_PATTERN)
    cache_control(block.get("cache_control"), f.at(location, "cache_control"))


def _base64_image(source: dict[str, Any], location: str) -> None:
    f.obj(source, location, ("type", "media_type", "data"))
    media_type = f.literal(source["media_type"], f.at(location, "media_type"), IMAGE_MEDIA_TYPES)
    raw = _decoded(f.string(source["data"], f.at(location, "data")), f.at(location, "data"))
    actual = sniff_image(raw)
    if actual is None:
        f.fail(location, "Could not process image")
    if actual != media_type:
        f.fail(location, f"Image does not match the provided media type {media_type}")


def _base64_pdf(source: dict[str, Any], location: str) -> None:
    f.obj(source, location, ("type", "media_type", "data"))
    f.literal(source["media_type"], f.at(location, "media_type"), ("application/pdf",))
    raw = _decoded(f.string(source["data"], f.at(location, "data")), f.at(location, "data"))
    if not raw.startswith(b"%PDF-"):
        f.fail(location, "The PDF specified was not valid.")


def _decoded(data: str, location: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        f.fail(location, "Input should be valid base64 data")


# The signature bytes each supported image format starts with.
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image(raw: bytes) -> str | None:
    """The media type the image bytes are in (by their signature), or None when they are no supported image."""
    for signature, media_type in _IMAGE_SIGNATURES:
        if raw.startswith(signature):
            return media_type
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return None


def _plain_text(source: dict[str, Any], location: str) -> None:
    f.obj(source, location, ("type", "media_type", "data"))
    f.literal(source["media_type"], f.at(location, "media_type"), ("text/plain",))
    f.string(source["data"], f.at(location, "data"))


def _url_source(source: dict[str, Any], location: str) -> None:
    """A URL the API would download; the reference server never fetches it, it only checks the scheme."""
    f.obj(source, location, ("type", "url"))
    url = f.string(source["url"], f.at(location, "url"), min_length=1)
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        f.fail(f.at(location, "url"), "Input should be a valid URL with an http or https scheme")
