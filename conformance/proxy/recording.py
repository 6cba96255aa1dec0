"""What the relay keeps of an exchange, and how that becomes an Exchange the checks can judge.

The relay only appends bytes to a Capture (bounded: past the limit it counts what it drops), so
relaying costs no parsing. Turning a Capture into an Exchange happens later, off the relay's
path: the response body is fed through the same bounded recorder, Content-Encoding decoder and
SSE parser the suite uses for its own requests, and redacted with the same Redactor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.decoding import decode_body
from conformance.model import Exchange, Request, Response
from conformance.redact import Redactor, credential
from conformance.sse import parse_json_payload
from conformance.transport import Limits, ResponseRecorder, joined_headers


@dataclass
class Capture:
    """One relayed exchange as raw as it passed: headers as pairs, body bytes with arrival times.

    `limit` caps each recorded body; `request_size` and `response_size` count every byte relayed.
    """

    method: str
    url: str
    request_headers: list[tuple[str, str]]
    limit: int
    request_body: bytearray = field(default_factory=bytearray)
    request_size: int = 0
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    response_size: int = 0
    response_recorded: int = 0
    # The upstream could not be reached (no response at all).
    error: str | None = None
    # The response did not end normally (client gone, upstream broke).
    truncated: str | None = None
    elapsed: float = 0.0

    def take_request(self, chunk: bytes) -> None:
        self.request_size += len(chunk)
        room = self.limit - len(self.request_body)
        if room > 0:
            self.request_body.extend(chunk[:room])

    def take(self, chunk: bytes, t: float) -> None:
        self.response_size += len(chunk)
        room = self.limit - self.response_recorded
        if room > 0:
            kept = chunk[:room]
            self.chunks.append((t, kept))
            self.response_recorded += len(kept)

    def credentials(self) -> list[str]:
        """The secrets the client sent (API keys, bearer tokens), to be redacted everywhere."""
        return [secret for name, value in self.request_headers if (secret := credential(name, value))]


@dataclass
class Recorded:
    """An Exchange made from a Capture, with what could not be recorded faithfully."""

    exchange: Exchange
    # Why the response body cannot be judged (an encoding this installation cannot decode), if so.
    undecodable: str | None = None
    # Facts about the recording itself (a body beyond the limit), for the report.
    notes: list[str] = field(default_factory=list)


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
    headers = joined_headers(capture.response_headers)
    recorder = ResponseRecorder(Response(status=capture.status, headers=headers), limits)
    recorded.undecodable = recorder.decoder.problem
    for t, chunk in capture.chunks:
        if not recorder.take(chunk, t):
            break
    response = recorder.finish(capture.elapsed)
    if capture.response_size > capture.response_recorded:
        response.truncated = response.truncated or f"the recorded copy was capped at {capture.limit} bytes"
        recorded.notes.append(
            f"the response body ({capture.response_size} bytes) exceeded the recording limit of {capture.limit} bytes; "
            "the client received all of it"
        )
    if capture.truncated:
        response.truncated = response.truncated or capture.truncated
    recorded.exchange.response = response
    redactor.exchange(recorded.exchange)
    return recorded


def _request(capture: Capture) -> Request:
    headers = joined_headers(capture.request_headers)
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
