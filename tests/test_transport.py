"""The transport records every exchange within bounds, against hostile endpoints too."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import secrets
import zlib

import pytest

from conformance.checks import run_checks
from conformance.model import Request
from conformance.redact import REDACTED, Redactor
from conformance.reference import ReferenceServer
from conformance.sse import SSEParser
from conformance.transport import Limits, Transport
from tests.hostile import head, hostile_server, reset

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


def gzip_bomb(size: int) -> bytes:
    compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    return b"".join(compressor.compress(block) for _ in range(size // len(block))) + compressor.flush()


def test_a_gzip_stream_is_decoded_here() -> None:
    stream = b'event: ping\ndata: {"type": "ping"}\n\n' * 3

    async def write(w):
        w.write(head(extra="content-encoding: gzip\r\n") + gzip.compress(stream))

    response = send(write).response
    assert [e.type for e in response.events] == ["ping"] * 3
    assert response.text == stream.decode()
    assert response.headers["content-encoding"] == "gzip" and response.truncated is None


def test_a_gzip_body_cut_short_is_named_so() -> None:
    async def write(w):
        w.write(head(200, "application/json", "content-encoding: gzip\r\n") + gzip.compress(b'{"a": 1}')[:-8])

    exchange = send(write)
    assert exchange.response.text == '{"a": 1}'
    assert exchange.response.truncated == "the gzip-encoded body ended before its compressed stream did"


@pytest.mark.parametrize("nested", [False, True], ids=["gzip", "gzip-gzip"])
def test_a_gzip_bomb_is_cut_at_max_body_bytes(nested: bool) -> None:
    body = gzip_bomb(200 * 1024 * 1024)
    body = gzip.compress(body) if nested else body
    encoding = "gzip, gzip" if nested else "gzip"

    async def write(w):
        w.write(head(200, "application/json", f"content-encoding: {encoding}\r\n") + body)

    response = send(write, Limits(timeout=10, max_silence=2, max_body_bytes=100_000)).response
    assert len(response.text) == 100_000
    assert response.truncated == "the decompressed body exceeded 100000 bytes"


def test_an_unknown_encoding_is_a_truncation_not_a_guess() -> None:
    async def write(w):
        w.write(head(200, "application/json", "content-encoding: snappy\r\n") + b"\x00\x01\x02")

    exchange = send(write)
    assert exchange.response.text == "" and exchange.response.json is None
    assert exchange.response.truncated == (
        "the body has the unknown content-encoding 'snappy', which cannot be decoded"
    )
    (message,) = [f.message for f in run_checks(exchange, ["schema.message"])]
    assert message.endswith("which cannot be decoded), so it could not be judged as JSON")


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"n": ' + b"9" * 4000 + b"}", b'{"n": NaN}'],
    ids=["deep", "long-integer", "nan"],
)
def test_json_bodies_beyond_the_bounds_are_not_json_not_a_crash(body: bytes) -> None:
    async def write(w):
        w.write(head(200, "application/json") + body)

    exchange = send(write)
    assert exchange.error is None
    assert exchange.response.json is None and exchange.response.text == body.decode()
    json.dumps(exchange.to_dict())


def test_a_retry_field_of_non_ascii_digits_does_not_break_a_stream() -> None:
    async def write(w):
        w.write(head() + 'retry: ²\ndata: {"type": "ping"}\n\n'.encode())

    response = send(write).response
    assert [(e.type, e.retry) for e in response.events] == [("ping", None)]


def test_an_overlong_sse_line_stops_reading() -> None:
    async def write(w):
        w.write(head() + b'data: {"type": "ping"}\n\n')
        while True:
            w.write(b"x" * 65_536)
            await w.drain()

    response = send(write, Limits(timeout=10, max_silence=2, max_event_bytes=100_000)).response
    assert [e.type for e in response.events] == ["ping"]
    assert response.truncated == "an SSE line exceeded 100000 bytes"


@pytest.mark.parametrize("answer", [b"garbage here\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n"])
def test_an_answer_that_is_not_http_is_named_so(answer: bytes) -> None:
    async def write(w):
        w.write(answer)

    exchange = send(write)
    assert exchange.response is None
    assert exchange.error.startswith("transport error: the target's answer is not HTTP: malformed status line b'")


def test_a_reset_before_the_response_is_named_so() -> None:
    async def write(w):
        reset(w)

    exchange = send(write)
    assert exchange.error == "transport error: the target reset the connection before the response"


def test_a_reset_while_reading_keeps_what_arrived() -> None:
    async def write(w):
        w.write(head() + b'event: ping\ndata: {"type": "ping"}\n\n')
        await w.drain()
        await asyncio.sleep(0.2)
        reset(w)

    response = send(write).response
    assert [e.type for e in response.events] == ["ping"]
    assert response.truncated == "the target reset the connection while reading the body"


def test_a_body_shorter_than_its_length_is_named_so() -> None:
    async def write(w):
        w.write(head(200, "application/json", "content-length: 100\r\n") + b'{"type": ')

    exchange = send(write)
    assert exchange.response.text == '{"type": '
    assert exchange.response.truncated == (
        "the target closed the connection before the body was complete (received 9 bytes, expected 100)"
    )
    (message,) = [f.message for f in run_checks(exchange, ["schema.message"])]
    assert message.startswith("the HTTP 200 body was cut at 9 bytes (the target closed")
    assert message.endswith("so it could not be judged as JSON")


def test_a_body_cut_by_the_suite_is_not_called_not_json() -> None:
    async def write(w):
        w.write(head(400, "application/json") + b'{"type": "error", "error": {"message": "' + b"x" * 20_000)

    exchange = send(write, Limits(timeout=10, max_silence=2, max_body_bytes=10_000))
    messages = [f.message for f in run_checks(exchange, ["errors.envelope"])]
    assert messages == [
        "the HTTP 400 body was cut at 10000 bytes (the body exceeded 10000 bytes), so it could not be judged as JSON"
    ]


def test_an_unexpected_failure_while_reading_keeps_what_arrived(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(self, chunk: bytes, t: float = 0.0) -> list:
        raise MemoryError("no room")

    monkeypatch.setattr(SSEParser, "feed", explode)

    async def write(w):
        w.write(head() + b'data: {"type": "ping"}\n\n')

    exchange = send(write)
    assert exchange.error is None
    assert exchange.response.truncated == (
        "reading stopped on an unexpected error while reading the body: MemoryError: no room"
    )


def test_redirects_are_recorded_not_followed() -> None:
    async def write(w):
        w.write(head(307, "application/json", "location: http://127.0.0.1:9/v1/messages\r\n") + b"{}")

    exchange = send(write)
    assert exchange.error is None
    assert exchange.response.status == 307 and exchange.response.headers["location"].endswith(":9/v1/messages")


def test_the_reference_servers_gzip_answer_is_asked_for_and_decoded() -> None:
    async def main():
        with ReferenceServer(api_key=KEY) as server:
            async with Transport(limits=Limits(timeout=10), redactor=Redactor([KEY])) as transport:
                body = {
                    "model": "claude-haiku-4-5",
                    "max_tokens": 2000,
                    "messages": [{"role": "user", "content": "Count from 1 to 400"}],
                }
                headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
                return await transport.send(Request("POST", server.base_url + "/v1/messages", headers, body))

    response = asyncio.run(main()).response
    assert response.headers["content-encoding"] == "gzip"
    assert response.json["content"][0]["text"].endswith("399 400") and response.truncated is None


def test_tool_input_streamed_too_deep_is_a_finding_not_a_crash() -> None:
    deep = "[" * 5_000 + "]" * 5_000
    usage = {"input_tokens": 1, "output_tokens": 1}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": []}
    events = [
        {"type": "message_start", "message": {**message, "stop_reason": None, "stop_sequence": None, "usage": usage}},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": deep}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": usage},
        {"type": "message_stop"},
    ]
    stream = "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events).encode()

    async def write(w):
        w.write(head() + stream)

    exchange = send(write, body={"stream": True, "messages": [], "tools": [{"name": "t", "input_schema": {}}]})
    messages = [f.message for f in run_checks(exchange) if f.check == "reassembly"]
    assert any("is not valid JSON (JSON nested deeper than 64 levels)" in message for message in messages)


def test_a_body_cut_by_the_timeout_could_not_be_judged() -> None:
    async def write(w):
        w.write(head(200, "application/json") + b'{"type": "message", ')
        await w.drain()
        await asyncio.sleep(3)

    exchange = send(write, Limits(timeout=0.5, max_silence=5))
    (message,) = [f.message for f in run_checks(exchange, ["schema.message"])]
    assert message == (
        "the HTTP 200 body was cut at 20 bytes (the response did not end within 0.5 s), "
        "so it could not be judged as JSON"
    )


def test_an_https_target_is_verified_though_plain_http_loads_no_certificates(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verifying TLS context is made on the first https request, not before (plain http loads no CA
    bundle), and verifies: a self-signed certificate fails the exchange in words."""
    import shutil
    import ssl
    import subprocess

    import httpx._transports.default as httpx_default

    verifying: list[str] = []  # a verifying context made: when
    make_context = httpx_default.create_ssl_context

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("verify", True) is not False:
            verifying.append("made")
        return make_context(*args, **kwargs)

    monkeypatch.setattr(httpx_default, "create_ssl_context", counted)

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run([*make, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):  # the https client hangs up at the handshake
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head(200, "application/json") + b"{}")
            await writer.drain()
        writer.close()

    async def main() -> object:
        server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
        plain = await asyncio.start_server(answer, "127.0.0.1", 0)
        port, plain_port = server.sockets[0].getsockname()[1], plain.sockets[0].getsockname()[1]
        async with server, plain, Transport(limits=Limits(timeout=5, max_silence=2)) as transport:
            answered = await transport.send(Request(method="POST", url=f"http://127.0.0.1:{plain_port}/x", body={}))
            assert answered.response is not None and verifying == []
            return await transport.send(Request(method="POST", url=f"https://127.0.0.1:{port}/v1/messages", body={}))

    exchange = asyncio.run(main())
    assert verifying == ["made"]
    assert exchange.response is None
    assert "CERTIFICATE_VERIFY_FAILED" in (exchange.error or ""), exchange.error
