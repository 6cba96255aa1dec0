"""The stream grammar: an explicit state machine over the SSE events of a Messages stream.

    stream   := ping* message_start body message_delta+ message_stop        (nothing after it)
              | ping* message_start(complete) body message_delta* message_stop
              | ... error                                                    (error ends a stream)
    body     := block*            block i := content_block_start(i) content_block_delta(i)* content_block_stop(i)

with `ping` allowed between any two events, block indexes in order and never overlapping, every
delta of a type its block takes, and each thinking block signed. Block indexes start after the
content message_start already holds (0 when it holds none, as usual): those blocks are complete
and take no block events. A message_start whose message already has a stop_reason is complete
(the real API answers so when code execution calls a client tool: the tool_use is in
message_start, followed directly by message_stop), so no message_delta has to follow. Unknown
event types are tolerated (and noted by stream.unknown-event). Payload fields are the schema
checks' business; this module judges order and structure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformance import contract
from conformance.checks.common import (
    Collector,
    check,
    describe,
    fold,
    is_done_sentinel,
    longest_silence,
    program_caller,
    response,
    short,
    stream_events,
)
from conformance.model import Exchange, Finding, Severity, SSEEvent

GRAMMAR = "stream.grammar"

# Which delta types each known block type takes. Block types not listed are tolerated with any delta.
BLOCK_DELTAS: dict[str, frozenset[str]] = {
    "text": frozenset({"text_delta", "citations_delta"}),
    "thinking": frozenset({"thinking_delta", "signature_delta"}),
    "redacted_thinking": frozenset(),
    "tool_use": frozenset({"input_json_delta"}),
    "server_tool_use": frozenset({"input_json_delta"}),
    "web_search_tool_result": frozenset(),
}
# The field that carries each known delta's payload.
DELTA_PAYLOAD = {
    "text_delta": "text",
    "input_json_delta": "partial_json",
    "thinking_delta": "thinking",
    "signature_delta": "signature",
    "citations_delta": "citation",
}


@dataclass
class _Block:
    index: int
    kind: str | None
    started_at: int
    stopped_at: int | None = None
    signatures: int = 0
    signed_at_start: bool = False
    # True for a block that arrived complete in message_start's content.
    in_message_start: bool = False


class _Grammar:
    """Feed events in order; collect findings. One instance judges one stream."""

    def __init__(self) -> None:
        self.out = Collector(GRAMMAR)
        self.started_at: int | None = None
        self.before_start: list[tuple[int, SSEEvent]] = []
        self.blocks: dict[int, _Block] = {}
        self.open: dict[int, _Block] = {}
        self.next_index = 0
        self.message_deltas = 0
        # message_start's message already had a stop_reason: no message_delta needs to follow.
        self.complete_at_start = False
        self.terminal: tuple[int, str] | None = None
        self.last: tuple[int, SSEEvent] | None = None
        self.reported_open: set[int] = set()

    # -- entry points -------------------------------------------------------------------------

    def feed(self, index: int, event: SSEEvent) -> None:
        if is_done_sentinel(event):
            return  # stream.done-sentinel reports it
        kind = self._framing(index, event)
        if kind is None:
            return
        self.last = (index, event)
        if self.terminal is not None:
            self._after_terminal(index, event, *self.terminal)
            return
        if kind == "ping":
            return
        if kind == "error":
            self.terminal = (index, "error")
            return
        if kind == "message_start":
            self._message_start(index, event.json)
            return
        handler = self._HANDLERS.get(kind)
        if handler is None:
            return  # an unknown event type: tolerated
        if self.started_at is None:
            self.before_start.append((index, event))
        handler(self, index, event.json)

    def finish(self, truncated: bool) -> list[Finding]:
        if self.started_at is None:
            if self.terminal is None or self.before_start:
                self.out.add("the stream has no message_start event", "stream.order")
        elif self.before_start:
            index, event = self.before_start[0]
            self.out.add(
                f"message_start (event {self.started_at}) is not the first event: "
                f"{describe(index, event)} came before it",
                "stream.order",
            )
        if self.terminal is None and not truncated:
            last = describe(*self.last) if self.last else "no event"
            self.out.add(f"the stream ended without message_stop (the last event was {last})", "stream.order")
        return self.out.findings()

    # -- framing ------------------------------------------------------------------------------

    def _framing(self, index: int, event: SSEEvent) -> str | None:
        """The payload's type, after checking the event is a JSON object with a type matching its name."""
        if not isinstance(event.json, dict):
            reason = event.json_error or f"it is a JSON {type(event.json).__name__}, not an object"
            self.out.add(
                f"event {index}: data is not a JSON object ({reason}): {short(event.data, 80)}",
                "stream.format",
                key="not-json",
                where=f"event {index}",
            )
            return None
        kind = event.type
        if kind is None:
            self.out.add(
                f"event {index}: data has no string `type`: {short(event.json, 160)}",
                "stream.format",
                key="no-type",
                where=f"event {index}",
            )
            return None
        if event.event is None:
            # The official SDKs dispatch on the event name and skip unnamed events: this one is lost.
            # A ping spliced into the middle of another event's lines also shows up here.
            self.out.add(
                f"event {index}: no `event:` line for this {kind} event; the SDKs skip events without a name, "
                "so clients never see it",
                "stream.format",
                key="no-name",
                where=f"event {index}",
            )
        elif event.event != kind:
            self.out.add(
                f"event {index}: the SSE event name {event.event!r} differs from data.type {kind!r}",
                "stream.format",
                key=("name", event.event, kind),
                where=f"event {index}",
            )
        return kind

    def _after_terminal(self, index: int, event: SSEEvent, at: int, what: str) -> None:
        self.out.add(
            f"{describe(index, event)} arrives after {what} (event {at}); {what} must be the last event",
            "stream.error-event" if what == "error" else "stream.order",
            key="after-terminal",
            where=f"event {index}",
        )

    # -- message level ------------------------------------------------------------------------

    def _message_start(self, index: int, payload: dict[str, Any]) -> None:
        if self.started_at is not None:
            self.out.add(
                f"event {index}: a second message_start (the first was event {self.started_at})",
                "stream.order",
                key="second-start",
                where=f"event {index}",
            )
            return
        self.started_at = index
        message = payload.get("message")
        if not isinstance(message, dict):
            return  # schema.stream-event reports it
        self.complete_at_start = message.get("stop_reason") is not None
        content = message.get("content")
        for position, block_data in enumerate(content if isinstance(content, list) else []):
            kind = block_data.get("type") if isinstance(block_data, dict) else None
            block = _Block(position, kind if isinstance(kind, str) else None, index, index, in_message_start=True)
            self.blocks[position] = block
            if kind == "thinking" and not block_data.get("signature"):
                self.out.add(
                    f"event {index}: thinking block {position} arrives complete in message_start without a "
                    "signature; a complete thinking block carries its signature",
                    "stream.thinking-signature",
                )
        self.next_index = len(self.blocks)

    def _message_delta(self, index: int, payload: dict[str, Any]) -> None:
        self._require_closed(index, "message_delta")
        self.message_deltas += 1

    def _message_stop(self, index: int, payload: dict[str, Any]) -> None:
        if self.message_deltas == 0 and not self.complete_at_start:
            self.out.add(
                f"event {index}: message_stop without any message_delta before it (and message_start's "
                "stop_reason is null, so nothing ended the message)",
                "stream.order",
            )
        self._require_closed(index, "message_stop")
        self.terminal = (index, "message_stop")

    def _require_closed(self, index: int, kind: str) -> None:
        for block in self.open.values():
            if block.index not in self.reported_open:
                self.reported_open.add(block.index)
                self.out.add(
                    f"event {index}: {kind} while content block {block.index} (started at event "
                    f"{block.started_at}) was never stopped",
                    "stream.block-lifecycle",
                )

    # -- block level --------------------------------------------------------------------------

    def _block_start(self, index: int, payload: dict[str, Any]) -> None:
        position = payload.get("index")
        if not isinstance(position, int):
            return  # schema.stream-event reports it
        block_data = payload.get("content_block")
        kind = block_data.get("type") if isinstance(block_data, dict) else None
        where = f"event {index}"
        if self.message_deltas:
            self.out.add(f"{where}: content_block_start after message_delta", "stream.order", key="start-after-delta")
        if position in self.blocks:
            earlier = self.blocks[position]
            rule = (
                f"(it arrived complete in message_start, event {earlier.started_at}); the blocks after "
                f"message_start's content start at index {self.next_index}"
                if earlier.in_message_start
                else f"(it started at event {earlier.started_at}); each index starts once"
            )
            self.out.add(
                f"{where}: content block {position} starts again {rule}",
                "stream.block-lifecycle",
                key=("restart", position),
                where=where,
            )
            return
        for other in self.open.values():
            self.out.add(
                f"{where}: content block {position} starts while block {other.index} (started at event "
                f"{other.started_at}) is still open; blocks must not overlap",
                "stream.block-lifecycle",
                key=("overlap", other.index),
            )
        if position != self.next_index:
            self.out.add(
                f"{where}: content block index {position} where {self.next_index} was expected "
                "(indexes start at 0 and go up by one)",
                "stream.block-lifecycle",
                key=("index", position),
            )
        block = _Block(position, kind if isinstance(kind, str) else None, index)
        block.signed_at_start = isinstance(block_data, dict) and bool(block_data.get("signature"))
        self.blocks[position] = self.open[position] = block
        self.next_index = max(self.next_index, position + 1)

    def _block_delta(self, index: int, payload: dict[str, Any]) -> None:
        block = self._known_block(index, payload, "content_block_delta")
        if block is None:
            return
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return  # schema.stream-event reports it
        kind = delta.get("type")
        if kind == "signature_delta":
            block.signatures += 1
        allowed = BLOCK_DELTAS.get(block.kind or "")
        if allowed is None or kind not in DELTA_PAYLOAD or kind in allowed:
            return  # unknown block or delta types are tolerated
        payload_field = DELTA_PAYLOAD[kind]
        empty = f" with an empty {payload_field}" if delta.get(payload_field) in ("", None) else ""
        takes = ", ".join(sorted(allowed)) or "no deltas"
        self.out.add(
            f"event {index}: {kind}{empty} on {block.kind} block {block.index}; a {block.kind} block takes {takes}",
            "stream.delta-type",
            key=("delta-type", block.index, kind),
            where=f"event {index}",
        )

    def _block_stop(self, index: int, payload: dict[str, Any]) -> None:
        block = self._known_block(index, payload, "content_block_stop")
        if block is None:
            return
        block.stopped_at = index
        del self.open[block.index]
        if block.kind == "thinking" and block.signatures == 0 and not block.signed_at_start:
            self.out.add(
                f"event {index}: thinking block {block.index} stopped without a signature_delta "
                "(and its content_block_start had no signature)",
                "stream.thinking-signature",
            )
        elif block.kind == "thinking" and block.signatures > 1:
            self.out.add(
                f"event {index}: thinking block {block.index} got {block.signatures} signature_delta events; "
                "a thinking block gets exactly one",
                "stream.thinking-signature",
            )

    def _known_block(self, index: int, payload: dict[str, Any], kind: str) -> _Block | None:
        """The open block an event refers to, or None (after reporting why) when there is none."""
        position = payload.get("index")
        if not isinstance(position, int):
            return None  # schema.stream-event reports it
        block = self.blocks.get(position)
        where = f"event {index}"
        if block is None:
            self.out.add(
                f"{where}: {kind} for content block {position}, which was never started",
                "stream.block-lifecycle",
                key=("unstarted", position, kind),
                where=where,
            )
            return None
        if block.in_message_start:
            self.out.add(
                f"{where}: {kind} for content block {position}, which arrived complete in message_start "
                f"(event {block.started_at})",
                "stream.block-lifecycle",
                key=("in-start", position, kind),
                where=where,
            )
            return None
        if block.stopped_at is not None:
            self.out.add(
                f"{where}: {kind} for content block {position} after its content_block_stop (event {block.stopped_at})",
                "stream.block-lifecycle",
                key=("stopped", position, kind),
                where=where,
            )
            return None
        return block

    _HANDLERS = {
        "content_block_start": _block_start,
        "content_block_delta": _block_delta,
        "content_block_stop": _block_stop,
        "message_delta": _message_delta,
        "message_stop": _message_stop,
    }


