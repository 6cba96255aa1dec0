"""Turn a finished Message into the SSE event sequence of a streamed answer.

message_start (the Message with no content and null stop fields), then for each block
content_block_start (the block emptied), its deltas and content_block_stop, then message_delta
(stop fields and cumulative usage) and message_stop. A ping follows the first
content_block_start, where the real API sends it. Text streams its citations first (one
citations_delta each) and then a few words per delta, tool input as slices of its JSON, thinking
as thinking_delta chunks and one signature_delta at the end. As the API streams programmatic tool
calling (conformance.reference.programmatic), a tool call made by code arrives whole in its
content_block_start, and a message of such calls only is complete in message_start, followed
directly by message_stop.

The sequence may also hold numbers: seconds to wait before sending what follows (the app sleeps),
which is how a quiet stretch with keepalive pings is played.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from conformance.reference import programmatic

PING: dict[str, Any] = {"type": "ping"}
WORDS_PER_DELTA = 3
JSON_CHARS_PER_DELTA = 16
START_OUTPUT_TOKENS = 1
PING_INTERVAL = 0.5
# An event of a type no client knows, for "Simulate unknown event": clients must skip it.
UNKNOWN_EVENT: dict[str, Any] = {"type": "unknown_event_probe", "detail": "an event type clients do not know yet"}

Item = dict[str, Any] | float


def encode(event: dict[str, Any]) -> bytes:
    """One SSE event: its name is the payload's `type`, its data the compact JSON payload."""
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def message_events(
    message: dict[str, Any], extra_pings: int = 0, delay: float = 0.0, unknown_event: bool = False
) -> Iterator[Item]:
    """Every event of the stream of `message`; `extra_pings` more pings go between deltas.

    `delay` seconds of quiet follow message_start, with a ping every PING_INTERVAL (as the API
    pings while the model works); `unknown_event` adds UNKNOWN_EVENT after message_start.
    """
    if programmatic.arrives_whole(message):
        yield {"type": "message_start", "message": message}
        yield {"type": "message_stop"}
        return
    yield message_start(message)
    if unknown_event:
        yield UNKNOWN_EVENT
    remaining = delay
    while remaining > 0:
        step = min(PING_INTERVAL, remaining)
        yield step
        yield PING
        remaining -= step
    pending_pings = extra_pings
    if not message["content"]:
        yield PING
    for index, block in enumerate(message["content"]):
        yield {"type": "content_block_start", "index": index, "content_block": _started(block)}
        if index == 0:
            yield PING
        for delta in _deltas(block):
            yield {"type": "content_block_delta", "index": index, "delta": delta}
            if pending_pings:
                pending_pings -= 1
                yield PING
        yield {"type": "content_block_stop", "index": index}
    for _ in range(pending_pings):
        yield PING
    usage = message["usage"]
    yield {
        "type": "message_delta",
        "delta": {
            "stop_reason": message["stop_reason"],
            "stop_sequence": message["stop_sequence"],
            "stop_details": message.get("stop_details"),
            "container": message.get("container"),
        },
        "usage": {
            "input_tokens": usage["input_tokens"],
            "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
            "cache_read_input_tokens": usage["cache_read_input_tokens"],
            "output_tokens": usage["output_tokens"],
            "server_tool_use": None,
        },
    }
    yield {"type": "message_stop"}


def failing_events(message: dict[str, Any], error: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A stream that starts normally and then fails: message_start, a ping, then the error event."""
    yield message_start(message)
    yield PING
    yield error


def message_start(message: dict[str, Any]) -> dict[str, Any]:
    started = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "container": None,
        "usage": {**message["usage"], "output_tokens": START_OUTPUT_TOKENS},
    }
    return {"type": "message_start", "message": started}


def _started(block: dict[str, Any]) -> dict[str, Any]:
    """The block as content_block_start announces it: everything that streams is still empty."""
    kind = block["type"]
    if kind == "text":
        return {**block, "text": "", **({"citations": []} if block.get("citations") else {})}
    if kind == "thinking":
        return {**block, "thinking": "", "signature": ""}
    if kind in ("tool_use", "server_tool_use") and not programmatic.called_from_code(block):
        return {**block, "input": {}}
    return block


def _deltas(block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    kind = block["type"]
    if kind == "text":
        for citation in block.get("citations") or []:
            yield {"type": "citations_delta", "citation": citation}
        for piece in word_chunks(block["text"]):
            yield {"type": "text_delta", "text": piece}
    elif kind == "thinking":
        for piece in word_chunks(block["thinking"]):
            yield {"type": "thinking_delta", "thinking": piece}
        yield {"type": "signature_delta", "signature": block["signature"]}
    elif kind in ("tool_use", "server_tool_use") and not programmatic.called_from_code(block):
        text = json.dumps(block["input"], ensure_ascii=False)
        for start in range(0, len(text), JSON_CHARS_PER_DELTA):
            yield {"type": "input_json_delta", "partial_json": text[start : start + JSON_CHARS_PER_DELTA]}


def word_chunks(text: str) -> list[str]:
    """Pieces of a few words each that concatenate back to exactly `text`."""
    pieces = re.findall(r"\S+\s*|\s+", text)
    return ["".join(pieces[i : i + WORDS_PER_DELTA]) for i in range(0, len(pieces), WORDS_PER_DELTA)]
