"""Secrets never leave the run: the API key and every `--header` value (but harmless and public ones)
are redacted by value in every report, the console and the cassette, including where the target
echoes them in an SSE `event:`/`id:` field, a header name, or text that only joins up once the
stream is reassembled and quoted in a finding."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conformance.cases import load_cases
from conformance.cli import main
from conformance.redact import HARMLESS_HEADERS, REDACTED, header_secrets
from conformance.reference import ReferenceServer
from conformance.runner import run_suite
from conformance.target import Target

pytest_plugins = ["pytester"]


def sse(event: str, data: dict, extra: str = "") -> str:
    return f"{extra}event: {event}\ndata: {json.dumps(data)}\n\n"


def delta(text: str) -> dict:
    return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}


def echoing_stream(key: str) -> bytes:
    """A streamed answer that hides the key in an event name, an event id and two text deltas."""
    half = len(key) // 2
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 0},
    }
    block = {"type": "text", "text": ""}
    done = {"stop_reason": "end_turn", "stop_sequence": None}
    events = [
        sse("message_start", {"type": "message_start", "message": message}),
        sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
        sse("content_block_delta", delta("key=" + key[:half]), f"id: {key}\n"),
        sse("content_block_delta", delta(key[half:])),
        sse(key, {"type": "ping"}),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse("message_delta", {"type": "message_delta", "delta": done, "usage": {"output_tokens": 2}}),
        sse("message_stop", {"type": "message_stop"}),
    ]
    return "".join(events).encode()


@contextmanager
def echoing_server(key: str) -> Iterator[str]:
    """A loopback server answering every POST with `echoing_stream(key)` and a header named after the key."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            body = echoing_stream(key)
            self.send_response(200)
            for name, value in (("content-type", "text/event-stream"), ("request-id", "req_1"), (f"x-{key}", "1")):
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def written(directory: Path) -> str:
    return "\n".join(path.read_text() for path in sorted(directory.rglob("*")) if path.is_file())


