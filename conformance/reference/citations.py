"""Citations: the scripted model's cited answer when the prompt carries sources with citations enabled.

The API numbers sources across the whole request: `document_index` counts document blocks and
`search_result_index` counts search_result blocks (those inside tool_result content too), in
order. The scripted model cites the first sentence of the first citable source of the last user
message, with the citation type that source takes:

- a document with a text source: char_location; its cited_text runs on over the whitespace after the
  sentence, as the API's does;
- a document with a content source: content_block_location of its first text block;
- a PDF document (base64 or url): page_location of page 1, citing the text a simple PDF page shows;
- a search_result: search_result_location of its first text block.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any

from conformance.reference.conversation import blocks

_SENTENCE = re.compile(r"\S.*?(?:[.!?](?=\s|$)|$)\s*", re.DOTALL)
# Text shown by a PDF content stream: `(text) Tj` in an uncompressed stream.
_PDF_TEXT = re.compile(rb"\(((?:[^()\\]|\\.)*)\)\s*Tj")
NO_TEXT = "The cited page."


def _sources(messages: list[dict[str, Any]]) -> Iterator[tuple[int, str, int, dict[str, Any]]]:
    """(message index, kind, index among sources of that kind, block) for every document and search result."""
    counters = {"document": 0, "search_result": 0}
    for position, message in enumerate(messages):
        if message["role"] == "system":
            continue
        for block in blocks(message):
            inner = block.get("content") if block["type"] == "tool_result" else None
            for item in [block, *(inner if isinstance(inner, list) else [])]:
                kind = item.get("type")
                if kind in counters:
                    yield position, kind, counters[kind], item
                    counters[kind] += 1


def cited_block(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A text block citing the first citable source of the last user message, or None when it has none."""
    last_user = max((i for i, message in enumerate(messages) if message["role"] == "user"), default=None)
    for position, kind, index, block in _sources(messages):
        if position != last_user or not (block.get("citations") or {}).get("enabled"):
            continue
        citation = _search_result(block, index) if kind == "search_result" else _document(block, index)
        text = citation["cited_text"].strip() or NO_TEXT
        return {"type": "text", "text": text, "citations": [citation]}
    return None


def _first_sentence(text: str) -> tuple[int, int]:
    match = _SENTENCE.search(text)
    return (match.start(), match.end()) if match else (0, len(text))


def _document(block: dict[str, Any], index: int) -> dict[str, Any]:
    source = block["source"]
    common = {"document_index": index, "document_title": block.get("title")}
    if source["type"] == "text":
        start, end = _first_sentence(source["data"])
        return {"type": "char_location", "cited_text": source["data"][start:end], **common, "start_char_index": start,
                "end_char_index": end}  # fmt: skip
    if source["type"] == "content":
        content = source["content"]
        items = [{"type": "text", "text": content}] if isinstance(content, str) else content
        first = next((i for i, item in enumerate(items) if item["type"] == "text"), 0)
        cited = items[first].get("text", "") if items else ""
        return {"type": "content_block_location", "cited_text": cited, **common, "start_block_index": first,
                "end_block_index": first + 1}  # fmt: skip
    return {"type": "page_location", "cited_text": _pdf_text(source), **common, "start_page_number": 1,
            "end_page_number": 2}  # fmt: skip


def _search_result(block: dict[str, Any], index: int) -> dict[str, Any]:
    texts = [item["text"] for item in block["content"]]
    return {
        "type": "search_result_location",
        "cited_text": texts[0] if texts else "",
        "search_result_index": index,
        "source": block["source"],
        "title": block["title"],
        "start_block_index": 0,
        "end_block_index": 1,
    }


def _pdf_text(source: dict[str, Any]) -> str:
    """The text a simple PDF shows (what `(…) Tj` operators draw); "" for URLs and compressed PDFs."""
    if source["type"] != "base64":
        return ""
    try:
        raw = base64.b64decode(source["data"], validate=True)
    except (binascii.Error, ValueError):
        return ""
    pieces = [re.sub(rb"\\(.)", rb"\1", match.group(1)).decode("latin-1") for match in _PDF_TEXT.finditer(raw)]
    return " ".join(piece.strip() for piece in pieces if piece.strip())
