"""A tolerant, incremental Server-Sent Events parser (WHATWG HTML "event stream" rules) that parses each
event's JSON payload.

The parser accepts everything the standard allows: LF, CR or CRLF line ends, a leading BOM, a
missing space after the colon, comment lines, `id:`/`retry:` fields and unknown field names. It
keeps each event's raw `data` so checks can judge exactly what was sent. It never raises on bad
input: a stream of garbage simply yields events whose `json` is None with a `json_error`.

Hostile streams cannot make it slow or big: each received byte is split into lines once, by C
code, whatever the chunking; a line or an event longer than `max_event_bytes` stops the parser,
and `stopped` says why in one sentence.

JSON payloads are parsed within bounds by conformance.bounded_json.
"""

from __future__ import annotations

import re

from conformance.bounded_json import parse_json_payload
from conformance.model import SSEEvent

# Default bound on one SSE line and on one event's fields together.
MAX_EVENT_BYTES = 4 * 1024 * 1024
# A `retry:` value with more digits is ignored (it would be a reconnection time beyond any use).
MAX_RETRY_DIGITS = 15

BOM = b"\xef\xbb\xbf"
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


class SSEParser:
    """Feed bytes as they arrive; collect complete events with `feed()`'s return value.

    Once a line or an event exceeds `max_event_bytes`, `stopped` says so and further input is ignored.
    """

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self.stopped: str | None = None
        # The pieces of the line being received (it has no line end yet) and their total size.
        self._partial: list[bytes] = []
        self._partial_size = 0
        self._skip_lf = False
        self._first_line = True
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._has_field = False
        self._event_size = 0

    def feed(self, chunk: bytes, t: float = 0.0) -> list[SSEEvent]:
        """Add received bytes; return the events completed by them (stamped with time `t`)."""
        events: list[SSEEvent] = []
        if self.stopped is not None or not chunk:
            return events
        if self._skip_lf:
            # The previous chunk ended with CR: an LF starting this one belongs to that line end.
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        lines = _LINE_BREAK.split(chunk) if b"\r" in chunk else chunk.split(b"\n")
        self._skip_lf = chunk.endswith(b"\r")
        tail = lines.pop()
        if lines and self._partial:
            self._partial.append(lines[0])
            lines[0] = b"".join(self._partial)
            self._partial = []
            self._partial_size = 0
        if lines and self._first_line:
            self._first_line = False
            lines[0] = lines[0].removeprefix(BOM)
        for line in lines:
            event = self._line(line, t)
            if self.stopped is not None:
                return events
            if event is not None:
                events.append(event)
        if tail:
            self._partial.append(tail)
            self._partial_size += len(tail)
            if self._partial_size > self.max_event_bytes:
                self._stop("line")
        return events

    @property
    def pending(self) -> bool:
        """True when an event was started but not ended by a blank line (a cut-off stream)."""
        return self._has_field or bool(self._partial)

    def _stop(self, what: str) -> None:
        self.stopped = f"an SSE {what} exceeded {self.max_event_bytes} bytes"
        self._partial = []

    def _line(self, raw: bytes, t: float) -> SSEEvent | None:
        if not raw:
            return self._dispatch(t)
        if len(raw) > self.max_event_bytes:
            self._stop("line")
            return None
        name, sep, value = raw.partition(b":")
        if not name and sep:
            return None  # a comment
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", errors="replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", errors="replace")
        else:
            # `id` and `retry` set the stream's state, kept on the next event, and start no event;
            # a `retry` counts only as ASCII digits ("²".isdigit() is True, and int() refuses it).
            # Other fields are ignored.
            if name == b"id" and b"\x00" not in value:
                self._id = value.decode("utf-8", errors="replace")
            elif name == b"retry" and value.isdigit() and len(value) <= MAX_RETRY_DIGITS:
                self._retry = int(value)
            return None
        self._has_field = True
        self._event_size += len(raw)
        if self._event_size > self.max_event_bytes:
            self._stop("event")
        return None

    def _dispatch(self, t: float) -> SSEEvent | None:
        if not self._has_field:
            return None
        has_data = bool(self._data)
        data = "\n".join(self._data)
        # The standard drops events without data; an `event:` line alone is still worth keeping as
        # evidence, so it is returned with empty data and no JSON.
        payload, error = parse_json_payload(data) if has_data else (None, "event has no data field")
        event = SSEEvent(self._event, data, t, self._id, self._retry, payload, error)
        self._event = None
        self._data = []
        self._retry = None
        self._has_field = False
        self._event_size = 0
        return event


def parse_stream(raw: bytes) -> list[SSEEvent]:
    """Parse a complete stream at once (for recorded data and tests)."""
    return SSEParser().feed(raw)
