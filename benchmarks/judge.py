"""Events per second of the judge beside the floor (`json.loads` of each event) and two schema validators.

The streams are valid answers built with the reference server's own encoder: a long text answer
and a long tool call (input_json_delta fragments). Every figure is CPU time of this process (one
core) over the same events, in one run:

| row | what is timed |
|---|---|
| json.loads | parsing each event's data (the floor: nothing can judge an event it has not parsed) |
| + jsonschema_rs | parsing, then StreamEvent with jsonschema_rs |
| + jsonschema | parsing, then StreamEvent with jsonschema Draft 2020-12, compiled once |
| SSE reader | the suite's SSE reader turning the bytes into parsed events, as `run` reads a stream |
| judge | every check of the suite on the exchange of those events (what judging adds to reading) |

    python benchmarks/judge.py [--events 20000] [--repeat 3]

The jsonschema row validates a sample of the events (it is about 100 times slower) and scales its rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance import contract  # noqa: E402
from conformance.checks import run_checks  # noqa: E402
from conformance.model import Exchange, Request, Response  # noqa: E402
from conformance.reference.streaming import encode, message_events  # noqa: E402
from conformance.sse import parse_stream  # noqa: E402

URL = "http://127.0.0.1:1/v1/messages"
JSONSCHEMA_SAMPLE = 2_000


def _message(content: list[dict[str, Any]], stop_reason: str) -> dict[str, Any]:
    return {
        "id": "msg_01bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-bench",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 4_000,
        },
    }


def text_stream(events: int) -> bytes:
    """A valid text answer of about `events` events (three words per text_delta)."""
    words = " ".join(f"word{i}" for i in range(events * 3))
    return _encoded(_message([{"type": "text", "text": words}], "end_turn"))


def tool_stream(events: int) -> bytes:
    """A valid tool call of about `events` events (16 characters of JSON per input_json_delta)."""
    items = [f"item {i:05d}" for i in range(events * 16 // 14)]
    block = {"type": "tool_use", "id": "toolu_01bench", "name": "save", "input": {"items": items}}
    return _encoded(_message([block], "tool_use"))


def _encoded(message: dict[str, Any]) -> bytes:
    return b"".join(encode(item) for item in message_events(message) if isinstance(item, dict))


def exchange_of(raw: bytes) -> Exchange:
    request = Request("POST", URL, {"content-type": "application/json"}, {"model": "claude-bench", "stream": True})
    headers = {"content-type": "text/event-stream", "request-id": "req_bench"}
    response = Response(200, headers, raw.decode(), events=parse_stream(raw))
    return Exchange(request=request, response=response, step=0)


def cpu_seconds(work: Callable[[], Any], repeat: int) -> float:
    """The best CPU time of `repeat` runs of `work`."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best


def rates(raw: bytes, repeat: int) -> dict[str, float]:
    """Events per second of each row for one stream."""
    payloads = [event.data for event in parse_stream(raw)]
    count = len(payloads)
    import jsonschema_rs

    registry = jsonschema_rs.Registry([(contract.CONTRACT_URI, contract.document())])
    fast = jsonschema_rs.validator_for(
        {"$ref": f"{contract.CONTRACT_URI}#/components/schemas/StreamEvent"}, registry=registry
    )
    sample = payloads[:JSONSCHEMA_SAMPLE]
    contract.is_valid("StreamEvent", json.loads(payloads[0]))  # compile before timing

    def floor() -> None:
        for data in payloads:
            json.loads(data)

    def with_rs() -> None:
        for data in payloads:
            fast.is_valid(json.loads(data))

    def with_jsonschema() -> None:
        for data in sample:
            contract.is_valid("StreamEvent", json.loads(data))

    def reader() -> None:
        parse_stream(raw)

    exchange = exchange_of(raw)

    def judge() -> None:
        run_checks(exchange)

    run_checks(exchange_of(raw[: raw.index(b"\n\n", 4096) + 2]))  # warm: contract loaded, validators compiled
    return {
        "json.loads (floor)": count / cpu_seconds(floor, repeat),
        "json.loads + jsonschema_rs": count / cpu_seconds(with_rs, repeat),
        "json.loads + jsonschema": len(sample) / cpu_seconds(with_jsonschema, 1),
        "SSE reader (bytes to events)": count / cpu_seconds(reader, repeat),
        "judge (every check)": count / cpu_seconds(judge, repeat),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per stream (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure, the best kept (default: %(default)s)")
    args = parser.parse_args()
    for name, raw in (("text", text_stream(args.events)), ("tool", tool_stream(args.events))):
        count = len(parse_stream(raw))
        figures = rates(raw, args.repeat)
        floor = figures["json.loads (floor)"]
        print(f"{name} stream: {count} events, {len(raw) / 1e6:.1f} MB")
        for row, rate in figures.items():
            print(f"  {row:<30} {rate:>12,.0f} events/s   {floor / rate:>6.2f} x the floor's time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
