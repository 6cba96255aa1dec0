"""The catalogue of hostile targets, and how one is played against `conformance run`.

Each Misbehaviour is a small scripted answer for tests.hostile.HostileServer, named by the first
segment of the request path; `answers(reference_url)` adds the forwarding layers in front of the
reference server (`reference` as is, `flaky`, `slow`, and `once-NAME`: misbehave once, then relay).
`play()` runs the command in a subprocess against one of them and measures what the tests bound
and benchmarks/hostile.py prints: exit code, wall time, peak RSS, report size, canary hits.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import secrets
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tests.hostile import Answer, HostileRequest, forward, head, reset

ROOT = Path(__file__).resolve().parents[1]
# Cases a misbehaviour is played against: a stream, a JSON answer and a count_tokens answer when it
# is in the HTTP layer; two streams (one expecting its text) or two Messages when it is in the body;
# the grammar alone for a legal stream.
GENERAL_CASES = ("streaming.structure", "text.string-content", "count_tokens.basic")
STREAM_CASES = ("streaming.structure", "streaming.text")
JSON_CASES = ("text.string-content", "text.unicode")
LEGAL_CASES = ("streaming.structure",)
# Bounds of every played run.
MAX_SILENCE = 2.0
TIMEOUT = 10.0
HANG_GUARD = 90.0
MAX_RSS_MB = 500
MIB = 1024 * 1024
MAX_FILE_BYTES = 20 * MIB
MAX_REASON_CHARS = 500
HUGE_BODY_BYTES = 100 * MIB
BOMB_GIB = 3
WRITE_CHUNK = 64 * 1024
# How long an endless answer plays at most, should a client never hang up.
ENDLESS_SECONDS = 120.0
# A port nothing listens on, on a loopback address the server does not bind: "another host".
OTHER_HOST = "http://127.0.0.2:9"


def new_canary() -> str:
    """A random API key for one run: any trace of it in an output is a leak."""
    return f"canary-{secrets.token_hex(16)}"


# --- answers: the building blocks -----------------------------------------------------------------


def message(request: HostileRequest, text: str = "Hello there.", usage: str = "") -> str:
    """A valid non-streamed Message (count_tokens gets its own answer); `usage` replaces its usage JSON."""
    if request.path.rstrip("/").endswith("/count_tokens"):
        return '{"input_tokens": 12}'
    usage = usage or '{"input_tokens": 12, "output_tokens": 3}'
    return (
        f'{{"id": "msg_hostile", "type": "message", "role": "assistant", "model": {json.dumps(request.model)}, '
        f'"content": [{{"type": "text", "text": {json.dumps(text)}}}], "stop_reason": "end_turn", '
        f'"stop_sequence": null, "usage": {usage}}}'
    )


def stream_blocks(
    request: HostileRequest, texts: Iterable[str] = ("Hello", " there."), output_tokens: str = "3"
) -> list[str]:
    """The events of a valid text stream, one `event:`/`data:` block each, "\\n" line ends."""
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_hostile",
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 1},
        },
    }
    events: list[tuple[str, str]] = [
        ("message_start", json.dumps(start)),
        (
            "content_block_start",
            '{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}',
        ),
        ("ping", '{"type": "ping"}'),
    ]
    events += [("content_block_delta", text_delta(text)) for text in texts]
    events += [
        ("content_block_stop", '{"type": "content_block_stop", "index": 0}'),
        (
            "message_delta",
            '{"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, '
            f'"usage": {{"output_tokens": {output_tokens}}}}}',
        ),
        ("message_stop", '{"type": "message_stop"}'),
    ]
    return [f"event: {name}\ndata: {data}\n\n" for name, data in events]


def text_delta(text: str) -> str:
    return json.dumps({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})


def valid_parts(request: HostileRequest, extra_headers: str = "") -> tuple[bytes, bytes]:
    """The head and body a correct server would answer: a stream for `stream: true`, else JSON."""
    if request.wants_stream:
        return head(extra=extra_headers), "".join(stream_blocks(request)).encode()
    return head(200, "application/json", extra_headers), message(request).encode()


def valid_answer(request: HostileRequest, extra_headers: str = "") -> bytes:
    return b"".join(valid_parts(request, extra_headers))


async def send(writer: asyncio.StreamWriter, chunks: Iterable[bytes], pause: float = 0.0) -> None:
    """Write the chunks in order, waiting for each to drain (and `pause` seconds after each)."""
    for chunk in chunks:
        writer.write(chunk)
        await writer.drain()
        if pause:
            await asyncio.sleep(pause)


def repeated(block: bytes, total: int) -> Iterator[bytes]:
    """`total` bytes of `block` repeated, in chunks of about WRITE_CHUNK: never all in memory."""
    chunk = block * max(1, WRITE_CHUNK // len(block))
    sent = 0
    while sent < total:
        piece = chunk[: total - sent]
        sent += len(piece)
        yield piece


def endless(block: bytes) -> Iterator[bytes]:
    """`block` over and over, in chunks, for at most ENDLESS_SECONDS."""
    chunk = block * max(1, WRITE_CHUNK // len(block))
    deadline = time.monotonic() + ENDLESS_SECONDS
    while time.monotonic() < deadline:
        yield chunk


def gzip_bomb(size: int = BOMB_GIB * 1024 * MIB, zeros: int = MIB) -> bytes:
    """One gzip member that inflates to `size` bytes of zeros (a multiple of `zeros`, at least two of
    them), about a thousandth of that on the wire.

    Built without ever holding (or compressing) the whole: after a full flush the compressor
    forgets its window, so every further MiB of zeros compresses to the same block; the trailer
    (CRC-32 and length mod 2**32) is computed by running the checksum over the zeros in MiB steps.
    """
    count = size // zeros
    buffer = bytes(zeros)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = compressor.compress(buffer) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(buffer) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = compressor.flush(zlib.Z_FINISH)[:-8]  # the empty last block, without the trailer of two MiB
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(buffer, crc)
    trailer = crc.to_bytes(4, "little") + ((count * zeros) % 2**32).to_bytes(4, "little")
    return first + block * (count - 1) + final + trailer


@cache
def cached_bomb() -> bytes:
    return gzip_bomb()


# --- answers: the misbehaviours -------------------------------------------------------------------


def stream_with(
    prefix: str = "",
    texts: Iterable[str] = ("Hello", " there."),
    line_end: str = "\n",
    output_tokens: str = "3",
    between: str = "",
) -> Answer:
    """A valid text stream with `prefix` before it, `between` between its events and `line_end` for every line end."""

    async def answer(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
        stream = prefix + between.join(stream_blocks(request, texts, output_tokens))
        writer.write(head() + stream.replace("\n", line_end).encode("utf-8"))

    return answer


def json_with(body: Callable[[HostileRequest], bytes], status: int = 200, extra: str = "") -> Answer:
    async def answer(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(head(status, "application/json", extra) + body(request))

    return answer


def raw(*chunks: bytes, then_reset: bool = False) -> Answer:
    async def answer(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
        await send(writer, chunks)
        if then_reset:
            reset(writer)

    return answer


async def stream_invalid_utf8(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    stream = "".join(stream_blocks(request, texts=("@@",))).encode()
    writer.write(head() + stream.replace(b"@@", b"\xff\xfe\xc3("))


async def slow_drip(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    """The head at once, then the body one byte every 100 ms: it takes minutes."""
    response_head, body = valid_parts(request)
    await send(writer, [response_head])
    await send(writer, (body[i : i + 1] for i in range(len(body))), pause=0.1)


async def silence_after_headers(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    await send(writer, [head()])
    await asyncio.sleep(ENDLESS_SECONDS)


async def endless_pings(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    first = stream_blocks(request)[0]
    await send(writer, [head() + first.encode()])
    await send(writer, endless(b'event: ping\ndata: {"type": "ping"}\n\n'))


async def endless_deltas(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    first, started = stream_blocks(request)[:2]
    await send(writer, [head() + (first + started).encode()])
    await send(writer, endless(f"event: content_block_delta\ndata: {text_delta('more ')}\n\n".encode()))


async def huge_sse_line(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    first, started = stream_blocks(request)[:2]
    opening = 'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": '
    await send(writer, [head() + (first + started + opening + '{"type": "text_delta", "text": "').encode()])
    await send(writer, repeated(b"a", HUGE_BODY_BYTES))
    await send(writer, [b'"}}\n\n'])


async def reset_mid_stream(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    await send(writer, [head() + "".join(stream_blocks(request)[:4]).encode()])
    await asyncio.sleep(0.05)
    reset(writer)


async def huge_json_body(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    opening = b'{"type": "message", "role": "assistant", "content": [{"type": "text", "text": "'
    closing = b'"}], "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}}'
    length = len(opening) + HUGE_BODY_BYTES + len(closing)
    await send(writer, [head(200, "application/json", f"content-length: {length}\r\n") + opening])
    await send(writer, repeated(b"a", HUGE_BODY_BYTES))
    await send(writer, [closing])


async def huge_chunked_stream(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    """100 MB of events in chunked transfer coding (a head with Transfer-Encoding, no Content-Length)."""
    await send(writer, [head(extra="transfer-encoding: chunked\r\n").replace(b"connection: close\r\n", b"")])
    block = b'event: ping\ndata: {"type": "ping"}\n\n' * 1000
    framed = f"{len(block):x}\r\n".encode() + block + b"\r\n"
    await send(writer, repeated(framed, HUGE_BODY_BYTES // len(framed) * len(framed)))  # whole chunks only
    await send(writer, [b"0\r\n\r\n"])


async def endless_headers(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    await send(writer, [b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"])
    await send(writer, endless(b"x-filler: " + b"h" * 100 + b"\r\n"))


async def silence_before_headers(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(ENDLESS_SECONDS)


def nested(depth: int) -> Callable[[HostileRequest], bytes]:
    """A Message whose text block carries an extra field nested `depth` arrays deep."""

    def body(request: HostileRequest) -> bytes:
        deep = "[" * depth + "]" * depth
        return message(request).replace('"text": "Hello there."', f'"text": "Hello there.", "deep": {deep}').encode()

    return body


def digits(count: int) -> str:
    return "9" * count


def gzipped_twice(request: HostileRequest) -> bytes:
    return gzip.compress(gzip.compress(message(request).encode()))


async def double_gzip(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    body = gzipped_twice(request)
    extra = f"content-encoding: gzip, gzip\r\ncontent-length: {len(body)}\r\n"
    writer.write(head(200, "application/json", extra) + body)


async def bomb(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    body = cached_bomb()
    extra = f"content-encoding: gzip\r\ncontent-length: {len(body)}\r\n"
    await send(writer, [head(200, "application/json", extra), body])


def redirect_to(location: Callable[[HostileRequest], str]) -> Answer:
    async def answer(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
        extra = f"location: {location(request)}\r\ncontent-length: 0\r\n"
        writer.write(head(307, "text/plain", extra))

    return answer


def key_in_header_name(request: HostileRequest) -> Answer:
    return raw(valid_answer(request, f"{request.api_key}: seen\r\n"))


async def echo_request_headers(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
    """Every request header comes back as an `x-echo-NAME` response header (credentials included)."""
    echoed = "".join(f"x-echo-{name}: {value}\r\n" for name, value in request.headers.items())
    writer.write(valid_answer(request, echoed))


def per_request(make: Callable[[HostileRequest], Answer]) -> Answer:
    """An answer built from the request (what it echoes back depends on it)."""

    async def answer(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
        await make(request)(request, writer)

    return answer


def split_key(request: HostileRequest) -> Answer:
    key = request.api_key
    half = len(key) // 2
    return stream_with(texts=(f"Your key is {key[:half]}", f"{key[half:]}, thank you."))


def key_error(request: HostileRequest) -> Answer:
    error = {"type": "authentication_error", "message": f"invalid x-api-key: {request.api_key}"}
    body = json.dumps({"type": "error", "error": error}).encode()
    return json_with(lambda _: body, status=401)


@dataclass(frozen=True)
class Misbehaviour:
    """One hostile answer. `legal`: unusual but within the contract, so every case must pass."""

    name: str
    what: str
    answer: Answer
    cases: tuple[str, ...] = GENERAL_CASES
    legal: bool = False
    slow: bool = False


CATALOGUE: tuple[Misbehaviour, ...] = (
    # The stream's own fields.
    Misbehaviour("retry-superscript", "an SSE `retry: ²` field", stream_with("retry: ²\n"), cases=STREAM_CASES),
    Misbehaviour(
        "retry-5000-digits",
        "an SSE `retry:` field of 5,000 digits",
        stream_with(f"retry: {digits(5000)}\n"),
        cases=STREAM_CASES,
    ),
    Misbehaviour(
        "stream-token-count-digits",
        "message_delta usage.output_tokens of 5,000 digits",
        stream_with(output_tokens=digits(5000)),
        cases=STREAM_CASES,
    ),
    Misbehaviour("stream-invalid-utf8", "invalid UTF-8 inside a text delta", stream_invalid_utf8, cases=STREAM_CASES),
    # Endless, slow, silent, huge streams.
    Misbehaviour("slow-drip", "a valid head, then its body one byte every 100 ms", slow_drip, slow=True),
    Misbehaviour("silence-after-headers", "the head, then silence", silence_after_headers, slow=True),
    Misbehaviour("silence-before-headers", "the request read, then silence", silence_before_headers, slow=True),
    Misbehaviour("endless-pings", "message_start, then pings without end", endless_pings, cases=STREAM_CASES),
    Misbehaviour("endless-deltas", "text deltas without end", endless_deltas, cases=STREAM_CASES),
    Misbehaviour("huge-sse-line", "one 100 MB `data:` line", huge_sse_line, cases=STREAM_CASES),
    Misbehaviour(
        "huge-chunked-stream", "100 MB of pings in chunked transfer coding", huge_chunked_stream, cases=STREAM_CASES
    ),
    Misbehaviour("reset-mid-stream", "a TCP reset after four events", reset_mid_stream, cases=STREAM_CASES),
    # The HTTP layer.
    Misbehaviour("garbage-not-http", "bytes that are not HTTP at all", raw(bytes(range(256)) * 64)),
    Misbehaviour(
        "malformed-status-line", "a status line `HTTP/1.1 2OO OK`", raw(b"HTTP/1.1 2OO OK\r\ncontent-length: 0\r\n\r\n")
    ),
    Misbehaviour(
        "reset-mid-headers",
        "a TCP reset in the middle of the head",
        raw(b"HTTP/1.1 200 OK\r\ncontent-ty", then_reset=True),
    ),
    Misbehaviour("empty-reply", "the connection closed without a byte", raw()),
    Misbehaviour("endless-headers", "header lines without end", endless_headers),
    Misbehaviour(
        "short-body",
        "Content-Length 10000, then 20 bytes and a close",
        raw(head(200, "application/json", "content-length: 10000\r\n") + b'{"type": "message", '),
    ),
    Misbehaviour(
        "redirect-loop",
        "a 307 to itself",
        redirect_to(lambda request: f"/redirect-loop{request.path}"),
    ),
    Misbehaviour(
        "redirect-other-host",
        f"a 307 to another host ({OTHER_HOST})",
        redirect_to(lambda request: f"{OTHER_HOST}{request.path}"),
    ),
    # JSON bodies.
    Misbehaviour(
        "json-nested-1500", "a Message with a field nested 1,500 levels", json_with(nested(1500)), cases=JSON_CASES
    ),
    Misbehaviour(
        "json-nested-100000",
        "a Message with a field nested 100,000 levels",
        json_with(nested(100_000)),
        cases=JSON_CASES,
    ),
    Misbehaviour(
        "json-token-count-digits",
        "usage.input_tokens of 5,000 digits",
        json_with(lambda r: message(r, usage=f'{{"input_tokens": {digits(5000)}, "output_tokens": 3}}').encode()),
        cases=JSON_CASES,
    ),
    Misbehaviour(
        "json-duplicate-keys",
        "a Message with `type`, `role` and `content` twice",
        json_with(
            lambda r: message(r).replace('{"id"', '{"type": "error", "role": "user", "content": 7, "id"', 1).encode()
        ),
        cases=JSON_CASES,
    ),
    Misbehaviour(
        "json-nan-infinity",
        "NaN, Infinity and -Infinity as usage numbers",
        json_with(
            lambda r: message(r, usage='{"input_tokens": NaN, "output_tokens": Infinity, "x": -Infinity}').encode()
        ),
        cases=JSON_CASES,
    ),
    Misbehaviour(
        "json-invalid-utf8",
        "invalid UTF-8 bytes in the text",
        json_with(lambda r: message(r, text="@@").encode().replace(b"@@", b"\xff\xfe\xc3(")),
        cases=JSON_CASES,
    ),
    Misbehaviour("gzip-gzip", "`Content-Encoding: gzip, gzip`, compressed twice", double_gzip, cases=JSON_CASES),
    Misbehaviour("gzip-bomb", f"{BOMB_GIB} GiB of zeros in about {BOMB_GIB} MB of gzip", bomb, cases=JSON_CASES),
    Misbehaviour("huge-json-body", "a 100 MB JSON body with Content-Length", huge_json_body, cases=JSON_CASES),
    # The API key echoed back.
    Misbehaviour(
        "key-in-event-field",
        "the API key as an SSE `event:` name",
        per_request(lambda r: stream_with(f'event: {r.api_key}\ndata: {{"type": "ping"}}\n\n')),
        cases=STREAM_CASES,
    ),
    Misbehaviour(
        "key-in-id-field",
        "the API key as an SSE `id:`",
        per_request(lambda r: stream_with(f"id: {r.api_key}\n")),
        cases=STREAM_CASES,
    ),
    Misbehaviour("key-in-header-name", "the API key as a response header name", per_request(key_in_header_name)),
    Misbehaviour(
        "key-in-header-value",
        "the API key as a response header value",
        per_request(lambda r: raw(valid_answer(r, f"x-echo: {r.api_key}\r\n"))),
    ),
    Misbehaviour(
        "key-in-split-deltas",
        "the API key in the text, split across two deltas",
        per_request(split_key),
        cases=STREAM_CASES,
    ),
    Misbehaviour("key-in-error-message", "the API key quoted in a 401 error message", per_request(key_error)),
    Misbehaviour("echo-request-headers", "every request header echoed as a response header", echo_request_headers),
    # Legal but unusual: every stream check must pass.
    Misbehaviour(
        "legal-cr-line-ends",
        "a valid stream with CR-only line ends",
        stream_with(line_end="\r"),
        LEGAL_CASES,
        legal=True,
    ),
    Misbehaviour(
        "legal-crlf-line-ends",
        "a valid stream with CRLF line ends",
        stream_with(line_end="\r\n"),
        LEGAL_CASES,
        legal=True,
    ),
    Misbehaviour("legal-bom", "a valid stream after a UTF-8 BOM", stream_with("\ufeff"), LEGAL_CASES, legal=True),
    Misbehaviour(
        "legal-comments",
        "a valid stream with comment lines between events",
        stream_with(": a comment\n\n", between=":\n: another comment\n\n"),
        LEGAL_CASES,
        legal=True,
    ),
    Misbehaviour(
        "legal-retry-3000",
        "a valid stream with `retry: 3000`",
        stream_with("retry: 3000\n\n"),
        LEGAL_CASES,
        legal=True,
    ),
)
BY_NAME = {misbehaviour.name: misbehaviour for misbehaviour in CATALOGUE}


# --- forwarding layers in front of the reference server --------------------------------------------

# One request in FLAKY_PERIOD is answered with a fault, the last of each period, so that a retry
# (the next request) is never faulted too.
FLAKY_PERIOD = 5
SLOW_SECONDS = 0.5


def error_answer(status: int, error_type: str, extra: str = "") -> bytes:
    body = json.dumps({"type": "error", "error": {"type": error_type, "message": f"hostile {error_type}"}}).encode()
    return head(status, "application/json", f"content-length: {len(body)}\r\n{extra}") + body


FAULTS = (
    error_answer(429, "rate_limit_error", "retry-after: 0\r\n"),
    error_answer(529, "overloaded_error"),
    b"",  # a reset before any byte
)


def flaky(upstream: str) -> Answer:
    """20% of requests faulted (429 with retry-after 0, 529, a reset, in turn), by request number."""

    async def answer(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
        if request.number % FLAKY_PERIOD != FLAKY_PERIOD - 1:
            await forward(upstream, request, writer)
            return
        fault = FAULTS[request.number // FLAKY_PERIOD % len(FAULTS)]
        if fault:
            await send(writer, [fault])
        else:
            reset(writer)

    return answer


def slow(upstream: str) -> Answer:
    """The reference server's answer, SLOW_SECONDS late."""

    async def answer(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(SLOW_SECONDS)
        await forward(upstream, request, writer)

    return answer


def once(misbehaviour: Answer, upstream: str) -> Answer:
    """The misbehaviour for the first request, the reference server's answer for every later one."""

    async def answer(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
        if request.number == 0:
            await misbehaviour(request, writer)
        else:
            await forward(upstream, request, writer)

    return answer


def answers(reference_url: str) -> dict[str, Answer]:
    """Every answer a HostileServer plays, by name: the catalogue, `once-NAME` of each, and the layers
    `reference` (forwarded as is), `flaky` and `slow` in front of the reference server at `reference_url`."""
    named: dict[str, Answer] = {m.name: m.answer for m in CATALOGUE}
    named |= {f"once-{m.name}": once(m.answer, reference_url) for m in CATALOGUE}
    named |= {"flaky": flaky(reference_url), "slow": slow(reference_url)}
    named["reference"] = lambda request, writer: forward(reference_url, request, writer)
    return named


# --- playing a target against the command -----------------------------------------------------------


def run_argv(base_url: str, api_key: str, out: Path, *extra: str, cases: Iterable[str] = ()) -> list[str]:
    """`conformance run` against `base_url` within the played bounds: `cases` by id, all at once, or
    the selection and concurrency `extra` gives."""
    argv = [sys.executable, "-m", "conformance", "run", "--base-url", base_url, "--api-key", api_key]
    argv += ["--out", str(out), "--max-silence", f"{MAX_SILENCE:g}", "--timeout", f"{TIMEOUT:g}"]
    cases = list(cases)
    if cases:
        argv += ["-k", ",".join(cases), "--concurrency", str(len(cases))]
    return [*argv, *extra]


@dataclass
class Played:
    """What one subprocess run did: exit code (None when the hang guard killed it), wall seconds,
    peak resident memory, and where its console output and reports are."""

    exit_code: int | None
    wall: float
    peak_rss_mb: float
    out: Path
    console: Path

    @property
    def stdout(self) -> str:
        return (self.console / "stdout.txt").read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return (self.console / "stderr.txt").read_text(encoding="utf-8", errors="replace")

    @property
    def report(self) -> Path:
        return self.out / "report.json"

    @property
    def report_bytes(self) -> int:
        return self.report.stat().st_size if self.report.exists() else 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "out": str(self.out), "console": str(self.console)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Played:
        return cls(**{**data, "out": Path(data["out"]), "console": Path(data["console"])})

    def outputs(self) -> list[Path]:
        """Every file the run wrote: its reports and its console output."""
        written = [path for path in sorted(self.out.rglob("*")) if path.is_file()] if self.out.exists() else []
        return [*written, *sorted(self.console.glob("*.txt"))]

    def hits(self, secret: str) -> list[str]:
        """The outputs that contain `secret` (read in chunks: a report may be large)."""
        needle = secret.encode()
        return [str(path) for path in self.outputs() if contains(path, needle)]


def contains(path: Path, needle: bytes, chunk: int = 4 * MIB) -> bool:
    overlap = b""
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            if needle in overlap + block:
                return True
            overlap = block[-len(needle) :]
    return False


def _environment() -> dict[str, str]:
    """The test's environment without any API key the command would pick up by itself."""
    hidden = ("CONFORMANCE_API_KEY", "ANTHROPIC_API_KEY")
    return {name: value for name, value in os.environ.items() if name not in hidden}


def run_measured(
    argv: list[str],
    out: Path,
    console: Path,
    hang_guard: float = HANG_GUARD,
    during: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> Played:
    """Run `argv` to its end (killed after `hang_guard` seconds), `during(process)` meanwhile.

    The peak RSS is the child's own high-water mark, from wait4(2): nothing is sampled or missed.
    """
    console.mkdir(parents=True, exist_ok=True)
    with (console / "stdout.txt").open("wb") as stdout, (console / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=_environment(), cwd=ROOT)
    started = time.monotonic()
    deadline = started + hang_guard
    try:
        if during is not None:
            during(process)
        status, usage = _wait(process.pid, deadline)
    except BaseException:
        process.kill()
        _wait(process.pid, time.monotonic() + HANG_GUARD)
        raise
    wall = time.monotonic() - started
    code = None if status is None else os.waitstatus_to_exitcode(status)
    process.returncode = code if code is not None else -9
    return Played(code, wall, usage.ru_maxrss / 1024, out, console)


def running(process: subprocess.Popen[bytes]) -> bool:
    """Whether the process still runs; unlike Popen.poll() it leaves an ended one to be reaped by wait4."""
    return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None


def _wait(pid: int, deadline: float) -> tuple[int | None, Any]:
    """Reap `pid`: (wait status, rusage), or (None, rusage) when it was killed at the deadline."""
    while time.monotonic() < deadline:
        reaped, status, usage = os.wait4(pid, os.WNOHANG)
        if reaped:
            return status, usage
        time.sleep(0.02)
    os.kill(pid, 9)
    _, _, usage = os.wait4(pid, 0)
    return None, usage


def play(misbehaviour: Misbehaviour, base_url: str, api_key: str, work: Path) -> Played:
    """`conformance run` of the misbehaviour's cases against it, measured; reports in work/out."""
    out = work / "out"
    return run_measured(run_argv(base_url, api_key, out, cases=misbehaviour.cases), out, work / "console")


def play_all(
    misbehaviours: Iterable[Misbehaviour], url: Callable[[str], str], api_key: str, work: Path, jobs: int = 4
) -> dict[str, Played]:
    """`play()` each misbehaviour (its reports in work/NAME), `jobs` runs at a time; by name, in order.

    Most of a hostile run is waiting (a silence, a drip, a timeout), so runs overlap well."""
    with ThreadPoolExecutor(jobs) as pool:
        running = {m.name: pool.submit(play, m, url(m.name), api_key, work / m.name) for m in misbehaviours}
    return {name: future.result() for name, future in running.items()}


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity, as every other JSON reader does."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def problems(
    played: Played, secrets: Iterable[str], exit_codes: tuple[int, ...] = (0, 1), must_pass: bool = False
) -> list[str]:
    """Everything a played run did that no answer may cause, one line each; [] when it held up.
    `must_pass`: the answer was legal, so every case must have passed (and the exit code be 0)."""
    if must_pass:
        exit_codes = (0,)
    found = []
    if played.exit_code is None:
        found.append(f"hung: killed after {HANG_GUARD:g} s")
    elif played.exit_code not in exit_codes:
        said = _last_line(played.stderr)
        expected = " or ".join(map(str, exit_codes))
        found.append(f"exit code {played.exit_code} (expected {expected})" + (f": {said}" if said else ""))
    for name, text in (("stdout", played.stdout), ("stderr", played.stderr)):
        if "Traceback" in text:
            found.append(f"a traceback on {name}: {_last_line(text)}")
    if played.peak_rss_mb > MAX_RSS_MB:
        found.append(f"peak RSS {played.peak_rss_mb:.0f} MB (bound {MAX_RSS_MB} MB)")
    for path in played.outputs():
        if path.stat().st_size > MAX_FILE_BYTES:
            found.append(f"{path.name} is {path.stat().st_size / MIB:.0f} MB (bound {MAX_FILE_BYTES // MIB} MB)")
    for number, secret in enumerate(secrets, 1):
        if hits := played.hits(secret):
            found.append(f"secret {number} leaked into {', '.join(Path(hit).name for hit in hits)}")
    return found + report_problems(played.report, must_pass)


def report_problems(path: Path, must_pass: bool = False) -> list[str]:
    """What is wrong with a run's report.json: missing, not strict JSON, a case left unexplained
    (or, with `must_pass`, a case that did not pass)."""
    if not path.exists():
        return ["no report.json"]
    try:
        report = strict_json(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"report.json is not strict JSON: {str(exc)[:200]}"]
    found = []
    for result in report.get("results", []):
        if result.get("outcome") == "passed":
            continue
        reason = explanation(result)
        if must_pass:
            found.append(f"{result.get('id')} is {result.get('outcome')} on a legal answer: {reason[:200]}")
        if not reason:
            found.append(f"{result.get('id')} is {result.get('outcome')} without a finding or reason")
        elif "\n" in reason or len(reason) > MAX_REASON_CHARS:
            found.append(f"{result.get('id')}: its reason is not one sentence ({len(reason)} characters)")
    return found


def explanation(result: dict[str, Any]) -> str:
    """Why a case did not pass: its reason, else its first failing finding, else a transport error."""
    findings = [f.get("message", "") for f in result.get("findings", []) if f.get("severity") == "failure"]
    errors = [exchange.get("error") or "" for exchange in result.get("exchanges", [])]
    return next((text for text in [result.get("reason") or "", *findings, *errors] if text), "")


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1][:200] if lines else ""
