"""Rebuild the final Message from a stream of events, the way the official SDKs accumulate it.

The SDKs start from `message_start.message` as it is, content included (a code-executed tool call
arrives complete there, with no block events after it), append each content_block_start's block,
apply the deltas to the block they name and merge message_delta into the message. Block events
are keyed by their index, so a message_start with content continues at the index after it.

Used by the runner (a later step of a case can reuse what a streamed step returned) and by the
checks, which read everything they need from one pass. It never raises: what it cannot apply is
returned as a list of problems. Text and JSON fragments are gathered in lists and joined once at
the end, so the work stays linear in the size of the stream.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from conformance.bounded_json import parse_json_payload
from conformance.model import SSEEvent

# The block field each text-like delta type appends to.
_DELTA_FIELDS = {"text_delta": "text", "thinking_delta": "thinking"}


@dataclass
class Accumulated:
    """The rebuilt message (None when no message_start was seen) and what the stream said on the way."""

    message: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    # Concatenated input_json_delta text per block index, as sent.
    partial_json: dict[int, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    # The usage of message_start ({} when it had none), and the (event position, usage) of every message_delta.
    start_usage: dict[str, Any] | None = None
    usage_trail: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    # The block index of each position of message["content"] (they differ only when a stream skips indexes).
    block_indexes: list[int] = field(default_factory=list)


class _Fold:
    """One pass over the events; `result()` joins the gathered pieces."""

    def __init__(self) -> None:
        self.out = Accumulated(message=None)
        self.blocks: dict[int, dict[str, Any]] = {}
        self.pieces: defaultdict[tuple[int, str], list[str]] = defaultdict(list)
        self.json_pieces: defaultdict[int, list[str]] = defaultdict(list)

    def apply(self, position: int, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "message_start":
            self._start(data.get("message"))
        elif kind == "content_block_start":
            index, block = data.get("index"), data.get("content_block")
            if isinstance(index, int) and isinstance(block, dict):
                self._forget(index)
                self.blocks[index] = copy.deepcopy(block)
        elif kind == "content_block_delta":
            self._delta(data.get("index"), data.get("delta"))
        elif kind == "message_delta":
            self._message_delta(position, data)
        elif kind == "error":
            self.out.error = data.get("error") if isinstance(data.get("error"), dict) else data

    def _start(self, message: Any) -> None:
        if self.out.message is not None or not isinstance(message, dict):
            return
        self.out.message = copy.deepcopy(message)
        usage = message.get("usage")
        self.out.start_usage = usage if isinstance(usage, dict) else {}
        content = self.out.message.get("content")
        for index, block in enumerate(content if isinstance(content, list) else []):
            if isinstance(block, dict):
                self.blocks[index] = block

    def _forget(self, index: int) -> None:
        """A block starting again replaces what the index held, pieces included."""
        for name in _DELTA_FIELDS.values():
            self.pieces.pop((index, name), None)
        self.json_pieces.pop(index, None)

    def _delta(self, index: Any, delta: Any) -> None:
        if not isinstance(delta, dict):
            self.out.problems.append(f"content_block_delta at index {index} has no delta object")
            return
        block = self.blocks.get(index) if isinstance(index, int) else None
        if block is None:
            self.out.problems.append(f"content_block_delta for index {index}, which was never started")
            return
        kind = delta.get("type")
        if kind in _DELTA_FIELDS:
            name = _DELTA_FIELDS[kind]
            if isinstance(delta.get(name), str):
                self.pieces[(index, name)].append(delta[name])
        elif kind == "input_json_delta":
            if isinstance(delta.get("partial_json"), str):
                self.json_pieces[index].append(delta["partial_json"])
        elif kind == "signature_delta":
            if isinstance(delta.get("signature"), str):
                block["signature"] = delta["signature"]
        elif kind == "citations_delta":
            if not isinstance(block.get("citations"), list):
                block["citations"] = []
            block["citations"].append(delta.get("citation"))

    def _message_delta(self, position: int, data: dict[str, Any]) -> None:
        usage = data.get("usage")
        if isinstance(usage, dict):
            self.out.usage_trail.append((position, usage))
        if self.out.message is None:
            return
        delta = data.get("delta")
        if isinstance(delta, dict):
            # As the SDKs do, a null container leaves the one message_start announced.
            self.out.message.update({key: value for key, value in delta.items() if key != "container" or value})
        if isinstance(usage, dict):
            merged = dict(self.out.message.get("usage") or {})
            merged.update({key: value for key, value in usage.items() if value is not None})
            self.out.message["usage"] = merged

    def result(self) -> Accumulated:
        for (index, name), parts in self.pieces.items():
            block = self.blocks[index]
            start = block.get(name)
            block[name] = (start if isinstance(start, str) else "") + "".join(parts)
        for index, parts in self.json_pieces.items():
            text = self.out.partial_json[index] = "".join(parts)
            if not text:
                continue
            value, problem = parse_json_payload(text)
            if problem is None:
                self.blocks[index]["input"] = value
            else:
                self.out.problems.append(
                    f"block {index}: the concatenated partial_json is not valid JSON ({problem}): {text[:200]!r}"
                )
        if self.out.message is not None:
            self.out.block_indexes = sorted(self.blocks)
            self.out.message["content"] = [self.blocks[index] for index in self.out.block_indexes]
        return self.out


def accumulate(events: list[SSEEvent]) -> Accumulated:
    """Fold the events into a Message dict; unknown events and pings are skipped."""
    fold = _Fold()
    for position, event in enumerate(events):
        if isinstance(event.json, dict):
            fold.apply(position, event.json)
    return fold.result()