@check("stream.grammar")
def grammar(exchange: Exchange) -> list[Finding]:
    """The events follow the stream grammar (see the module docstring)."""
    events = stream_events(exchange)
    if events is None:
        return []
    if not events:
        return [Finding(check=GRAMMAR, message="the stream has no events", spec_ref="stream.format")]
    machine = _Grammar()
    for index, event in enumerate(events):
        machine.feed(index, event)
    return machine.finish(truncated=bool(response(exchange).truncated))


# The longest quiet stretch between two events a stream may have. The API itself pings about every
# 15-30 s while the model works silently (long thinking), and common proxies and load balancers drop
# connections idle for 60 s; anything quieter than this limit keeps a stream alive through them.
MAX_QUIET_SECONDS = 45.0


@check("stream.keepalive")
def keepalive(exchange: Exchange) -> list[Finding]:
    """No quiet stretch longer than MAX_QUIET_SECONDS between two events (by their arrival times).

    A gateway that drops the upstream's ping events, or buffers a slow answer, leaves the
    connection silent until an intermediary or the client's stall watchdog gives up. Only events
    are timed: SSE comment lines, which also keep a connection alive, are not recorded. A warning,
    not a failure: the docs allow pings ("Event streams may also include any number of ping
    events") but do not promise them.
    """
    events = stream_events(exchange) or []
    gap, position = longest_silence(events)
    if gap <= MAX_QUIET_SECONDS:
        return []
    return [
        Finding(
            check="stream.keepalive",
            message=f"{gap:.1f} s passed without any event before {describe(position, events[position])}; a stream "
            f"must not stay quiet longer than {MAX_QUIET_SECONDS:g} s (send ping events while the model works)",
            spec_ref="stream.ping",
            severity=Severity.WARNING,
        )
    ]


