"""What the relay keeps of an exchange, and how that becomes an Exchange the checks can judge.

The relay only appends bytes to a Capture (bounded: past the limit it counts what it drops), so
relaying costs no parsing. Turning a Capture into an Exchange happens later, off the relay's
path: the response body is fed through the same bounded recorder, Content-Encoding decoder and
SSE parser the suite uses for its own requests, and redacted with the same Redactor.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from conformance.bounded_json import parse_json_payload
from conformance.decoding import decode_body
from conformance.model import Exchange, Request, Response
from conformance.redact import Redactor, credential
from conformance.transport import Limits, ResponseRecorder, joined_headers

# Arrival times kept per response: enough for every event of a long stream to keep its own.
MAX_MARKS = 65_536
# What one arrival time costs in memory (a tuple of an int and a float, and its list slot).
MARK_BYTES = 120


@dataclass
class Capture:
    """One relayed exchange as raw as it passed: headers as pairs of bytes (decoded only when judged, off the
    relay's path), body bytes with arrival times.

        `limit` caps each recorded body; `request_size` and `response_size` count every byte relayed.
        The response bytes are kept in one buffer with at most MAX_MARKS arrival times: past that, a
        chunk joins the previous mark (`merged_marks` counts them), so that a body dripped byte by byte
        costs no more than one sent whole.
    """

    method: str
    url: str
    request_headers: list[tuple[bytes, bytes]]
    limit: int
    request_body: bytearray = field(default_factory=bytearray)
    request_size: int = 0
    status: int | None = None
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    response_body: bytearray = field(default_factory=bytearray)
    # (end offset in response_body, seconds since the request) of each chunk kept.
    marks: list[tuple[int, float]] = field(default_factory=list)
    merged_marks: int = 0
    response_size: int = 0
    # The upstream could not be reached (no response at all).
    error: str | None = None
    # The response did not end normally (client gone, upstream broke).
    truncated: str | None = None
    # The client went away before the response ended: what it did not get, it did not wait for.
    client_left: bool = False
    elapsed: float = 0.0

    @property
    def response_recorded(self) -> int:
        return len(self.response_body)

    @property
    def kept_bytes(self) -> int:
        """About how much memory the kept copy takes: both bodies and the arrival times."""
        return len(self.request_body) + len(self.response_body) + MARK_BYTES * len(self.marks)

    def take_request(self, chunk: bytes) -> None:
        self.request_size += len(chunk)
        room = self.limit - len(self.request_body)
        if room > 0:
            self.request_body.extend(chunk[:room])

    def take(self, chunk: bytes, t: float) -> None:
        self.response_size += len(chunk)
        room = self.limit - len(self.response_body)
        if room <= 0 or not chunk:
            return
        self.response_body.extend(chunk[:room])
        if len(self.marks) < MAX_MARKS:
            self.marks.append((len(self.response_body), t))
        else:
            self.marks[-1] = (len(self.response_body), self.marks[-1][1])
            self.merged_marks += 1

    def chunks(self) -> Iterator[tuple[float, bytes]]:
        """The kept response bytes as (arrival time, bytes), one per mark."""
        start = 0
        view = memoryview(self.response_body)
        for end, t in self.marks:
            yield t, bytes(view[start:end])
            start = end

    def credentials(self, public: Collection[str] = ()) -> list[str]:
        """The secrets the client sent (API keys, bearer tokens, credential-like headers), to be
        redacted everywhere; `public` names headers the user declared not secret."""
        headers = _decoded(self.request_headers)
        return [secret for name, value in headers if (secret := credential(name, value, public))]


@dataclass
class Recorded:
    """An Exchange made from a Capture, with what could not be recorded faithfully."""

    exchange: Exchange
    # Why the response body cannot be judged (an encoding this installation cannot decode), if so.
    undecodable: str | None = None
    # Facts about the recording itself (a body beyond the limit), for the report.
    notes: list[str] = field(default_factory=list)
    # Part of the response is missing from the recorded copy (a recording bound), not from what the client got.
    capped: bool = False
    # The client received a cut response: the upstream broke the connection mid-answer.
    cut: str | None = None


def to_exchange(capture: Capture, limits: Limits, redactor: Redactor) -> Recorded:
    """The Exchange the checks judge: decoded, parsed, bounded by `limits`, redacted."""
    recorded = Recorded(Exchange(request=_request(capture)))
    if capture.request_size > len(capture.request_body):
        recorded.notes.append(
            f"the request body ({capture.request_size} bytes) exceeded the recording limit of {capture.limit} bytes"
        )
    if capture.status is None:
        recorded.exchange.error = capture.error or "no response"
        redactor.exchange(recorded.exchange)
        return recorded
    headers = joined_headers(_decoded(capture.response_headers))
    recorder = ResponseRecorder(Response(status=capture.status, headers=headers), limits)
    recorded.undecodable = recorder.decoder.problem
    for t, chunk in capture.chunks():
        if not recorder.take(chunk, t):
            break
    response = recorder.finish(capture.elapsed)
    recorded.capped = response.truncated is not None
    if capture.merged_marks:
        recorded.notes.append(
            f"{capture.merged_marks} chunks of the response arrived after the first {MAX_MARKS} and share their "
            "arrival time"
        )
    if capture.response_size > capture.response_recorded:
        recorded.capped = True
        response.truncated = response.truncated or f"the recorded copy was capped at {capture.limit} bytes"
        recorded.notes.append(
            f"the response body ({capture.response_size} bytes) exceeded the recording limit of {capture.limit} bytes; "
            "the client received all of it"
        )
    if capture.truncated:
        response.truncated = response.truncated or capture.truncated
        recorded.cut = None if capture.client_left else capture.truncated
    recorded.exchange.response = response
    redactor.exchange(recorded.exchange)
    return recorded


def raw_exchange(capture: Capture, redactor: Redactor) -> Exchange:
    """The exchange as plain text, nothing decoded or parsed: what is kept of one the judge failed on."""
    headers = joined_headers(_decoded(capture.request_headers))
    raw_body = bytes(capture.request_body).decode("utf-8", errors="replace") or None
    exchange = Exchange(Request(method=capture.method, url=capture.url, headers=headers, raw_body=raw_body))
    if capture.status is None:
        exchange.error = capture.error or "no response"
    else:
        text = bytes(capture.response_body).decode("utf-8", errors="replace")
        answered = joined_headers(_decoded(capture.response_headers))
        response = Response(status=capture.status, headers=answered, text=text)
        response.elapsed, response.truncated = capture.elapsed, capture.truncated
        exchange.response = response
    return redactor.exchange(exchange)


def _request(capture: Capture) -> Request:
    headers = joined_headers(_decoded(capture.request_headers))
    raw, _ = decode_body(bytes(capture.request_body), headers.get("content-encoding", ""), capture.limit + 1)
    body: Any = None
    raw_body: str | None = None
    if raw and capture.request_size <= capture.limit:
        body, problem = parse_json_payload(raw)
        if problem is not None:
            raw_body = raw.decode("utf-8", errors="replace")
    elif raw:
        raw_body = raw.decode("utf-8", errors="replace")
    return Request(method=capture.method, url=capture.url, headers=headers, body=body, raw_body=raw_body)


def _decoded(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Header pairs as text (latin-1: any byte is a character, as HTTP/1.1 allows)."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
