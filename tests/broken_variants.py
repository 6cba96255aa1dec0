"""The reference server, broken on purpose the way real gateways broke real clients.

Each variant wraps `conformance.reference.create_app()` in an ASGI middleware with one defect of
docs/reference/bug-patterns.md: it rewrites the request before the reference app sees it, answers in its
place, or rewrites the answer (a JSON body, or the SSE events one by one as they pass, so the
timing of a stream is kept). VARIANTS says, per bug pattern, which cases must catch the variant
and by which checks; tests/test_bug_patterns.py runs them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformance.model import Outcome
from conformance.reference import create_app

API_KEY = "broken-variant-key"
KNOWN_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    }
)


# --------------------------------------------------------------------------- SSE frames


@dataclass
class Frame:
    """One SSE event as it passes through; `raw` (when set) is sent instead of the usual encoding."""

    event: str | None
    data: str
    raw: bytes | None = None

    @classmethod
    def of(cls, payload: dict[str, Any], name: str | None = "") -> Frame:
        return cls(payload.get("type") if name == "" else name, json.dumps(payload, separators=(",", ":")))

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.data)
        except ValueError:
            return None

    @property
    def type(self) -> str | None:
        payload = self.json
        return payload.get("type") if isinstance(payload, dict) else None

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        head = f"event: {self.event}\n" if self.event is not None else ""
        return f"{head}data: {self.data}\n\n".encode()


def _parse_frame(block: bytes) -> Frame:
    event, data = None, []
    for line in block.decode().split("\n"):
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    return Frame(event, "\n".join(data))


# --------------------------------------------------------------------------- the middleware


class Reply(Exception):
    """Raised by a request hook to answer in the reference app's place."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


class Broken:
    """The reference app with hooks a variant overrides; by default every hook passes things on.

    - `request(path, headers, body)` returns the (headers, body) the reference app sees, or raises Reply;
    - `json(path, status, body)` returns the (status, body) of a JSON answer;
    - `frames(path, frames)` turns the stream of SSE frames into another, lazily (timing is kept).
    Header names are lower case; `headers` is a list of (name, value) pairs, so a header may repeat.
    """

    def __init__(self, app: ASGIApp | None = None) -> None:
        self.app = app if app is not None else create_app(API_KEY)

    def request(self, path: str, headers: list[tuple[str, str]], body: Any) -> tuple[list[tuple[str, str]], Any]:
        return headers, body

    def json(self, path: str, status: int, body: Any) -> tuple[int, Any]:
        return status, body

    def frames(self, path: str, frames: Iterator[Frame]) -> Iterator[Frame]:
        return frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        # Asked for identity, so that the answers can be rewritten (the reference app gzips large JSON).
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope["headers"]
            if name.lower() != b"accept-encoding"
        ]
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw  # not JSON: passed on as it is
        try:
            headers, body = self.request(path, headers, copy.deepcopy(body))
        except Reply as reply:
            await _send_json(send, reply.status, reply.body, reply.headers)
            return
        content = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
        headers = [(k, v) for k, v in headers if k != "content-length"] + [("content-length", str(len(content)))]
        scope = {**scope, "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]}
        sent = False

        async def replay() -> Message:
            """The rewritten body once, then whatever the client's connection says (a disconnect)."""
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": content, "more_body": False}

        await self.app(scope, replay, _Rewriter(self, path, send))


class _Rewriter:
    """The `send` the reference app talks to: JSON bodies are buffered and rewritten, streams rewritten per event."""

    def __init__(self, variant: Broken, path: str, send: Send) -> None:
        self.variant, self.path, self.send = variant, path, send
        self.start: Message | None = None
        self.buffer = b""
        self.stream = False
        self.pending: list[Frame] = []
        self.output: Iterator[Frame] | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            content_type = dict(message["headers"]).get(b"content-type", b"")
            self.stream = content_type.startswith(b"text/event-stream")
            if self.stream:
                await self.send(message)
                self.output = self.variant.frames(self.path, self._incoming())
            return
        if message["type"] != "http.response.body":
            await self.send(message)
            return
        self.buffer += message.get("body", b"")
        more = message.get("more_body", False)
        if self.stream:
            await self._pump(final=not more)
        elif not more:
            await self._finish_json()

    def _incoming(self) -> Iterator[Frame]:
        """Frames as they arrive; the generator pauses when none is pending (see _pump)."""
        while True:
            while self.pending:
                yield self.pending.pop(0)
            if self.buffer is None:
                return
            yield _WAIT

    async def _pump(self, final: bool) -> None:
        while b"\n\n" in self.buffer:
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            self.pending.append(_parse_frame(block))
        if final:
            self.buffer = None  # type: ignore[assignment]
        assert self.output is not None
        for frame in self.output:
            if frame is _WAIT:
                if not final:
                    break
                continue
            await self.send({"type": "http.response.body", "body": frame.encode(), "more_body": True})
        if final:
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _finish_json(self) -> None:
        assert self.start is not None
        status = self.start["status"]
        try:
            body: Any = json.loads(self.buffer)
        except ValueError:
            body = None
        if body is None:
            await self.send(self.start)
            await self.send({"type": "http.response.body", "body": self.buffer})
            return
        status, body = self.variant.json(self.path, status, body)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.start["headers"]}
        await _send_json(self.send, status, body, headers)