@check("stream.done-sentinel")
def done_sentinel(exchange: Exchange) -> list[Finding]:
    """No OpenAI-style `data: [DONE]`: an Anthropic stream ends with message_stop."""
    events = stream_events(exchange) or []
    sentinels = [index for index, event in enumerate(events) if is_done_sentinel(event)]
    if not sentinels:
        return []
    return [
        Finding(
            check="stream.done-sentinel",
            message=f"event {sentinels[0]}: `data: [DONE]` (an OpenAI sentinel) in an Anthropic stream; "
            "the stream must end with message_stop and nothing after it"
            + (f" ({len(sentinels)} sentinels)" if len(sentinels) > 1 else ""),
            spec_ref="stream.no-done-sentinel",
        )
    ]


@check("stream.unknown-event")
def unknown_events(exchange: Exchange) -> list[Finding]:
    """Unknown event types are tolerated; each one is noted once."""
    known = contract.discriminated_types("StreamEvent")
    collector = Collector("stream.unknown-event")
    for index, event in enumerate(stream_events(exchange) or []):
        if event.type is not None and event.type not in known:
            collector.add(
                f"{describe(index, event)}: unknown event type {event.type!r} (tolerated: clients must ignore it)",
                "stream.unknown-events",
                key=event.type,
                where=f"event {index}",
                severity=Severity.NOTE,
            )
    return collector.findings()


