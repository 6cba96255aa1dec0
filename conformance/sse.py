"""A tolerant, incremental Server-Sent Events parser (WHATWG HTML "event stream" rules).

It accepts everything the standard allows: LF, CR or CRLF line ends, a missing space after the
colon, comment lines, `id:`/`retry:` fields and unknown field names. It keeps each event's raw
`data` so checks can judge exactly what was sent. It never raises on bad input: a stream of
garbage simply yields events whose `json` is None with a `json_error`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from conformance.model import SSEEvent


def parse_json_payload(data: str) -> tuple[object | None, str | None]:
    """Parse an event's data as JSON; return (value, None) or (None, reason)."""
    try:
        return json.loads(data), None
    except ValueError as exc:
        return None, f"not JSON: {exc}"


class SSEParser:
    """Feed bytes as they arrive; collect complete events with `feed()`'s return value."""

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._has_field = False
        self._skip_lf = False
        self._first_line = True

    def feed(self, chunk: bytes, t: float = 0.0) -> list[SSEEvent]:
        """Add received bytes; return the events completed by them (stamped with time `t`)."""
        events: list[SSEEvent] = []
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._skip_lf = False
        self._buffer += chunk
        for line in self._split_lines():
            event = self._line(line, t)
            if event is not None:
                events.append(event)
        return events

    @property
    def pending(self) -> bool:
        """True when an event was started but not ended by a blank line (a cut-off stream)."""
        return self._has_field or bool(self._buffer)

    def _split_lines(self) -> Iterator[bytes]:
        buffer = self._buffer
        start = 0
        i = 0
        while i < len(buffer):
            byte = buffer[i]
            if byte == 0x0A:  # LF
                yield buffer[start:i]
                i += 1
                start = i
            elif byte == 0x0D:  # CR, maybe followed by LF
                if i + 1 == len(buffer):
                    # CR at the very end: the LF may come in the next chunk.
                    yield buffer[start:i]
                    self._skip_lf = True
                    i += 1
                    start = i
                    break
                yield buffer[start:i]
                i += 2 if buffer[i + 1] == 0x0A else 1
                start = i
            else:
                i += 1
        self._buffer = buffer[start:]

    def _line(self, raw: bytes, t: float) -> SSEEvent | None:
        line = raw.decode("utf-8", errors="replace")
        if self._first_line:
            self._first_line = False
            line = line.removeprefix("\ufeff")
        if line == "":
            return self._dispatch(t)
        if line.startswith(":"):
            return None  # a comment
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\x00" not in value:
                self._id = value
        elif name == "retry":
            if value.isdigit():
                self._retry = int(value)
        else:
            return None  # unknown fields are ignored
        self._has_field = True
        return None

    def _dispatch(self, t: float) -> SSEEvent | None:
        if not self._has_field:
            return None
        has_data = bool(self._data)
        data = "\n".join(self._data)
        event = SSEEvent(event=self._event, data=data, t=t, id=self._id, retry=self._retry)
        self._event = None
        self._data = []
        self._retry = None
        self._has_field = False
        if not has_data:
            # The standard drops events without data; an `event:` line alone is still worth
            # keeping as evidence, so it is returned with empty data and no JSON.
            event.json_error = "event has no data field"
            return event
        event.json, event.json_error = parse_json_payload(data)
        return event


def parse_stream(raw: bytes) -> list[SSEEvent]:
    """Parse a complete stream at once (for recorded data and tests)."""
    return SSEParser().feed(raw)