_WAIT = Frame(None, "")  # a marker: no frame available yet


async def _send_json(send: Send, status: int, body: Any, headers: dict[str, str]) -> None:
    content = json.dumps(body).encode()
    kept = [(k.encode(), v.encode()) for k, v in headers.items() if k.lower() not in ("content-length", "content-type")]
    kept += [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": kept})
    await send({"type": "http.response.body", "body": content})


# --------------------------------------------------------------------------- helpers for variants


def per_event(change: Callable[[dict[str, Any]], list[dict[str, Any]] | None]) -> type[Broken]:
    """A variant that maps every event payload to a list of payloads (None: keep it as it is)."""

    class PerEvent(Broken):
        def frames(self, path: str, frames: Iterator[Frame]) -> Iterator[Frame]:
            for frame in frames:
                payload = frame.json
                result = change(payload) if isinstance(payload, dict) and frame is not _WAIT else None
                if result is None:
                    yield frame
                else:
                    yield from (Frame.of(item) for item in result)

    return PerEvent


def each_message(body: Any) -> Iterator[dict[str, Any]]:
    if isinstance(body, dict) and isinstance(body.get("messages"), list):
        yield from (message for message in body["messages"] if isinstance(message, dict))


def each_block(body: Any, role: str | None = None) -> Iterator[dict[str, Any]]:
    for message in each_message(body):
        if (role is None or message.get("role") == role) and isinstance(message.get("content"), list):
            yield from (block for block in message["content"] if isinstance(block, dict))


def anthropic_error(status: int, kind: str, message: str) -> Reply:
    return Reply(status, {"type": "error", "error": {"type": kind, "message": message}, "request_id": None})


def _usage_halved(usage: Any) -> None:
    if isinstance(usage, dict) and isinstance(usage.get("input_tokens"), int):
        usage["input_tokens"] //= 2


# --------------------------------------------------------------------------- A. framing and order


class DropBlockStop(Broken):
    def frames(self, path, frames):
        return (frame for frame in frames if frame.type != "content_block_stop")


class DropBlockStart(Broken):
    def frames(self, path, frames):
        return (frame for frame in frames if frame.type != "content_block_start")


class OverlappingBlocks(Broken):
    """Each content_block_stop is held back until the next block has started."""

    def frames(self, path, frames):
        held: Frame | None = None
        for frame in frames:
            if frame.type == "content_block_stop":
                held = frame
                continue
            yield frame
            if held is not None and frame.type in ("content_block_start", "message_delta"):
                yield held
                held = None


def _thinking_delta_in_text(event: dict[str, Any]) -> list[dict[str, Any]] | None:
    delta = event.get("delta") if event.get("type") == "content_block_delta" else None
    if not isinstance(delta, dict) or delta.get("type") != "text_delta":
        return None
    return [{**event, "delta": {"type": "thinking_delta", "thinking": delta["text"]}}]


ThinkingDeltaInText = per_event(_thinking_delta_in_text)
DuplicateMessageStart = per_event(lambda event: [event, event] if event.get("type") == "message_start" else None)


class ToolBlockPerChunk(Broken):
    """Every input_json_delta of a tool call becomes a block of its own (the id repeated on each)."""

    def frames(self, path, frames):
        shift, tool_start = 0, None
        for frame in frames:
            payload = frame.json if frame is not _WAIT else None
            kind = payload.get("type") if isinstance(payload, dict) else None
            if kind in ("content_block_start", "content_block_delta", "content_block_stop"):
                payload = {**payload, "index": payload["index"] + shift}
            if kind == "content_block_start" and payload["content_block"].get("type") == "tool_use":
                tool_start, chunks = payload, 0
                continue
            if tool_start is not None and kind == "content_block_delta":
                index = tool_start["index"] + chunks
                yield Frame.of({**tool_start, "index": index})
                yield Frame.of({**payload, "index": index})
                yield Frame.of({"type": "content_block_stop", "index": index})
                chunks += 1
                continue
            if tool_start is not None and kind == "content_block_stop":
                shift += max(chunks - 1, 0)
                tool_start = None
                continue
            yield Frame.of(payload) if kind else frame


class DropFirstDeltaAfterTransition(Broken):
    """The first delta of every block after the first is lost."""

    def frames(self, path, frames):
        dropped: set[int] = set()
        for frame in frames:
            payload = frame.json if frame is not _WAIT else None
            if isinstance(payload, dict) and payload.get("type") == "content_block_delta":
                index = payload.get("index", 0)
                if index > 0 and index not in dropped:
                    dropped.add(index)
                    continue
            yield frame


class DoneSentinel(Broken):
    def frames(self, path, frames):
        for frame in frames:
            yield frame
            if frame.type == "message_stop":
                yield Frame(None, "[DONE]")


def _text_start_without_text(event: dict[str, Any]) -> list[dict[str, Any]] | None:
    block = event.get("content_block") if event.get("type") == "content_block_start" else None
    if not isinstance(block, dict) or block.get("type") != "text":
        return None
    return [{**event, "content_block": {key: value for key, value in block.items() if key != "text"}}]


TextStartWithoutText = per_event(_text_start_without_text)


class DropUnknownEvents(Broken):
    def frames(self, path, frames):
        return (frame for frame in frames if frame is _WAIT or frame.type in KNOWN_EVENTS)


# --------------------------------------------------------------------------- B. tool use streaming

DropInputJsonDelta = per_event(
    lambda event: [] if (event.get("delta") or {}).get("type") == "input_json_delta" else None
)


def _empty_input_json_delta(event: dict[str, Any]) -> list[dict[str, Any]] | None:
    block = event.get("content_block") if event.get("type") == "content_block_start" else None
    if not isinstance(block, dict) or block.get("type") != "text":
        return None
    empty = {
        "type": "content_block_delta",
        "index": event["index"],
        "delta": {"type": "input_json_delta", "partial_json": ""},
    }
    return [event, empty]


EmptyInputJsonDeltaInText = per_event(_empty_input_json_delta)


class ServerErrorOnBadToolInput(Broken):
    """An unguarded json.loads of tool input: a tool_use whose input is not an object crashes the gateway."""

    def request(self, path, headers, body):
        if any(
            block.get("type") == "tool_use" and not isinstance(block.get("input"), dict) for block in each_block(body)
        ):
            raise Reply(500, {"detail": "Internal Server Error"})
        return headers, body


# --------------------------------------------------------------------------- C. usage


def _zero_start_usage(event: dict[str, Any]) -> list[dict[str, Any]] | None:
    if event.get("type") != "message_start":
        return None
    event = copy.deepcopy(event)
    event["message"]["usage"].update(input_tokens=0, output_tokens=0, cache_creation_input_tokens=0)
    return [event]


ZeroUsageAtStart = per_event(_zero_start_usage)


class HalvedInputTokens(Broken):
    """input_tokens reported as prompt tokens minus an imagined cache hit: half of what was read."""

    def json(self, path, status, body):
        if isinstance(body, dict) and body.get("type") == "message":
            _usage_halved(body.get("usage"))
        return status, body


# --------------------------------------------------------------------------- D. thinking


class DropSignatureDelta(Broken):
    def frames(self, path, frames):
        return (frame for frame in frames if (frame.json or {}).get("delta", {}).get("type") != "signature_delta")


class EmptySignature(Broken):
    def json(self, path, status, body):
        for block in body.get("content") or [] if isinstance(body, dict) else []:
            if block.get("type") == "thinking":
                block["signature"] = ""
        return status, body


class DropThinkingFromHistory(Broken):
    def request(self, path, headers, body):
        for message in each_message(body):
            if message.get("role") == "assistant" and isinstance(message.get("content"), list):
                kept = [b for b in message["content"] if b.get("type") not in ("thinking", "redacted_thinking")]
                message["content"] = kept
        return headers, body


class ReencodedSignature(Broken):
    """Signatures re-encoded on the way (base64 padding stripped): no longer the bytes the API issued."""

    def request(self, path, headers, body):
        for block in each_block(body, "assistant"):
            if block.get("type") == "thinking" and isinstance(block.get("signature"), str):
                block["signature"] = block["signature"].rstrip("=")
        return headers, body


class ThinkingAsText(Broken):
    """Replayed thinking restructured for another backend: each thinking block becomes a text block."""

    def request(self, path, headers, body):
        for block in each_block(body, "assistant"):
            if block.get("type") == "thinking":
                text = block.pop("thinking")
                block.pop("signature", None)
                block.update(type="text", text=text or "(thinking)")
        return headers, body


class ThinkingMovedLast(Broken):
    def request(self, path, headers, body):
        for message in each_message(body):
            if message.get("role") == "assistant" and isinstance(message.get("content"), list):
                content = message["content"]
                message["content"] = [b for b in content if b.get("type") != "thinking"] + [
                    b for b in content if b.get("type") == "thinking"
                ]
        return headers, body


# --------------------------------------------------------------------------- E. stop reasons


class StopSequenceDropped(Broken):
    """A matched stop sequence reported as an ordinary end of turn."""

    def json(self, path, status, body):
        if isinstance(body, dict) and body.get("stop_reason") == "stop_sequence":
            body.update(stop_reason="end_turn", stop_sequence=None)
        return status, body

    def frames(self, path, frames):
        for frame in frames:
            delta = (frame.json or {}).get("delta") if frame.type == "message_delta" else None
            if isinstance(delta, dict) and delta.get("stop_reason") == "stop_sequence":
                payload = frame.json
                payload["delta"].update(stop_reason="end_turn", stop_sequence=None)
                frame = Frame.of(payload)
            yield frame


NEWER_STOP_REASONS = ("pause_turn", "refusal", "model_context_window_exceeded")


class NewerStopReasonsMapped(Broken):
    """Stop reasons the gateway does not know become "stop_sequence" (as an Ollama mapping did)."""

    def json(self, path, status, body):
        if isinstance(body, dict) and body.get("stop_reason") in NEWER_STOP_REASONS:
            body["stop_reason"] = "stop_sequence"
        return status, body

    def frames(self, path, frames):
        for frame in frames:
            payload = frame.json if frame.type == "message_delta" else None
            if isinstance(payload, dict) and payload["delta"].get("stop_reason") in NEWER_STOP_REASONS:
                payload["delta"]["stop_reason"] = "stop_sequence"
                frame = Frame.of(payload)
            yield frame


# --------------------------------------------------------------------------- F. error envelopes


class OpenAIErrors(Broken):
    def json(self, path, status, body):
        if status >= 400 and isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            body = {"error": {"message": error.get("message"), "type": error.get("type"), "code": None, "param": None}}
        return status, body


class ErrorTypeNotInEnum(Broken):
    def json(self, path, status, body):
        if status >= 400 and isinstance(body, dict) and isinstance(body.get("error"), dict):
            body["error"]["type"] = "error"
        return status, body


def _masked_error(event: dict[str, Any]) -> list[dict[str, Any]] | None:
    if event.get("type") != "error":
        return None
    masked = {"type": "invalid_request_error", "message": "1 validation error for MessageStreamEvent"}
    return [{**event, "error": masked}]


MidStreamErrorMasked = per_event(_masked_error)
MidStreamErrorSwallowed = per_event(
    lambda event: (
        [
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 1},
            },
            {"type": "message_stop"},
        ]
        if event.get("type") == "error"
        else None
    )
)


