"""Transient is not failure: 429, 529, 503 with retry-after, resets and timeouts are sent again a
bounded number of times, and what stays transient is `error`, never `failed` or `unsupported`."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import struct
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from conformance.cases import load_cases
from conformance.cli import main
from conformance.model import Exchange, Outcome, Request, Response
from conformance.reference import ReferenceServer
from conformance.retry import MAX_RETRY_WAIT, TRANSIENT_ERRORS, RetryPolicy, is_transient, retry_after
from conformance.runner import RETRY_CHECK, run_suite
from conformance.target import Target
from conformance.transport import Limits, Transport
from tests.flaky import ANSWERS, FlakyFront
from tests.hostile import Writer, hostile_server

KEY = "test-key-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository

pytest_plugins = ["pytester"]


def answer(status: int, **headers: str) -> Exchange:
    return Exchange(request=Request("POST", "http://x/v1/messages"), response=Response(status, headers=headers))


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert retry_after("5") == 5.0
    assert retry_after(format_datetime(now + timedelta(seconds=12), usegmt=True), now=now) == 12.0
    assert retry_after(format_datetime(now - timedelta(seconds=12), usegmt=True), now=now) == 0.0
    for unreadable in (None, "", "soon", "²", "-3", "1.5e99"):
        assert retry_after(unreadable) is None
    assert retry_after("9" * 5000) == MAX_RETRY_WAIT


def test_the_wait_honours_retry_after_up_to_the_cap_and_backs_off_without_it() -> None:
    policy = RetryPolicy(retries=3)
    assert policy.wait(1, answer(429, **{"retry-after": "2"}).response) == 2.0
    assert policy.wait(1, answer(429, **{"retry-after": "3600"}).response) == MAX_RETRY_WAIT
    assert [policy.wait(n, None) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert policy.wait(20, None) == MAX_RETRY_WAIT


def test_what_is_transient() -> None:
    assert is_transient(answer(429)) and is_transient(answer(529))
    assert is_transient(answer(503, **{"retry-after": "1"})) and not is_transient(answer(503))
    assert not is_transient(answer(429), 429) and not is_transient(answer(529), [529, 500])
    assert not is_transient(answer(400)) and not is_transient(answer(200))
    assert is_transient(Exchange(request=Request("POST", "http://x"), error="timeout: no response within 5 s"))
    assert not is_transient(Exchange(request=Request("POST", "http://x"), error="connection failed: refused"))


def cases_by_id(*ids: str) -> list:
    catalogue = {case.id: case for case in load_cases()}
    return [catalogue[case_id] for case_id in ids]


def run_against_answer(raw: bytes, ids: tuple[str, ...], retries: int = 2) -> tuple[dict, int]:
    """Run cases against a server that answers every request with `raw`; the results and the request count."""
    seen = []

    async def write(writer: asyncio.StreamWriter) -> None:
        seen.append(1)
        writer.write(raw)

    async def go():
        async with hostile_server(write) as base_url:
            target = Target(base_url=base_url, api_key=KEY)
            return await run_suite(target, cases_by_id(*ids), retry=RetryPolicy(retries=retries))

    report = asyncio.run(go())
    return {result.id: result for result in report.results}, len(seen)


def test_a_lasting_overload_is_an_error_after_the_retries_not_a_failure() -> None:
    results, requests = run_against_answer(
        ANSWERS["529"].replace(b"\r\n\r\n", b"\r\nretry-after: 0\r\n\r\n", 1), ("text.string-content",)
    )
    result = results["text.string-content"]
    assert requests == 3
    assert result.outcome is Outcome.ERROR
    assert result.reason.startswith("the target answered 529 overloaded_error 3 times")
    assert result.attempts == 3
    assert any(f.check == RETRY_CHECK and "sent 3 times" in f.message for f in result.findings)


def test_an_optional_feature_rate_limited_is_an_error_not_unsupported() -> None:
    optional = next(case for case in load_cases() if case.optional and len(case.steps) == 1)
    results, _ = run_against_answer(ANSWERS["429"], (optional.id,), retries=0)
    assert results[optional.id].outcome is Outcome.ERROR
    assert results[optional.id].reason.startswith("the target answered 429 rate_limit_error once")


def test_a_case_that_expects_the_status_is_not_retried() -> None:
    results, requests = run_against_answer(ANSWERS["429"], ("errors.rate-limited",))
    assert requests == 1
    assert results["errors.rate-limited"].attempts == 1
    assert results["errors.rate-limited"].outcome is not Outcome.ERROR


def results_in(out: Path) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads((out / "report.json").read_text())["results"]}


@pytest.mark.parametrize("retries", [4, 0])
def test_a_flaky_target_fails_exactly_the_cases_a_clean_one_fails(tmp_path: Path, retries: int) -> None:
    """With a fifth of the requests answered 429, 529 or a reset, a case a transient answer touched has the
    outcome of a clean run, or `error` when it stayed transient: a transient answer is never a verdict."""
    key = "flaky-" + secrets.token_hex(16)
    with ReferenceServer(api_key=key) as server:
        main(["run", "--base-url", server.base_url, "--api-key", key, "--out", str(tmp_path / "clean")])
        with FlakyFront(server.base_url, share=0.2, seed=7) as front:
            argv = ["run", "--base-url", front.base_url, "--api-key", key, "--retries", str(retries)]
            main([*argv, "--out", str(tmp_path / "flaky")])
    assert sum(front.faults_served.values()) >= 10 and len(front.faults_served) == 3
    clean, flaky = results_in(tmp_path / "clean"), results_in(tmp_path / "flaky")
    assert clean.keys() == flaky.keys()
    errors = set()
    for case_id, result in flaky.items():
        if result["outcome"] == clean[case_id]["outcome"]:
            continue
        # A case no fault touched (sent once, not an error) may differ only as the target itself varies
        # between two runs (a stream's timing, say): no transient answer made that verdict.
        assert result["outcome"] == "error" or result.get("attempts", 1) == 1, (case_id, result["reason"])
        if result["outcome"] == "error":
            assert "transient" in result["reason"] or result["reason"].startswith(TRANSIENT_ERRORS), result["reason"]
            errors.add(case_id)
    if retries:
        assert len(errors) <= 2  # still transient after five tries: 0.2 ** 5 of the requests
    else:
        assert errors  # a fifth of the requests failing shows without retries


def test_the_pytest_plugin_retries_too(pytester: pytest.Pytester) -> None:
    with ReferenceServer() as server, FlakyFront(server.base_url, share=1.0, faults=("429",)) as front:
        argv = ["--conformance", "--conformance-base-url", front.base_url, "--api-key", "k"]
        result = pytester.runpytest(*argv, "-k", "text.string-content", "--conformance-retries", "1")
    result.assert_outcomes(failed=1)
    assert "the target answered 429 rate_limit_error twice" in result.stdout.str()
    assert front.faults_served == {"429": 2}


def test_negative_retries_are_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--conformance", "--conformance-retries", "-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--conformance-retries must be 0 or more, got -1" in result.stderr.str()


def test_a_401_is_a_rejected_key_only_where_the_run_sent_its_own_credentials() -> None:
    body = b'{"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}'
    refusal = (
        b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\nrequest-id: req_1\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
    )
    results, requests = run_against_answer(refusal, ("text.string-content", "headers.bearer-auth"))
    assert requests == 2  # a rejected key is not transient
    assert results["text.string-content"].outcome is Outcome.ERROR
    assert results["text.string-content"].reason.startswith("the target rejected the key: 401 authentication_error")
    assert results["headers.bearer-auth"].outcome is Outcome.FAILED  # it tests the auth style itself


def wire_failure(write: Writer) -> Exchange:
    async def go() -> Exchange:
        async with hostile_server(write) as base_url, Transport(limits=Limits(timeout=5, max_silence=2)) as transport:
            return await transport.send(Request("POST", base_url + "/v1/messages", body={}))

    return asyncio.run(go())


async def reset(writer: asyncio.StreamWriter) -> None:
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def hang_up(writer: asyncio.StreamWriter) -> None:
    pass


async def not_http(writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


@pytest.mark.parametrize(("write", "transient"), [(reset, True), (hang_up, True), (not_http, False)])
def test_wire_failures_worth_another_try(write: Writer, transient: bool) -> None:
    """Told apart on the transport's own errors: a reset or a hang-up is transient, an answer that is not HTTP not."""
    exchange = wire_failure(write)
    assert exchange.error and is_transient(exchange) is transient, exchange.error
