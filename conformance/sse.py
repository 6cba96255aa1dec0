"""A tolerant, incremental Server-Sent Events parser (WHATWG HTML "event stream" rules), and the
bounded JSON parse of event payloads and bodies.

The parser accepts everything the standard allows: LF, CR or CRLF line ends, a leading BOM, a
missing space after the colon, comment lines, `id:`/`retry:` fields and unknown field names. It
keeps each event's raw `data` so checks can judge exactly what was sent. It never raises on bad
input: a stream of garbage simply yields events whose `json` is None with a `json_error`.

Hostile streams cannot make it slow or big: each received byte is split into lines once, by C
code, whatever the chunking; a line or an event longer than `max_event_bytes` stops the parser,
and `stopped` says why in one sentence.

JSON payloads are parsed within bounds (`MAX_JSON_DEPTH`, `MAX_JSON_INTEGER_DIGITS`) so that
no parsed value can later break what recurses over it or prints it (checks, redaction,
`json.dumps`); NaN and Infinity, which Python's parser accepts, are refused as not JSON.
"""

from __future__ import annotations

import json
import re
from typing import NoReturn

from conformance.model import SSEEvent

# Deepest nesting of arrays and objects a JSON payload may have (a Message needs about 10).
MAX_JSON_DEPTH = 64
# Most digits a JSON integer may have (token counts need 10; Python prints at most 4300).
MAX_JSON_INTEGER_DIGITS = 50
# Default bound on one SSE line and on one event's fields together.
MAX_EVENT_BYTES = 4 * 1024 * 1024
# A `retry:` value with more digits is ignored (it would be a reconnection time beyond any use).
MAX_RETRY_DIGITS = 15

BOM = b"\xef\xbb\xbf"
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
# What a payload looks like to the bound checks: every digit a "0", every "{" a "[".
_SHAPE = bytes.maketrans(b"0123456789{", b"0000000000[")
_LONG_INTEGER = b"0" * (MAX_JSON_INTEGER_DIGITS + 1)
# Strings once their escaped quotes are gone, and what is left of a payload's brackets: "[" and "]".
_STRING = re.compile(rb'"[^"]*"')
_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(set(range(256)) - set(b"[]{}"))
_TOO_MANY_OPENERS = b"[" * (MAX_JSON_DEPTH + 1)


class _Refused(ValueError):
    """A JSON value beyond the bounds; its message is the one-sentence reason."""


def _refuse_constant(name: str) -> NoReturn:
    raise _Refused(f"not JSON: {name} is not a JSON value")


def _bounded_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_JSON_INTEGER_DIGITS:
        raise _Refused(f"a JSON integer has more than {MAX_JSON_INTEGER_DIGITS} digits")
    return int(text)


_PLAIN = json.JSONDecoder(parse_constant=_refuse_constant)
_BOUNDED_INTEGERS = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_bounded_int)


def _decode(decoder: json.JSONDecoder, data: str) -> object:
    """decoder.decode(data), with the C scanner alone for the usual payload (no surrounding whitespace)."""
    try:
        value, end = decoder.scan_once(data, 0)  # type: ignore[attr-defined]
    except StopIteration:
        end = -1
    return value if end == len(data) else decoder.decode(data)


def _nested_too_deep(raw: bytes) -> bool:
    """Whether arrays and objects nest deeper than MAX_JSON_DEPTH (brackets in strings skipped).

    In C passes, never a loop per byte: each pass removes the innermost pairs, so what is left of a
    pair after MAX_JSON_DEPTH passes lies deeper (unbalanced brackets are json's to report); a run of
    more openers than the bound, the usual shape of an attack, ends the search at once.
    """
    outside = _STRING.sub(b"", raw.replace(b"\\\\", b"").replace(b'\\"', b""))
    brackets = outside.translate(_SQUARE, _NOT_BRACKET)
    for _ in range(MAX_JSON_DEPTH):
        if _TOO_MANY_OPENERS in brackets:
            return True
        brackets = brackets.replace(b"[]", b"")
        if b"[]" not in brackets:
            return False
    return True


def parse_json_payload(data: str | bytes) -> tuple[object | None, str | None]:
    """Parse a payload as JSON within the bounds; return (value, None) or (None, a one-sentence reason).

    Never raises. The common case costs one pass over the payload besides the parse itself:
    nesting is only scanned when there are more brackets than the depth bound, and integers are
    only measured when the payload has a run of digits longer than the bound.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return None, "not JSON: the payload is not UTF-8"
    raw = data.encode("utf-8", "surrogatepass")
    shape = raw.translate(_SHAPE)
    if shape.count(b"[") > MAX_JSON_DEPTH and _nested_too_deep(raw):
        return None, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    decoder = _BOUNDED_INTEGERS if _LONG_INTEGER in shape else _PLAIN
    try:
        return _decode(decoder, data), None
    except _Refused as exc:
        return None, str(exc)
    except RecursionError:
        return None, "JSON nested too deep to parse here"
    except ValueError as exc:
        return None, f"not JSON: {exc}"


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