class AbruptCloseOnError(Broken):
    """An error after the headers went out is raised as an exception: the connection just breaks."""

    def frames(self, path, frames):
        for frame in frames:
            if frame.type == "error":
                raise ConnectionAbortedError("upstream failed mid-stream")
            yield frame


# --------------------------------------------------------------------------- G. headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key == name), None)


ALLOWED_BETAS = frozenset({"prompt-caching-2024-07-31", "interleaved-thinking-2025-05-14"})


class StrictBetaAllowList(Broken):
    """Betas outside a fixed list are refused, as some backends refuse what they do not know."""

    def request(self, path, headers, body):
        values = [v.strip() for k, value in headers if k == "anthropic-beta" for v in value.split(",") if v.strip()]
        unknown = [value for value in values if value not in ALLOWED_BETAS]
        if unknown:
            names = ", ".join(f"`{value}`" for value in unknown)
            raise anthropic_error(
                400, "invalid_request_error", f"Unexpected value(s) {names} for the `anthropic-beta` header."
            )
        return headers, body


class BetaStripped(Broken):
    def request(self, path, headers, body):
        return [(k, v) for k, v in headers if k != "anthropic-beta"], body


class VersionAddedTwice(Broken):
    """The gateway adds its own anthropic-version next to the client's: upstream reads both."""

    def request(self, path, headers, body):
        return [*headers, ("anthropic-version", "2023-06-01")], body


