"""`conformance proxy` against hostile clients and upstreams: an exchange the judge crashes on is
an error and the rest are judged, slow clients are cut off, what is kept is bounded, results are
appended as they come and the big reports written on stop, no credential is kept anywhere, and
what the client saw go wrong is shown."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conformance.cli import main
from conformance.model import Exchange, Outcome, Request, Response, RunReport
from conformance.proxy import ProxyServer, ProxySession
from conformance.proxy.judging import judge_failed
from conformance.proxy.recording import MAX_MARKS, Capture
from conformance.reference import ReferenceServer, create_app
from tests.proxying import upstream_and_proxy

KEY = "test-key-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository
PORTKEY = "pk-" + secrets.token_hex(16)
LITELLM = "sk-litellm-" + secrets.token_hex(16)
VIRTUAL = "vk-" + secrets.token_hex(16)
MODEL = "claude-haiku-4-5"
VERSION = {"anthropic-version": "2023-06-01"}
HELLO = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [{"type": "text", "text": "Hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 1},
}


def sse(*events: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


START = ("message_start", {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None}})
BLOCK = [
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
]
END = [
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}}),
    ("message_stop", {"type": "message_stop"}),
]


@dataclass
class Answer:
    """What the scripted upstream sends: status, headers, body chunks; `cut` breaks the connection after them."""

    body: bytes | list[bytes]
    status: int = 200
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    cut: bool = False


class Scripted:
    """An ASGI upstream answering the i-th request with `answers[i]` (the last one again past the end)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = answers
        self.served = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        answer = self.answers[min(self.served, len(self.answers) - 1)]
        self.served += 1
        headers = [(b"content-type", answer.content_type.encode()), (b"request-id", b"req_01")]
        headers += [(name.encode(), value.encode()) for name, value in answer.headers]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        for chunk in [answer.body] if isinstance(answer.body, bytes) else answer.body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if answer.cut:
            raise ConnectionError("the upstream went away")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@contextmanager
def scripted(tmp_path: Path, *answers: Answer, **session: Any) -> Iterator[Any]:
    """A proxy in front of a scripted upstream; yields the proxy (its report is there once the block exits)."""
    with (
        ReferenceServer(app=Scripted(*answers)) as upstream,
        proxy_to(upstream.base_url, tmp_path, **session) as proxy,
    ):
        yield proxy


@contextmanager
def proxy_to(upstream: str, out: Path, header_timeout: float = 30.0, **session: Any) -> Iterator[ProxyServer]:
    with ProxyServer(upstream, ProxySession(upstream, out, **session), header_timeout=header_timeout) as proxy:
        yield proxy


def report_of(proxy: ProxyServer) -> RunReport:
    assert proxy.report is not None
    return proxy.report