def test_a_key_echoed_in_fields_names_and_reassembled_text_never_appears(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "test-key-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository
    with echoing_server(key) as base_url:
        argv = ["run", "--base-url", base_url, "--api-key", key, "-k", "streaming.text", "-v"]
        assert main([*argv, "--out", str(tmp_path / "out"), "--record", str(tmp_path / "cassette")]) == 1
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (result,) = report["results"]
    assert result["outcome"] == "failed"
    quoted = [f["message"] for f in result["findings"] if "expected the text 'STREAMED'" in f["message"]]
    assert quoted and REDACTED in quoted[0], result["findings"]
    console = capsys.readouterr()
    assert key not in written(tmp_path) + console.out + console.err


def test_every_header_value_is_a_secret_unless_harmless_or_public(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "ref-" + secrets.token_hex(16)
    tenant, trace, beta = "tenant-" + secrets.token_hex(8), "trace-" + secrets.token_hex(8), "files-api-2025-04-14"
    headers = ["--header", f"x-tenant:{tenant}", "--header", f"x-trace:{trace}", "--header", f"anthropic-beta:{beta}"]
    with ReferenceServer(api_key=key) as server:
        argv = ["run", "--base-url", server.base_url, "--api-key", key, "-k", "text.string-content", "-v"]
        main([*argv, *headers, "--public-header", "X-Trace", "--out", str(tmp_path)])
    report = written(tmp_path)
    console = capsys.readouterr()
    assert tenant not in report + console.out + console.err
    sent = json.loads((tmp_path / "report.json").read_text())["results"][0]["exchanges"][0]["request"]["headers"]
    assert sent["x-tenant"] == REDACTED
    assert sent["x-trace"] == trace and sent["anthropic-beta"] == beta


def test_the_secrets_of_a_target() -> None:
    assert {"anthropic-beta", "anthropic-version", "content-type", "accept", "user-agent"} <= HARMLESS_HEADERS
    headers = {"X-Org": "org-secret-1", "Anthropic-Beta": "b-2025-01-01", "x-public": "visible-1"}
    assert header_secrets(headers, public=["X-Public"]) == ["org-secret-1"]
    target = Target(base_url="http://127.0.0.1:1", api_key="key-" + "0" * 12, extra_headers=headers)
    assert target.secrets() == ["key-" + "0" * 12, "org-secret-1", "visible-1"]
    named = {"x-auth-token": "token-value-1"}
    public = Target(base_url="http://127.0.0.1:1", extra_headers=named, public_headers=frozenset({"x-auth-token"}))
    assert public.secrets() == [] and public.redactor().headers(named) == named
    assert Target(base_url="http://127.0.0.1:1", extra_headers=named).redactor().headers(named) != named


def test_the_judge_output_is_redacted_before_it_is_stored() -> None:
    """Not left to the sinks: a result held in memory (the pytest plugin's, a library user's) is clean too."""
    key = "test-key-" + secrets.token_hex(16)
    streamed = [case for case in load_cases() if case.id == "streaming.text"]
    with echoing_server(key) as base_url:
        report = asyncio.run(run_suite(Target(base_url=base_url, api_key=key), streamed))
    (result,) = report.results
    assert any("expected the text 'STREAMED'" in finding.message for finding in result.findings)
    assert key not in json.dumps(result.to_dict())


def test_the_pytest_plugin_keeps_header_values_secret(pytester: pytest.Pytester) -> None:
    tenant = "tenant-" + secrets.token_hex(16)
    with echoing_server(tenant) as base_url:
        result = pytester.runpytest(
            "--conformance",
            "--conformance-base-url",
            base_url,
            "--api-key",
            "k",
            "--conformance-header",
            f"x-tenant:{tenant}",
            "-k",
            "streaming.text",
        )
    result.assert_outcomes(failed=1)
    assert "expected the text 'STREAMED', got 'key=[REDACTED]'" in result.stdout.str()
    assert tenant not in result.stdout.str() + result.stderr.str()


def test_a_secret_spelt_with_json_escapes_in_an_event_is_redacted_from_its_parse() -> None:
    """Events are redacted by their parse only where the text could hide a secret: it holds one, or an
    escape that may spell one. An escaped key is found; an event that can hold none is left as it came."""
    from conformance.model import Exchange, Request, Response, SSEEvent
    from conformance.redact import Redactor

    key = "test-key-" + secrets.token_hex(16)
    escaped = "\\u0074" + key[1:]  # the key's first letter as a JSON escape: not in the text as it stands
    texts = [f'{{"text": "{escaped}"}}', json.dumps({"text": key}), json.dumps({"text": "plain"})]
    events = [SSEEvent(event="delta", data=text, json=json.loads(text)) for text in texts]
    clean = events[2].json
    exchange = Exchange(Request(method="POST", url="http://x/v1/messages", headers={}))
    exchange.response = Response(status=200, headers={}, events=events)
    Redactor([key]).exchange(exchange)
    assert [event.json["text"] for event in events] == [REDACTED, REDACTED, "plain"]
    assert key not in events[1].data and events[2].json is clean


@pytest.mark.parametrize("secret", ["test-key-0123456789abcdef", 'key "quoted" \\ and\ttabbed', "clé-secrète-éèà"])
def test_json_text_is_redacted_where_a_secret_shows_and_left_as_it_is_where_none_does(secret: str) -> None:
    """JSON text written by json.dumps(ensure_ascii=False) holds a secret in a string, or a key, as that
    secret written the same way: such a text is redacted through its parse, any other returned unparsed."""
    from conformance.redact import Redactor

    redactor = Redactor([secret])
    clean = json.dumps({"text": "nothing here", "list": [1, 2.5, None]}, ensure_ascii=False)
    assert redactor.json_text(clean) is clean
    holding = json.dumps({"text": f"the key is {secret}", secret: [secret]}, ensure_ascii=False)
    redacted = redactor.json_text(holding)
    assert json.loads(redacted) == {"text": f"the key is {REDACTED}", REDACTED: [REDACTED]}
    assert json.dumps(secret, ensure_ascii=False)[1:-1] not in redacted