class VersionNeverChecked(Broken):
    """The client's anthropic-version is never read: the gateway always sends its own upstream."""

    def request(self, path, headers, body):
        return [(k, v) for k, v in headers if k != "anthropic-version"] + [("anthropic-version", "2023-06-01")], body


class BearerRejected(Broken):
    def request(self, path, headers, body):
        if _header(headers, "x-api-key") is None:
            raise anthropic_error(401, "authentication_error", "x-api-key header is required")
        return headers, body


# --------------------------------------------------------------------------- H. count_tokens


class NoCountTokens(Broken):
    def request(self, path, headers, body):
        if path.endswith("/count_tokens"):
            raise Reply(404, {"detail": "Not Found"})
        return headers, body


class CountTokensIgnoresToolBlocks(Broken):
    """count_tokens counts text only: tool_use and tool_result blocks are dropped before counting."""

    def request(self, path, headers, body):
        if path.endswith("/count_tokens"):
            for message in each_message(body):
                if isinstance(message.get("content"), list):
                    kept = [b for b in message["content"] if b.get("type") not in ("tool_use", "tool_result")]
                    message["content"] = kept or "(tool exchange)"
        return headers, body


# --------------------------------------------------------------------------- I. validation


def _has_ttl_1h(value: Any) -> bool:
    if isinstance(value, dict):
        if value.get("ttl") == "1h":
            return True
        return any(_has_ttl_1h(item) for item in value.values())
    return isinstance(value, list) and any(_has_ttl_1h(item) for item in value)


