"""What the checks share: the check registry, endpoint detection, the final message of an exchange.

Kept apart from the package `__init__` so that check modules can import it without a cycle.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from conformance import contract
from conformance.accumulate import Accumulated, accumulate
from conformance.checks import validation
from conformance.model import Exchange, Finding, Response, Severity, SSEEvent

Check = Callable[[Exchange], list[Finding]]

REGISTRY: dict[str, Check] = {}

MESSAGES = "messages"
COUNT_TOKENS = "count_tokens"


def check(name: str) -> Callable[[Check], Check]:
    """Register a check under `name`. The registered function returns nothing when there is no response."""

    def register(function: Check) -> Check:
        @functools.wraps(function)
        def guarded(exchange: Exchange) -> list[Finding]:
            if exchange.response is None:
                return []
            return function(exchange)

        if name in REGISTRY:
            raise ValueError(f"check {name!r} is registered twice")
        REGISTRY[name] = guarded
        return guarded

    return register


def endpoint(exchange: Exchange) -> str | None:
    """MESSAGES or COUNT_TOKENS from the request path (a query string is ignored), else None."""
    path = urlsplit(exchange.request.url).path.rstrip("/")
    if path.endswith("/v1/messages/count_tokens"):
        return COUNT_TOKENS
    if path.endswith("/v1/messages"):
        return MESSAGES
    return None


def response(exchange: Exchange) -> Response:
    """The response of an exchange that a registered check is looking at (never None there)."""
    assert exchange.response is not None
    return exchange.response


def request_body(exchange: Exchange) -> dict[str, Any]:
    """The JSON request body, or {} when it was not a JSON object."""
    body = exchange.request.body
    return body if isinstance(body, dict) else {}


def succeeded(exchange: Exchange) -> bool:
    return exchange.response is not None and 200 <= exchange.response.status < 300


def failed(exchange: Exchange) -> bool:
    return exchange.response is not None and exchange.response.status >= 400


def stream_events(exchange: Exchange) -> list[SSEEvent] | None:
    """The events of a streamed response, or None when the response was not read as a stream."""
    return exchange.response.events if exchange.response is not None else None


def json_body(exchange: Exchange) -> Any:
    """The parsed JSON body of a non-stream response (None when it was not JSON)."""
    if exchange.response is None or exchange.response.events is not None:
        return None
    return exchange.response.json


def unjudged_body(res: Response) -> str | None:
    """Why a body that is not JSON cannot be judged as JSON: the suite did not read it whole (a bound,
    the timeout, an encoding it cannot undo, a broken connection); None when it was read whole."""
    if res.json is not None or not res.truncated:
        return None
    size = len(res.text.encode("utf-8", "surrogatepass"))
    return f"the HTTP {res.status} body was cut at {size} bytes ({res.truncated}), so it could not be judged as JSON"


def header(res: Response, name: str) -> str | None:
    """A response header by name, whatever the case of the stored name."""
    wanted = name.lower()
    for key, value in res.headers.items():
        if key.lower() == wanted:
            return value
    return None


def is_done_sentinel(event: SSEEvent) -> bool:
    """The OpenAI end-of-stream marker `data: [DONE]` (which an Anthropic stream must not send)."""
    return event.data.strip() == "[DONE]"


def stream_problems(events: list[SSEEvent]) -> list[tuple[contract.ValidationProblem, ...]]:
    """The schema problems of each event's payload against StreamEvent, by position (() for a valid
    event or one that is not a JSON object: stream.grammar reports those). Within `one_judgement()`
    each stream is validated once, however many checks ask."""
    memo = _memo_of(events)
    if memo is not None and memo.problems is not None:
        return memo.problems
    payloads = {position: event.json for position, event in enumerate(events) if isinstance(event.json, dict)}
    found: list[tuple[contract.ValidationProblem, ...]] = [()] * len(events)
    for position, problems in zip(
        payloads, validation.problems_of_each("StreamEvent", list(payloads.values())), strict=True
    ):
        found[position] = problems
    if memo is not None:
        memo.problems = found
    return found


def longest_silence(events: list[SSEEvent]) -> tuple[float, int]:
    """The longest wait between two consecutive events (seconds, by arrival time `t`), and the index of
    the event that ended it; (0.0, 0) for fewer than two events."""
    return max(
        ((later.t - earlier.t, index + 1) for index, (earlier, later) in enumerate(itertools.pairwise(events))),
        default=(0.0, 0),
    )


def describe(index: int, event: SSEEvent) -> str:
    """How findings name an event: `event 3 (content_block_delta)`."""
    kind = event.type or event.event or "?"
    return f"event {index} ({kind})"


def short(value: Any, limit: int = 120) -> str:
    """repr() of a value, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def payload_type(payload: Any) -> str | None:
    return payload.get("type") if isinstance(payload, dict) and isinstance(payload.get("type"), str) else None


def program_caller(block: dict[str, Any]) -> str | None:
    """The caller type of a tool call made by a program (programmatic tool calling: a caller such as
    `{type: code_execution_20260120, tool_id}`), or None for a call the model made directly."""
    caller = block.get("caller")
    kind = caller.get("type") if isinstance(caller, dict) else None
    return kind if isinstance(kind, str) and kind != "direct" else None


def request_tools(exchange: Exchange) -> dict[str, dict[str, Any]]:
    """The tools the request declared, by name."""
    tools = request_body(exchange).get("tools")
    if not isinstance(tools, list):
        return {}
    return {tool["name"]: tool for tool in tools if isinstance(tool, dict) and isinstance(tool.get("name"), str)}


