"""Deterministic token counting, shared by usage and count_tokens so both always agree.

A token is one match of `\\w+|[^\\w\\s]`: a run of word characters, or one punctuation character.
Whitespace is free. Structured parts cost their compact JSON, counted the same way, and binary
parts (images, PDFs) a fixed base plus one token per `BYTES_PER_TOKEN` characters of base64.
docs/reference/reference-server.md lists every constant below.
"""

from __future__ import annotations

import json
import re
from typing import Any

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")

REQUEST_OVERHEAD = 1
MESSAGE_OVERHEAD = 3
SYSTEM_OVERHEAD = 3
TOOLS_OVERHEAD = 10
TOOL_RESULT_OVERHEAD = 2
OUTPUT_FORMAT_OVERHEAD = 5
IMAGE_BASE = 85
DOCUMENT_BASE = 100
BYTES_PER_TOKEN = 750
REDACTED_THINKING_TOKENS = 16


def count_text(text: str) -> int:
    return len(TOKEN_PATTERN.findall(text))


def count_json(value: Any) -> int:
    return count_text(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def truncate_text(text: str, limit: int) -> str:
    """The prefix of `text` holding its first `limit` tokens (whitespace between them kept)."""
    if limit <= 0:
        return ""
    for index, match in enumerate(TOKEN_PATTERN.finditer(text), start=1):
        if index == limit:
            return text[: match.end()]
    return text


def count_input(params: dict[str, Any]) -> int:
    """input_tokens of a validated request (Messages or count_tokens: the same parts are counted)."""
    total = REQUEST_OVERHEAD
    system = params.get("system")
    if system:
        total += SYSTEM_OVERHEAD + _count_content(system)
    for message in params["messages"]:
        total += MESSAGE_OVERHEAD + _count_content(message.get("content") or [])
    tools = params.get("tools") or []
    if tools:
        total += TOOLS_OVERHEAD + sum(count_json(_without_cache_control(tool)) for tool in tools)
    output_format = (params.get("output_config") or {}).get("format")
    if output_format:
        total += OUTPUT_FORMAT_OVERHEAD + count_json(output_format["schema"])
    return total


def count_output_block(block: dict[str, Any]) -> int:
    """output tokens of one generated block (an omitted thinking text is billed by its producer)."""
    kind = block["type"]
    if kind == "text":
        return count_text(block["text"])
    if kind == "thinking":
        return count_text(block["thinking"])
    if kind == "redacted_thinking":
        return REDACTED_THINKING_TOKENS
    return count_text(block["name"]) + count_json(block["input"])


def _without_cache_control(value: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if key != "cache_control"}


def _count_content(content: str | list[dict[str, Any]]) -> int:
    if isinstance(content, str):
        return count_text(content)
    return sum(_count_block(block) for block in content)


def _count_block(block: dict[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        return count_text(block["text"])
    if kind == "image":
        return IMAGE_BASE + _count_source(block["source"])
    if kind == "document":
        extras = count_text(block.get("title") or "") + count_text(block.get("context") or "")
        return _count_document_source(block["source"]) + extras
    if kind == "search_result":
        return count_text(block["source"]) + count_text(block["title"]) + _count_content(block["content"])
    if kind == "thinking":
        return count_text(block["thinking"])
    if kind == "redacted_thinking":
        return REDACTED_THINKING_TOKENS
    if kind == "tool_use":
        return count_text(block["name"]) + count_json(block["input"])
    if kind == "tool_result":
        return TOOL_RESULT_OVERHEAD + _count_content(block.get("content") or [])
    if kind == "tool_reference":
        return count_text(block["tool_name"])
    return count_json(_without_cache_control(block))


def _count_source(source: dict[str, Any]) -> int:
    if source["type"] == "base64":
        return len(source["data"]) // BYTES_PER_TOKEN
    return count_text(source.get("url", ""))


def _count_document_source(source: dict[str, Any]) -> int:
    kind = source["type"]
    if kind == "text":
        return count_text(source["data"])
    if kind == "content":
        return _count_content(source["content"])
    return DOCUMENT_BASE + _count_source(source)