class CacheTtlRejected(Broken):
    def request(self, path, headers, body):
        if _has_ttl_1h(body):
            raise Reply(400, {"error": "cache_control.ttl: 1h is not supported"})
        return headers, body


class InputExamplesRejected(Broken):
    def request(self, path, headers, body):
        for index, tool in enumerate((body or {}).get("tools") or []):
            if "input_examples" in tool:
                message = f"tools.{index}.custom.input_examples: Extra inputs are not permitted"
                raise anthropic_error(400, "invalid_request_error", message)
        return headers, body


class EmptyMessagesAccepted(Broken):
    def request(self, path, headers, body):
        if isinstance(body, dict) and body.get("messages") == []:
            body["messages"] = [{"role": "user", "content": "Hello."}]
        return headers, body


class ServerErrorOnUnsupportedImage(Broken):
    def request(self, path, headers, body):
        for block in each_block(body):
            source = block.get("source") if block.get("type") == "image" else None
            if isinstance(source, dict) and source.get("media_type") not in (
                None,
                "image/png",
                "image/jpeg",
                "image/gif",
                "image/webp",
            ):
                raise anthropic_error(500, "api_error", "Internal server error")
        return headers, body


# --------------------------------------------------------------------------- J. keepalive


class DropPings(Broken):
    def frames(self, path, frames):
        return (frame for frame in frames if frame is _WAIT or frame.type != "ping")


