"""What the relay keeps of an exchange, and how that becomes an Exchange the checks can judge.

The relay only appends bytes to a Capture (bounded: past the limit it counts what it drops), so
relaying costs no parsing. Turning a Capture into an Exchange happens later, off the relay's
path: the response body is decoded (gzip, deflate; br and zstd when their Python modules are
installed) in a copy of our own, fed through the same bounded recorder and SSE parser the suite
uses for its own requests, and redacted with the same Redactor.
"""

from __future__ import annotations

import importlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance.model import Exchange, Request, Response
from conformance.redact import Redactor, credential
from conformance.transport import Limits, ResponseRecorder, joined_headers

Decompress = Callable[[bytes, int], bytes]


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
    decompress, problem = decoder(headers.get("content-encoding", ""))
    if decompress is None:
        recorded.undecodable = problem
    else:
        for t, chunk in capture.chunks:
            room = max(limits.max_body_bytes - len(recorder.body), 0) + 1
            if not recorder.take(decompress(chunk, room), t):
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
    raw = bytes(capture.request_body)
    decompress, _ = decoder(headers.get("content-encoding", ""))
    if decompress is not None and raw:
        raw = decompress(raw, capture.limit + 1)
    body: Any = None
    raw_body: str | None = None
    if raw and capture.request_size <= capture.limit:
        try:
            body = json.loads(raw)
        except ValueError:
            raw_body = raw.decode("utf-8", errors="replace")
    elif raw:
        raw_body = raw.decode("utf-8", errors="replace")
    return Request(method=capture.method, url=capture.url, headers=headers, body=body, raw_body=raw_body)


def decoder(content_encoding: str) -> tuple[Decompress | None, str | None]:
    """A streaming decoder for a Content-Encoding list, or (None, why) when one cannot be decoded here.

    The decoder takes a chunk and the most bytes to return (a small compressed body may expand
    enormously; what is past the recording limit is not wanted anyway).
    """
    steps: list[Decompress] = []
    for name in reversed([part.strip().lower() for part in content_encoding.split(",") if part.strip()]):
        if name == "identity":
            continue
        step = _step(name)
        if step is None:
            return None, f"the body is {name}-encoded, which this installation cannot decode"
        steps.append(step)

    def decompress(chunk: bytes, limit: int) -> bytes:
        for step in steps:
            chunk = step(chunk, limit)
        return chunk

    return decompress, None


def _step(name: str) -> Decompress | None:
    if name in ("gzip", "x-gzip", "deflate"):
        # gzip: a gzip header; deflate: zlib-wrapped as the standard says (32 + 15 detects either).
        state = zlib.decompressobj(32 + zlib.MAX_WBITS)
        return lambda chunk, limit: state.decompress(chunk, limit)
    if name == "br":
        brotli = _optional("brotli")
        if brotli is None:
            return None
        state = brotli.Decompressor()
        return lambda chunk, limit: state.process(chunk)[:limit]
    if name == "zstd":
        zstandard = _optional("zstandard")
        if zstandard is None:
            return None
        state = zstandard.ZstdDecompressor().decompressobj()
        return lambda chunk, limit: state.decompress(chunk)[:limit]
    return None


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None