@dataclass
class FinalMessage:
    """The Message an exchange produced: the JSON body, or the message rebuilt from the stream.

    For streams, `start_usage` is the usage of message_start, `usage_trail` the (event index,
    usage) of every message_delta, and `partial_json` the concatenated input_json_delta text
    per block index.
    """

    message: dict[str, Any]
    streamed: bool
    start_usage: dict[str, Any] | None = None
    usage_trail: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    partial_json: dict[int, str] = field(default_factory=dict)
    # The stream index of each content position (they differ only when a stream skips indexes).
    block_indexes: list[int] = field(default_factory=list)

    def streamed_input(self, position: int) -> str | None:
        """The concatenated input_json_delta text of the block at a content position (None if not streamed)."""
        if position >= len(self.block_indexes):
            return None
        return self.partial_json.get(self.block_indexes[position])

    @property
    def content(self) -> list[dict[str, Any]]:
        blocks = self.message.get("content")
        return [block for block in blocks if isinstance(block, dict)] if isinstance(blocks, list) else []

    @property
    def usage(self) -> dict[str, Any]:
        usage = self.message.get("usage")
        return usage if isinstance(usage, dict) else {}


@dataclass
class _StreamMemo:
    """What the checks of one judgement learnt about one stream. It holds the events, so their
    identity cannot be reused by another list while the judgement lasts."""

    events: list[SSEEvent]
    fold: Accumulated | None = None
    problems: list[tuple[contract.ValidationProblem, ...]] | None = None


_judgement = threading.local()


@contextlib.contextmanager
def one_judgement() -> Iterator[None]:
    """Within the block (on this thread), each stream is folded and validated once, whoever asks.

    The streams must not change inside the block: what was learnt about a list of events is
    reused for as long as the block lasts. A block inside another reuses the outer one's memory.
    """
    if getattr(_judgement, "streams", None) is not None:
        yield
        return
    _judgement.streams = {}
    try:
        yield
    finally:
        _judgement.streams = None


def _memo_of(events: list[SSEEvent]) -> _StreamMemo | None:
    streams: dict[int, _StreamMemo] | None = getattr(_judgement, "streams", None)
    if streams is None:
        return None
    memo = streams.get(id(events))
    if memo is None:
        memo = streams[id(events)] = _StreamMemo(events)
    return memo


def fold(events: list[SSEEvent]) -> Accumulated:
    """The stream folded as the SDKs fold it (once per stream within `one_judgement()`)."""
    memo = _memo_of(events)
    if memo is None:
        return accumulate(events)
    if memo.fold is None:
        memo.fold = accumulate(events)
    return memo.fold


def final_message(response: Response | None) -> dict[str, Any] | None:
    """The Message a 2xx response carried: its JSON body, or its stream folded (once within
    `one_judgement()`); None if there is none."""
    if response is None or not 200 <= response.status < 300:
        return None
    if response.events is not None:
        return fold(response.events).message
    return response.json if isinstance(response.json, dict) else None


def complete_message(exchange: Exchange) -> FinalMessage | None:
    """The complete Message of a successful /v1/messages exchange, or None.

    None when the response is not a 2xx Message, and for streams that did not complete (cut by
    the suite's bounds, ended by an error event, or without message_start): the stream checks
    report those, and judging a partial message would only repeat them.
    """
    if endpoint(exchange) != MESSAGES or not succeeded(exchange):
        return None
    res = response(exchange)
    if res.events is None:
        body = res.json
        return FinalMessage(body, streamed=False) if isinstance(body, dict) and body.get("type") == "message" else None
    if res.truncated:
        return None
    rebuilt = fold(res.events)
    if rebuilt.message is None or rebuilt.error is not None:
        return None
    return FinalMessage(
        rebuilt.message,
        streamed=True,
        start_usage=rebuilt.start_usage,
        usage_trail=rebuilt.usage_trail,
        partial_json=rebuilt.partial_json,
        block_indexes=rebuilt.block_indexes,
    )


@dataclass
class _Group:
    message: str
    spec_ref: str
    severity: Severity
    repeats: int = 0
    last: str = ""


class Collector:
    """Gathers findings of one check, folding repeats of the same problem into one finding.

    A stream with a systematic defect (every delta of a block has the wrong type) would otherwise
    yield hundreds of identical findings; one finding names the first occurrence and counts the rest.
    """

    def __init__(self, check_name: str) -> None:
        self.check_name = check_name
        self._groups: dict[Any, _Group] = {}

    def add(
        self,
        message: str,
        spec_ref: str,
        *,
        key: Any = None,
        where: str = "",
        severity: Severity = Severity.FAILURE,
    ) -> None:
        """Add a finding; later ones with the same `key` (default: the message) only count, `where` naming the last."""
        group_key = (spec_ref, message if key is None else key)
        group = self._groups.get(group_key)
        if group is None:
            self._groups[group_key] = _Group(message, spec_ref, severity)
        else:
            group.repeats += 1
            group.last = where

    def findings(self) -> list[Finding]:
        result = []
        for group in self._groups.values():
            message = group.message
            if group.repeats:
                last = f", the last at {group.last}" if group.last else ""
                message += f" (and {group.repeats} more like it{last})"
            result.append(
                Finding(check=self.check_name, message=message, spec_ref=group.spec_ref, severity=group.severity)
            )
        return result