class PingInsideEvent(Broken):
    """A keepalive spliced into the middle of another event's lines (between its event: and data:)."""

    def frames(self, path, frames):
        for frame in frames:
            if frame.type == "content_block_delta":
                ping = b'event: ping\ndata: {"type": "ping"}\n\n'
                frame = Frame(
                    frame.event,
                    frame.data,
                    raw=f"event: {frame.event}\n".encode() + ping + f"data: {frame.data}\n\n".encode(),
                )
            yield frame


# --------------------------------------------------------------------------- K. allowed, not what the API does
# Behaviour the docs allow but do not promise: a target doing it gets warnings, not failures
# (docs/reference/verdicts.md), except in the cases written for what the docs do promise.


def _without_null_stop_sequence(holder: Any) -> None:
    if isinstance(holder, dict) and "stop_sequence" in holder and holder["stop_sequence"] is None:
        del holder["stop_sequence"]


def _null_stop_sequence_dropped(event: dict[str, Any]) -> list[dict[str, Any]] | None:
    if event.get("type") not in ("message_start", "message_delta"):
        return None
    _without_null_stop_sequence(event.get("message") if event["type"] == "message_start" else event.get("delta"))
    return [event]


class NullStopSequenceDropped(per_event(_null_stop_sequence_dropped)):
    """`stop_sequence: null` left out, in a Message and in message_start and message_delta (as Go omitempty does)."""

    def json(self, path, status, body):
        _without_null_stop_sequence(body)
        return status, body


class HeadersDropped:
    """An ASGI middleware that drops response headers by name (lower case), as some proxies do."""

    def __init__(self, app: ASGIApp, names: frozenset[str]) -> None:
        self.app, self.names = app, names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def without(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.decode("latin-1").lower() not in self.names]
                message = {**message, "headers": kept}
            await send(message)

        await self.app(scope, receive, without)


def lax_target() -> ASGIApp:
    """Everything the docs allow at once: no pings, no request-id, no retry-after, null stop_sequence left out."""

    class Lax(NullStopSequenceDropped):
        def frames(self, path, frames):
            return DropPings.frames(self, path, super().frames(path, frames))

    return HeadersDropped(Lax(), frozenset({"request-id", "retry-after"}))


# --------------------------------------------------------------------------- what must catch each


@dataclass(frozen=True)
class Catch:
    """A variant for a bug pattern, the cases to run against it, and how each must end.

    Every case must end with `outcome`; when it fails (or warns), one of `checks` must be among its failure
    (or warning) findings.
    """

    pattern: int
    variant: type[Broken]
    cases: tuple[str, ...]
    checks: tuple[str, ...] = ()
    outcome: Outcome = Outcome.FAILED
    note: str = field(default="", compare=False)


