"""The transport records every exchange within bounds, against hostile endpoints too."""

from __future__ import annotations

import asyncio
import secrets

from conformance.model import Request
from conformance.redact import REDACTED, Redactor
from conformance.transport import Limits, Transport
from tests.hostile import head, hostile_server

KEY = "test-key-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository


def send(write, limits: Limits | None = None, **request) -> object:
    async def main():
        async with hostile_server(write) as base_url:
            transport = Transport(limits=limits or Limits(timeout=5, max_silence=2), redactor=Redactor([KEY]))
            async with transport:
                req = Request(
                    method="POST",
                    url=base_url + "/v1/messages",
                    headers={"x-api-key": KEY, "content-type": "application/json"},
                    body=request.get("body", {"messages": [{"role": "user", "content": f"my key is {KEY}"}]}),
                )
                return await transport.send(req)

    return asyncio.run(main())


def test_json_response_is_recorded_and_parsed() -> None:
    async def write(w):
        w.write(head(200, "application/json") + b'{"type": "message", "echo": "' + KEY.encode() + b'"}')

    exchange = send(write)
    assert exchange.error is None
    assert exchange.response.status == 200
    assert exchange.response.json == {"type": "message", "echo": REDACTED}
    assert exchange.response.headers["request-id"] == "req_test"


def test_api_key_is_redacted_everywhere() -> None:
    async def write(w):
        w.write(head(200, "application/json", f"x-echo: {KEY}\r\n") + b"{}")

    exchange = send(write)
    dumped = repr(exchange.to_dict())
    assert KEY not in dumped
    assert exchange.request.headers["x-api-key"] == REDACTED
    assert exchange.response.headers["x-echo"] == REDACTED


def test_bearer_scheme_is_kept_when_redacted() -> None:
    assert Redactor([KEY]).headers({"Authorization": f"Bearer {KEY}"}) == {"Authorization": f"Bearer {REDACTED}"}


def test_stream_events_have_arrival_times() -> None:
    async def write(w):
        w.write(head())
        w.write(b'event: ping\ndata: {"type": "ping"}\n\n')
        await w.drain()
        await asyncio.sleep(0.2)
        w.write(b'event: message_stop\ndata: {"type": "message_stop"}\n\n')

    response = send(write).response
    assert [e.event for e in response.events] == ["ping", "message_stop"]
    assert response.events[1].t - response.events[0].t >= 0.15
    assert response.truncated is None


def test_garbage_stream_is_recorded_not_raised() -> None:
    async def write(w):
        w.write(head() + b"\x00\xff\xfe garbage\n\ndata: {not json\n\n")

    response = send(write).response
    assert response.events and all(event.json is None for event in response.events)


def test_endless_stream_is_cut_at_max_events() -> None:
    async def write(w):
        w.write(head())
        for _ in range(100_000):
            w.write(b'event: ping\ndata: {"type": "ping"}\n\n')
            await w.drain()

    response = send(write, Limits(timeout=10, max_silence=2, max_events=50)).response
    assert len(response.events) == 50
    assert "50 events" in response.truncated


def test_endless_slow_stream_is_cut_at_the_deadline() -> None:
    async def write(w):
        w.write(head())
        while True:
            w.write(b": keepalive\n\n")
            await w.drain()
            await asyncio.sleep(0.05)

    exchange = send(write, Limits(timeout=0.6, max_silence=5))
    assert exchange.error is None
    assert "did not end within" in exchange.response.truncated


def test_silence_is_cut_at_max_silence() -> None:
    async def write(w):
        w.write(head() + b'event: ping\ndata: {"type": "ping"}\n\n')
        await w.drain()
        await asyncio.sleep(3)

    response = send(write, Limits(timeout=10, max_silence=0.3)).response
    assert len(response.events) == 1
    assert "max silence" in response.truncated


def test_huge_body_is_cut_at_max_body_bytes() -> None:
    async def write(w):
        w.write(head(200, "application/json") + b"[" + b"1," * 200_000)

    response = send(write, Limits(timeout=10, max_silence=2, max_body_bytes=10_000)).response
    assert len(response.text) == 10_000
    assert "10000 bytes" in response.truncated
    assert response.json is None


def test_connection_dropped_mid_stream_keeps_what_arrived() -> None:
    async def write(w):
        w.write(head() + b'event: ping\ndata: {"type": "ping"}\n\nevent: mess')

    response = send(write).response
    assert [e.event for e in response.events] == ["ping"]
    assert response.truncated == "the stream ended in the middle of an event"


def test_no_response_headers_is_a_timeout_error() -> None:
    async def write(w):
        await asyncio.sleep(3)

    exchange = send(write, Limits(timeout=10, max_silence=0.3))
    assert exchange.response is None
    assert exchange.error.startswith("timeout")


def test_unreachable_target_is_an_error_not_an_exception() -> None:
    async def main():
        async with Transport(limits=Limits(timeout=5, connect_timeout=2)) as transport:
            return await transport.send(Request(method="POST", url="http://127.0.0.1:9/v1/messages", body={}))

    exchange = asyncio.run(main())
    assert exchange.response is None
    assert exchange.error.startswith("connection failed")


def test_short_secrets_do_not_mangle_text() -> None:
    redactor = Redactor(["k"])
    assert redactor.text("max_tokens") == "max_tokens"
    assert redactor.headers({"x-api-key": "k"}) == {"x-api-key": REDACTED}
