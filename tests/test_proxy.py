"""`conformance proxy` between the official anthropic SDK and the reference server (or a broken
variant of it): the client gets exactly the upstream's bytes, and the report judges every exchange."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from conformance.model import Outcome, RunReport
from conformance.reference import ReferenceServer, create_app
from conformance.transport import Limits
from tests.broken_variants import API_KEY, DoneSentinel, OpenAIErrors
from tests.proxying import RANDOM_IDS, ClientTap, UpstreamTap, proxied, upstream_and_proxy

KEY = "test-key-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository
MODEL = "claude-haiku-4-5"
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def sdk(base_url: str, tap: ClientTap | None = None, key: str = KEY) -> anthropic.Anthropic:
    http_client = httpx2.Client(transport=tap) if tap is not None else None
    return anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0, http_client=http_client)


def conversation(client: anthropic.Anthropic) -> None:
    """A streamed create, then a tool round trip (the second turn streamed too)."""
    with client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Reply with exactly: streamed"}]
    ) as stream:
        assert stream.get_final_text() == "streamed"
    ask = {"role": "user", "content": "Use the get_weather tool for Paris."}
    first = client.messages.create(model=MODEL, max_tokens=200, tools=[WEATHER], messages=[ask])
    call = next(block for block in first.content if block.type == "tool_use")
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}
    turn = [ask, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}]
    with client.messages.stream(model=MODEL, max_tokens=200, tools=[WEATHER], messages=turn) as stream:
        assert "Sunny, 21 C" in stream.get_final_text()


def outcomes(report: RunReport) -> dict[str, Outcome]:
    return {result.id: result.outcome for result in report.results}


def checks(report: RunReport) -> set[str]:
    return {finding.check for result in report.results for finding in result.findings}


def test_sdk_through_the_proxy_gets_the_upstreams_bytes_and_a_clean_report(tmp_path: Path) -> None:
    upstream = UpstreamTap(create_app(KEY))
    client_tap = ClientTap()
    with upstream_and_proxy(upstream, tmp_path) as (direct_url, proxy):
        conversation(sdk(proxy.base_url, client_tap))
        direct_tap = ClientTap()
        conversation(sdk(direct_url, direct_tap))
    assert len(client_tap.received) == 3
    # Exactly the bytes the upstream sent, for each of the three answers.
    assert [bytes(body) for body in client_tap.received] == [bytes(body) for body in upstream.sent[:3]]
    # And the same answers as a direct call, but for the ids drawn per request.
    same = [[RANDOM_IDS.sub(b"ID", bytes(body)) for body in tap.received] for tap in (client_tap, direct_tap)]
    assert same[0] == same[1]

    report = proxy.report
    summary = report.summary()
    assert (summary["passed"], summary["failed"], summary["error"]) == (3, 0, 0)
    streamed = report.results[0].exchanges[0]
    assert streamed.response is not None and streamed.response.events
    assert streamed.request.body["messages"][0]["content"] == "Reply with exactly: streamed"
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["summary"]["passed"] == 3 and (tmp_path / "report.html").stat().st_size > 0
    for name in ("report.json", "report.html", "junit.xml", "cassette.json"):
        assert KEY not in (tmp_path / name).read_text()


def test_a_compressed_answer_is_relayed_compressed_and_judged_decoded(tmp_path: Path) -> None:
    upstream = UpstreamTap(create_app(KEY))
    body = {"model": MODEL, "max_tokens": 1000, "messages": [{"role": "user", "content": "Count from 1 to 400"}]}
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "accept-encoding": "gzip"}
    with (
        upstream_and_proxy(upstream, tmp_path) as (_, proxy),
        httpx.stream("POST", proxy.base_url + "/v1/messages", json=body, headers=headers) as response,
    ):
        raw = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "gzip"
    assert raw == bytes(upstream.sent[0])
    (result,) = proxy.report.results
    assert result.outcome is Outcome.PASSED
    recorded = result.exchanges[0].response
    assert recorded is not None and recorded.json["content"][0]["text"].endswith("399 400")


@pytest.mark.parametrize(
    ("variant", "expected"),
    [(DoneSentinel, "stream.done-sentinel"), (OpenAIErrors, "errors.envelope")],
)
def test_a_broken_upstream_is_reported_and_still_relayed(tmp_path: Path, variant: type, expected: str) -> None:
    upstream = UpstreamTap(variant())
    client_tap = ClientTap()
    with upstream_and_proxy(upstream, tmp_path) as (_, proxy):
        client = sdk(proxy.base_url, client_tap, key=API_KEY)
        with client.messages.stream(
            model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "Reply with exactly: hi"}]
        ) as stream:
            stream.get_final_text()
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(model=MODEL, max_tokens=32, messages=[])
    assert [bytes(body) for body in client_tap.received] == [bytes(body) for body in upstream.sent]
    report = proxy.report
    assert Outcome.FAILED in outcomes(report).values()
    assert expected in checks(report)


def test_an_unreachable_upstream_gives_the_client_a_502_and_the_report_a_finding(tmp_path: Path) -> None:
    with proxied("http://127.0.0.1:9", tmp_path) as proxy:
        response = httpx.post(proxy.base_url + "/v1/messages", json={}, headers={"x-api-key": KEY})
    assert response.status_code == 502
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "api_error"
    (result,) = proxy.report.results
    assert result.outcome is Outcome.ERROR
    assert "proxy.upstream" in {finding.check for finding in result.findings}
    assert KEY not in (tmp_path / "report.json").read_text()


def test_a_stream_is_relayed_as_it_arrives_not_when_it_ends(tmp_path: Path) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 32,
        "stream": True,
        "messages": [{"role": "user", "content": "Simulate delay: 1"}],
    }
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    upstream = UpstreamTap(create_app(KEY))
    with (
        upstream_and_proxy(upstream, tmp_path) as (_, proxy),
        httpx.stream("POST", proxy.base_url + "/v1/messages", json=body, headers=headers) as response,
    ):
        chunks = iter(response.iter_raw())
        assert b"message_start" in next(chunks)
        # The client has the start while the upstream is still working on the rest.
        assert b"message_stop" not in bytes(upstream.sent[0])
        assert b"message_stop" in b"".join(chunks)


def test_only_the_recorded_copy_is_capped(tmp_path: Path) -> None:
    body = {"model": MODEL, "max_tokens": 2000, "messages": [{"role": "user", "content": "Count from 1 to 900"}]}
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "accept-encoding": "identity"}
    limits = Limits(max_body_bytes=1024)
    with upstream_and_proxy(create_app(KEY), tmp_path, limits) as (_, proxy):
        response = httpx.post(proxy.base_url + "/v1/messages", json=body, headers=headers)
    assert response.json()["content"][0]["text"].endswith("899 900")  # the client got all of it
    notes = [f.message for f in proxy.report.results[0].findings if f.check == "proxy.recording"]
    assert any("exceeded the recording limit" in note for note in notes)


def test_requests_outside_the_api_are_relayed_and_recorded_not_judged(tmp_path: Path) -> None:
    with upstream_and_proxy(create_app(KEY), tmp_path) as (_, proxy):
        assert httpx.head(proxy.base_url + "/").status_code == 200
    (result,) = proxy.report.results
    assert result.outcome is Outcome.SKIPPED and result.title == "HEAD / -> 200"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.head(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"the proxy did not start: {process.communicate()}")


def test_the_proxy_command_relays_until_stopped_and_exits_with_the_verdict(tmp_path: Path) -> None:
    with ReferenceServer(api_key=KEY) as upstream:
        url = f"http://127.0.0.1:{_free_port()}"
        argv = [sys.executable, "-m", "conformance", "proxy", "--listen", url.removeprefix("http://")]
        argv += ["--upstream", upstream.base_url, "--out", str(tmp_path / "out")]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
        try:
            _wait_for(url, process)
            with sdk(url).messages.stream(
                model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "Hi"}]
            ) as stream:
                stream.get_final_text()
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Traceback" not in err and "PASSED" in out and "POST /v1/messages -> 200, stream of" in out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [r["outcome"] for r in report["results"]] == ["skipped", "passed"]  # the start-up probe, then the SDK


@pytest.mark.parametrize(
    "argv",
    [
        ["proxy"],
        ["proxy", "--upstream", "ftp://x"],
        ["proxy", "--upstream", "http://127.0.0.1:9", "--listen", "nowhere"],
        ["proxy", "--upstream", "http://127.0.0.1:9", "--max-body-bytes", "0"],
    ],
)
def test_proxy_usage_errors_exit_2(argv: list[str]) -> None:
    from conformance.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


def test_proxy_misspelt_provider_is_one_line_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.cli import main

    assert main(["proxy", "--upstream", "http://127.0.0.1:9", "--provider", "openrouterr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "unknown provider 'openrouterr': did you mean 'openrouter'?" in err