VARIANTS: tuple[Catch, ...] = (
    Catch(1, DropBlockStop, ("streaming.text",), ("stream.grammar",)),
    Catch(2, DropBlockStart, ("streaming.text",), ("stream.grammar",)),
    Catch(3, OverlappingBlocks, ("content.thinking-stream", "streaming.tool-use-after-text"), ("stream.grammar",)),
    Catch(4, ThinkingDeltaInText, ("streaming.text",), ("stream.grammar",)),
    Catch(5, DuplicateMessageStart, ("streaming.text",), ("stream.grammar",)),
    Catch(
        6,
        ToolBlockPerChunk,
        ("tools.streaming-tool-use",),
        ("reassembly", "semantics.tool-use", "expect.tool_use_count"),
    ),
    Catch(7, DropFirstDeltaAfterTransition, ("streaming.tool-use-after-text",), ("reassembly",)),
    Catch(8, DoneSentinel, ("streaming.text",), ("stream.done-sentinel",)),
    Catch(11, TextStartWithoutText, ("streaming.text",), ("schema.stream-event",)),
    Catch(13, DropUnknownEvents, ("streaming.unknown-event",), ("expect.event_types_include",)),
    Catch(14, DropInputJsonDelta, ("tools.streaming-tool-use",), ("reassembly",)),
    Catch(15, EmptyInputJsonDeltaInText, ("streaming.text",), ("stream.grammar",)),
    Catch(19, ServerErrorOnBadToolInput, ("errors.tool-use-input-not-an-object",), ("expect.status",)),
    Catch(20, ZeroUsageAtStart, ("streaming.text",), ("semantics.usage",)),
    Catch(21, HalvedInputTokens, ("count_tokens.matches-usage",), ("expect.input_tokens_near_step",)),
    Catch(22, DropThinkingFromHistory, ("thinking.tool-round-trip",), ("expect.status",)),
    Catch(23, ReencodedSignature, ("content.thinking-round-trip", "thinking.tool-round-trip"), ("expect.status",)),
    Catch(24, DropSignatureDelta, ("content.thinking-stream",), ("stream.grammar",)),
    Catch(24, EmptySignature, ("thinking.enabled-json",), ("semantics.thinking-signature",)),
    Catch(25, ThinkingAsText, ("thinking.tool-round-trip",), ("expect.status",)),
    Catch(26, ThinkingMovedLast, ("thinking.tool-round-trip",), ("expect.status",)),
    Catch(28, StopSequenceDropped, ("text.stop-sequence", "streaming.stop-sequence"), ("expect.stop_reason",)),
    Catch(
        29, NewerStopReasonsMapped, ("stop_reasons.refusal", "stop_reasons.pause-turn-stream"), ("expect.stop_reason",)
    ),
    Catch(30, OpenAIErrors, ("errors.missing-max-tokens", "errors.overloaded"), ("errors.envelope",)),
    Catch(31, ErrorTypeNotInEnum, ("errors.missing-max-tokens",), ("schema.error",)),
    Catch(32, MidStreamErrorMasked, ("errors.mid-stream-overloaded",), ("expect.stream_error",)),
    Catch(32, MidStreamErrorSwallowed, ("errors.mid-stream-overloaded",), ("expect.stream_error",)),
    Catch(33, AbruptCloseOnError, ("errors.mid-stream-overloaded",), ("expect.stream_error",)),
    Catch(34, StrictBetaAllowList, ("headers.beta-claude-code",), ("expect.status",)),
    Catch(
        35,
        BetaStripped,
        ("headers.beta-pass-through",),
        outcome=Outcome.UNSUPPORTED,
        note="a beta the target does not pass on is a clean refusal of an optional feature",
    ),
    Catch(36, VersionAddedTwice, ("text.string-content", "headers.x-api-key-auth"), ("expect.status",)),
    Catch(37, VersionNeverChecked, ("headers.missing-version", "headers.invalid-version"), ("expect.status",)),
    Catch(38, BearerRejected, ("headers.bearer-auth",), ("expect.status",)),
    Catch(39, NoCountTokens, ("count_tokens.basic",), ("expect.status",)),
    Catch(
        41,
        CountTokensIgnoresToolBlocks,
        ("count_tokens.grows-with-tool-result", "count_tokens.grows-with-tool-use"),
        ("expect.input_tokens_above_step",),
    ),
    Catch(42, CacheTtlRejected, ("caching.system-1h", "caching.tool-1h"), ("errors.envelope",)),
    Catch(43, InputExamplesRejected, ("tools.input-examples",), ("expect.status",)),
    Catch(44, EmptyMessagesAccepted, ("errors.empty-messages",), ("expect.status",)),
    Catch(44, ServerErrorOnUnsupportedImage, ("errors.image-unsupported-media-type",), ("expect.status",)),
    Catch(
        45,
        DropPings,
        ("streaming.keepalive", "streaming.pings"),
        ("expect.max_event_gap", "expect.min_events"),
        outcome=Outcome.WARNING,
        note="streams may include pings, the docs do not promise them: a stream without any is a warning",
    ),
    Catch(45, PingInsideEvent, ("streaming.text",), ("stream.grammar",)),
)