def strict(text: str) -> Any:
    """Parse as strict JSON: NaN and Infinity are refused."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def post(proxy: ProxyServer, body: Any = None, content: bytes | None = None, **headers: str) -> httpx.Response:
    sent = {"x-api-key": KEY, **VERSION, "content-type": "application/json", **headers}
    data = content if content is not None else json.dumps(body if body is not None else HELLO).encode()
    return httpx.post(proxy.base_url + "/v1/messages", content=data, headers=sent, timeout=30)


# -- 1. an exchange the judge cannot handle is an error; the others are judged -------------------------------------


NESTED = b"[" * 1000 + b"]" * 1000


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param({"content": b'{"model": "m", "messages": ' + NESTED + b"}"}, id="request-nested-1000"),
        pytest.param({"answer": Answer(b'{"content": ' + NESTED + b"}")}, id="response-nested-1000"),
        pytest.param(
            {"answer": Answer([b"retry: \xc2\xb2\n", sse(START, *BLOCK, *END)], content_type="text/event-stream")},
            id="sse-retry-superscript",
        ),
        pytest.param({"answer": Answer(b'{"usage": {"output_tokens": ' + b"9" * 5000 + b"}}")}, id="long-integer"),
        pytest.param({"answer": Answer(b'{"type": "message", "usage": {"output_tokens": NaN}}')}, id="nan"),
    ],
)
def test_a_hostile_exchange_never_stops_the_judging_of_the_next_ones(tmp_path: Path, hostile: dict[str, Any]) -> None:
    answers = [hostile.get("answer", Answer(json.dumps(MESSAGE).encode())), Answer(json.dumps(MESSAGE).encode())]
    with scripted(tmp_path, *answers) as proxy:
        post(proxy, content=hostile.get("content"))
        assert post(proxy).status_code == 200
    first, second = report_of(proxy).results
    assert second.outcome is Outcome.PASSED, second.reason
    if first.outcome is Outcome.ERROR:
        assert first.reason.startswith("the judge failed on this exchange: ")
    # Every file is written, as strict JSON where it is JSON, whatever the first exchange held.
    for name in ("report.json", "cassette.json"):
        assert len(strict((tmp_path / name).read_text())["results" if name == "report.json" else "cases"]) == 2
    lines = [strict(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [line["id"] for line in lines] == ["proxy.0001", "proxy.0002"]
    assert (tmp_path / "junit.xml").stat().st_size and (tmp_path / "report.html").stat().st_size


def test_the_judge_failing_is_said_in_one_sentence() -> None:
    exchange = Exchange(Request("POST", "http://127.0.0.1:9/v1/messages", raw_body="[[[["), Response(status=200))
    result = judge_failed(7, exchange, RecursionError("maximum recursion depth exceeded"))
    assert (result.id, result.outcome) == ("proxy.0007", Outcome.ERROR)
    assert result.reason == "the judge failed on this exchange: RecursionError: maximum recursion depth exceeded"
    assert result.title == "POST /v1/messages -> 200" and result.exchanges == [exchange]


# -- 2. slow and broken clients ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("drip", [False, True], ids=["silent", "dripping"])
def test_a_client_that_does_not_send_its_headers_in_time_is_cut_off(tmp_path: Path, drip: bool) -> None:
    with ReferenceServer(api_key=KEY) as upstream, proxy_to(upstream.base_url, tmp_path, header_timeout=1.0) as proxy:
        host, port = proxy.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            started = time.monotonic()
            closed = False
            dripped = b"POST /v1/messages HTTP/1.1\r\nhost: x\r\n" + b"".join(b"x-pad-%d: y\r\n" % n for n in range(40))
            for byte in dripped if drip else []:  # a head that stays well-formed: only the timeout can end it
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    closed = True
                    break
                time.sleep(0.05)
                if time.monotonic() - started > 30:  # hang guard
                    break
            if not closed:
                assert sock.recv(1) == b""  # the proxy closed the connection (a hang ends in socket.timeout)
        # A client that behaves is still served.
        assert post(proxy).status_code == 200


def test_a_dripped_body_keeps_a_bounded_number_of_arrival_times() -> None:
    capture = Capture("POST", "http://x/v1/messages", [], limit=MAX_MARKS * 4)
    for index in range(MAX_MARKS * 2):
        capture.take(b"x", index / 1000)
    assert len(capture.marks) == MAX_MARKS and capture.merged_marks == MAX_MARKS
    assert len(capture.response_body) == capture.response_size == MAX_MARKS * 2
    assert sum(len(chunk) for _, chunk in capture.chunks()) == MAX_MARKS * 2


# -- 3. results appended as they come, reports on stop ---------------------------------------------------------------


def test_results_are_appended_as_they_come_and_the_reports_written_on_stop(tmp_path: Path) -> None:
    with upstream_and_proxy(create_app(KEY), tmp_path) as (_, proxy):
        for _ in range(3):
            assert post(proxy).status_code == 200
        deadline = time.monotonic() + 30
        while len((tmp_path / "results.jsonl").read_text().splitlines()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not (tmp_path / "report.json").exists()  # nothing rewritten while traffic flows
        proxy.proxy.session.request_flush()  # what SIGUSR1 asks for
        while not (tmp_path / "report.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(strict((tmp_path / "report.json").read_text())["results"]) == 3
        assert post(proxy).status_code == 200
    lines = [strict(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [line["outcome"] for line in lines] == ["passed"] * 4
    assert len(strict((tmp_path / "report.json").read_text())["results"]) == 4


def test_flush_every_writes_the_reports_while_traffic_flows(tmp_path: Path) -> None:
    with ReferenceServer(api_key=KEY) as upstream, proxy_to(upstream.base_url, tmp_path, flush_every=0.2) as proxy:
        assert post(proxy).status_code == 200
        deadline = time.monotonic() + 30
        while not (tmp_path / "report.json").exists():
            assert time.monotonic() < deadline, "--flush-every wrote no report"
            time.sleep(0.05)
        assert len(strict((tmp_path / "report.json").read_text())["results"]) == 1


def test_a_report_file_that_cannot_be_written_is_said_and_the_others_are_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "report.json").mkdir()  # in the way of the report
    with ReferenceServer(api_key=KEY) as upstream, proxy_to(upstream.base_url, tmp_path) as proxy:
        assert post(proxy).status_code == 200
    assert "conformance proxy: cannot write report.json, junit.xml and report.html" in capsys.readouterr().err
    assert len(strict((tmp_path / "cassette.json").read_text())["cases"]) == 1
    assert set(proxy.paths) == {"cassette", "results"}


def test_exchanges_past_max_exchanges_are_relayed_and_counted_not_kept(tmp_path: Path) -> None:
    with ReferenceServer(api_key=KEY) as upstream, proxy_to(upstream.base_url, tmp_path, max_exchanges=2) as proxy:
        assert [post(proxy).status_code for _ in range(4)] == [200] * 4
    assert len(report_of(proxy).results) == 2
    tally = proxy.session.tally()
    assert (tally.exchanges, tally.unrecorded) == (4, 2)
    assert "2 past --max-exchanges relayed, not recorded" in tally.line()


def test_exchanges_the_judge_has_no_room_for_are_relayed_and_counted_as_not_judged(tmp_path: Path) -> None:
    with ReferenceServer(api_key=KEY) as upstream, proxy_to(upstream.base_url, tmp_path, max_pending_bytes=10) as proxy:
        assert [post(proxy).status_code for _ in range(2)] == [200] * 2
    tally = proxy.session.tally()
    assert (len(report_of(proxy).results), tally.behind, tally.not_judged) == (0, 2, 2)
    assert "2 could not be judged, 2 relayed but not judged (the judge fell behind)" in tally.line()


def test_the_report_plans_the_output_tokens_the_requests_asked_for(tmp_path: Path) -> None:
    with upstream_and_proxy(create_app(KEY), tmp_path) as (_, proxy):
        post(proxy, {**HELLO, "max_tokens": 16})
        post(proxy, {**HELLO, "max_tokens": 40})
    assert proxy.report.planned_max_output_tokens == 56


# -- 4. secrets -----------------------------------------------------------------------------------------------------


CREDENTIAL_HEADERS = {
    "x-portkey-api-key": PORTKEY,
    "x-litellm-api-key": f"Bearer {LITELLM}",
    "x-portkey-virtual-key": VIRTUAL,
}


def test_no_credential_the_client_sends_is_kept_anywhere(tmp_path: Path) -> None:
    echo = [("x-echo-" + KEY, "1"), ("x-seen", PORTKEY)]
    stream = [f"event: {KEY}\nid: {VIRTUAL}\ndata: {{}}\n\n".encode(), sse(START, *BLOCK, *END)]
    answers = [Answer(stream, content_type="text/event-stream", headers=echo), Answer(json.dumps(MESSAGE).encode())]
    out = tmp_path / "out"
    with scripted(out, *answers, public_headers=frozenset({"X-Team-Token"})) as proxy:
        post(proxy, {**HELLO, "stream": True}, **CREDENTIAL_HEADERS, **{"x-team-token": "team-blue-public"})
        post(proxy, **CREDENTIAL_HEADERS)
    cases = tmp_path / "cases.yaml"
    assert main(["cases", "from-capture", str(out), "-o", str(cases), "--public-header", "x-team-token"]) == 0
    files = [*out.iterdir(), cases]
    assert {path.name for path in files} >= {"report.json", "cassette.json", "results.jsonl", "report.html"}
    for path in files:
        text = path.read_text()
        for secret in (KEY, PORTKEY, LITELLM, VIRTUAL):
            assert secret not in text, (path.name, secret)
    assert "team-blue-public" in (out / "cassette.json").read_text()  # marked public: kept as it is
    written = yaml.safe_load(cases.read_text())["cases"][0]["request"]
    assert written["headers"]["x-team-token"] == "team-blue-public" and "auth" not in written
    assert not {name for name in written["headers"] if "portkey" in name or "litellm" in name}
    assert "left out x-litellm-api-key, x-portkey-api-key, x-portkey-virtual-key" in cases.read_text()


def test_from_capture_drops_credentials_a_cassette_still_holds(tmp_path: Path) -> None:
    """A capture recorded before these headers were redacted: from-capture must not copy them into a case."""
    cassette = {
        "cassette_version": 1,
        "target": {"base_url": "http://127.0.0.1:9", "provider": "anthropic"},
        "cases": [
            {
                "id": "proxy.0001",
                "outcome": "passed",
                "exchanges": [
                    {
                        "request": {
                            "method": "POST",
                            "url": "http://127.0.0.1:9/v1/messages",
                            "headers": {"x-portkey-api-key": PORTKEY, "anthropic-version": "2023-06-01"},
                            "body": {**HELLO, "metadata": {"user_id": f"user {PORTKEY}"}},
                        },
                        "response": {"status": 200, "headers": {}, "body": MESSAGE},
                    }
                ],
            }
        ],
    }
    (tmp_path / "cassette.json").write_text(json.dumps(cassette))
    output = tmp_path / "x.yaml"
    assert main(["cases", "from-capture", str(tmp_path), "-o", str(output)]) == 0
    text = output.read_text()
    assert PORTKEY not in text and "x-portkey-api-key" in text.split("feature:")[0]  # named in the comment only


# -- 5. what the client saw -------------------------------------------------------------------------------------------


def test_an_error_answered_to_the_client_fails_the_exchange_even_when_correct(tmp_path: Path) -> None:
    body = {**HELLO, "messages": []}
    with upstream_and_proxy(create_app(KEY), tmp_path) as (_, proxy):
        response = post(proxy, body)
    assert response.status_code == 400
    (result,) = proxy.report.results
    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("client saw HTTP 400: ") and result.reason == result.findings[0].message
    assert [f.check for f in result.findings] == ["proxy.client-visible"]  # the answer itself is fine
    assert strict((tmp_path / "results.jsonl").read_text())["client_visible"] == result.reason


@pytest.mark.parametrize(
    ("answer", "seen"),
    [
        (Answer(json.dumps(MESSAGE).encode()), "client asked for a stream and got application/json, not an SSE stream"),
        (Answer([sse(START, *BLOCK)], content_type="text/event-stream", cut=True), "client saw the stream cut: "),
        (Answer(sse(START, *END), content_type="text/event-stream"), None),
        (Answer(sse(START, *BLOCK[1:], *END), content_type="text/event-stream"), "client got a stream it could not"),
    ],
    ids=["not-sse", "cut", "clean", "broken-grammar"],
)
def test_a_stream_the_client_could_not_parse_is_client_visible(
    tmp_path: Path, answer: Answer, seen: str | None
) -> None:
    with (
        scripted(tmp_path, answer) as proxy,
        httpx.stream(
            "POST",
            proxy.base_url + "/v1/messages",
            json={**HELLO, "stream": True},
            headers={"x-api-key": KEY, **VERSION},
            timeout=30,
        ) as response,
        contextlib.suppress(httpx.HTTPError),  # the cut stream
    ):
        b"".join(response.iter_raw())
    (result,) = report_of(proxy).results
    visible = [f.message for f in result.findings if f.check == "proxy.client-visible"]
    if seen is None:
        assert not visible
    else:
        assert visible and visible[0].startswith(seen), visible
        assert result.outcome is Outcome.FAILED


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_proxy_command_shows_what_the_client_saw_and_fails(tmp_path: Path) -> None:
    with ReferenceServer(api_key=KEY) as upstream:
        address = f"127.0.0.1:{_free_port()}"
        argv = [sys.executable, "-m", "conformance", "proxy", "--listen", address, "--upstream", upstream.base_url]
        argv += ["--out", str(tmp_path / "out")]
        env = {**os.environ, "COLUMNS": "200"}
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"http://{address}/", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and process.poll() is None, "the proxy did not start"
                    time.sleep(0.1)
            bad = {**HELLO, "output_config": {"nonsense": True}}
            for body in [HELLO] * 7 + [bad] * 4:
                httpx.post(f"http://{address}/v1/messages", json=body, headers={"x-api-key": KEY, **VERSION})
            report = tmp_path / "out" / "report.json"
            assert not report.exists()  # written on stop, or when asked:
            process.send_signal(signal.SIGUSR1)
            while not report.exists():
                assert time.monotonic() < deadline + 30, "SIGUSR1 wrote no report"
                time.sleep(0.1)
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "Traceback" not in err and KEY not in out + err
    assert "12 exchanges, 4 answered the client with an error" in out
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert len(lines) == 12 and any("client saw HTTP 400: " in line for line in out.splitlines())
    # The columns stay aligned past [9].
    assert len({line.index("proxy.") for line in lines}) == 1
