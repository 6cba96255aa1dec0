"""Rebuild the final Message from a stream of events, the way the official SDKs accumulate it.

Used by the runner (a later step of a case can reuse what a streamed step returned) and by the
reassembly check. It never raises: what it cannot apply is returned as a list of problems.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from conformance.model import Response, SSEEvent

_DELTA_FIELDS = {
    "text_delta": ("text", "text"),
    "thinking_delta": ("thinking", "thinking"),
}


@dataclass
class Accumulated:
    """The rebuilt message (None when no message_start was seen) and what did not fit."""

    message: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    # Concatenated input_json_delta text per block index, as sent.
    partial_json: dict[int, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None


def accumulate(events: list[SSEEvent]) -> Accumulated:
    """Fold the events into a Message dict; unknown events and pings are skipped."""
    result = Accumulated(message=None)
    blocks: dict[int, dict[str, Any]] = {}
    for event in events:
        data = event.json
        if not isinstance(data, dict):
            continue
        kind = data.get("type")
        if kind == "message_start" and isinstance(data.get("message"), dict):
            if result.message is None:
                result.message = copy.deepcopy(data["message"])
        elif kind == "content_block_start":
            index, block = data.get("index"), data.get("content_block")
            if isinstance(index, int) and isinstance(block, dict):
                blocks[index] = copy.deepcopy(block)
        elif kind == "content_block_delta":
            _apply_delta(result, blocks, data)
        elif kind == "content_block_stop":
            _finish_block(result, blocks, data.get("index"))
        elif kind == "message_delta" and result.message is not None:
            delta = data.get("delta")
            if isinstance(delta, dict):
                result.message.update(delta)
            usage = data.get("usage")
            if isinstance(usage, dict):
                merged = dict(result.message.get("usage") or {})
                merged.update({key: value for key, value in usage.items() if value is not None})
                result.message["usage"] = merged
        elif kind == "error":
            result.error = data.get("error") if isinstance(data.get("error"), dict) else data
    if result.message is not None:
        result.message["content"] = [blocks[i] for i in sorted(blocks)]
    return result


def _apply_delta(result: Accumulated, blocks: dict[int, dict[str, Any]], data: dict[str, Any]) -> None:
    index, delta = data.get("index"), data.get("delta")
    if not isinstance(delta, dict):
        result.problems.append(f"content_block_delta at index {index} has no delta object")
        return
    block = blocks.get(index) if isinstance(index, int) else None
    if block is None:
        result.problems.append(f"content_block_delta for index {index}, which was never started")
        return
    kind = delta.get("type")
    if kind in _DELTA_FIELDS:
        source, target = _DELTA_FIELDS[kind]
        piece = delta.get(source)
        if isinstance(piece, str):
            block[target] = (block.get(target) or "") + piece
    elif kind == "input_json_delta":
        piece = delta.get("partial_json")
        if isinstance(piece, str):
            result.partial_json[index] = result.partial_json.get(index, "") + piece
    elif kind == "signature_delta":
        if isinstance(delta.get("signature"), str):
            block["signature"] = delta["signature"]
    elif kind == "citations_delta":
        block.setdefault("citations", None)
        block["citations"] = (block["citations"] or []) + [delta.get("citation")]


def _finish_block(result: Accumulated, blocks: dict[int, dict[str, Any]], index: Any) -> None:
    if not isinstance(index, int) or index not in blocks:
        return
    text = result.partial_json.get(index)
    if text is None or text == "":
        return
    try:
        blocks[index]["input"] = json.loads(text)
    except ValueError as exc:
        result.problems.append(
            f"block {index}: the concatenated partial_json is not valid JSON ({exc}): {text[:200]!r}"
        )


def final_message(response: Response | None) -> dict[str, Any] | None:
    """The Message a response carried: the JSON body, or the stream rebuilt; None if there is none."""
    if response is None or not 200 <= response.status < 300:
        return None
    if response.events is not None:
        return accumulate(response.events).message
    return response.json if isinstance(response.json, dict) else None