@check("stream.truncated")
def truncated(exchange: Exchange) -> list[Finding]:
    """The suite stopped reading because a bound was hit (too long, too many events, too slow)."""
    res = response(exchange)
    if res.events is None or not res.truncated:
        return []
    return [
        Finding(
            check="stream.truncated",
            message=f"the stream was cut off by the suite after {len(res.events)} events: {res.truncated}",
            spec_ref="stream.format",
        )
    ]


@check("stream.block-start")
def block_start(exchange: Exchange) -> list[Finding]:
    """A block starts empty (text "", thinking "") and gets its content from deltas; tool input comes one way.

    Clients that render deltas (or concatenate them onto an empty block) lose whatever a text or
    thinking start carries. Tool input either streams in input_json_delta onto `input: {}`, or
    arrives whole in content_block_start with no input_json_delta: the real API sends a tool call
    made by code execution that way, and the SDKs keep such an input. Both at once is a failure
    (the SDKs replace the start's input with the deltas'); a whole input from a direct call is a
    note (clients that build the input from input_json_delta alone see {}). Missing fields are
    schema.stream-event's findings.
    """
    collector = Collector("stream.block-start")
    events = stream_events(exchange) or []
    streamed_input = fold(events).partial_json.keys()
    for index, event in enumerate(events):
        if event.type != "content_block_start" or not isinstance(event.json.get("content_block"), dict):
            continue
        block, position = event.json["content_block"], event.json.get("index")
        field = _START_FIELDS.get(block.get("type"))
        if field is None:
            continue
        value = block.get(field)
        if value in ("", {}) or not isinstance(value, (str, dict)):
            continue
        where, starts = f"event {index}", f"{block['type']} block {position} starts with {field} {short(value, 80)}"
        if field != "input":
            message = f"event {index}: {starts}; it must start empty and receive its content in deltas"
            collector.add(message, "stream.block-lifecycle", key=("non-empty", block["type"]), where=where)
        elif position in streamed_input:
            message = (
                f"event {index}: {starts} and also receives input_json_delta; tool input arrives either whole in "
                "content_block_start or in deltas onto {}, not both (the SDKs replace the start's input)"
            )
            collector.add(message, "stream.tool-input", key=("input-twice", block["type"]), where=where)
        elif program_caller(block) is None:
            message = (
                f"event {index}: {starts} and no input_json_delta (tolerated: the SDKs keep it; the API streams a "
                "direct call's input in deltas, so clients that build it from input_json_delta alone see {})"
            )
            collector.add(
                message, "stream.tool-input", key=("whole-input", block["type"]), where=where, severity=Severity.NOTE
            )
    return collector.findings()


_START_FIELDS = {"text": "text", "thinking": "thinking", "tool_use": "input", "server_tool_use": "input"}
