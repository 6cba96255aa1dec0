"""Transient is not failure: 429, 529, 503 with retry-after, resets and timeouts are sent again a
bounded number of times, and what stays transient is `error`, never `failed` or `unsupported`."""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from conformance.cases import load_cases
from conformance.model import Exchange, Outcome, Request, Response
from conformance.retry import MAX_RETRY_WAIT, RetryPolicy, describe_answer, is_transient, retry_after
from conformance.runner import RETRY_CHECK, run_suite
from conformance.target import Target
from conformance.transport import Limits, Transport
from tests.hostile import HostileRequest, HostileServer, Writer, hostile_server
from tests.hostile_targets import error_answer, send

KEY = "test-key-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository

pytest_plugins = ["pytester"]

RATE_LIMITED = error_answer(429, "rate_limit_error", "retry-after: 0\r\n")
OVERLOADED = error_answer(529, "overloaded_error", "retry-after: 0\r\n")


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


def test_an_answer_is_described_by_its_status_and_the_error_type_it_names() -> None:
    def answered(status: int, body: object) -> Response:
        return Response(status, json=body)

    assert (
        describe_answer(answered(529, {"type": "error", "error": {"type": "overloaded_error"}}))
        == "529 overloaded_error"
    )
    for unnamed in (None, {"error": "overloaded"}, {"error": {"type": 529}}, {"error": {"type": ""}}):
        assert describe_answer(answered(503, unnamed)) == "503"


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
    results, requests = run_against_answer(OVERLOADED, ("text.string-content",))
    result = results["text.string-content"]
    assert requests == 3
    assert result.outcome is Outcome.ERROR
    assert result.reason.startswith("the target answered 529 overloaded_error 3 times")
    assert result.attempts == 3
    assert any(f.check == RETRY_CHECK and "sent 3 times" in f.message for f in result.findings)


def test_an_optional_feature_rate_limited_is_an_error_not_unsupported() -> None:
    optional = next(case for case in load_cases() if case.optional and len(case.steps) == 1)
    results, _ = run_against_answer(RATE_LIMITED, (optional.id,), retries=0)
    assert results[optional.id].outcome is Outcome.ERROR
    assert results[optional.id].reason.startswith("the target answered 429 rate_limit_error once")


def test_a_case_that_expects_the_status_is_not_retried() -> None:
    results, requests = run_against_answer(RATE_LIMITED, ("errors.rate-limited",))
    assert requests == 1
    assert results["errors.rate-limited"].attempts == 1
    assert results["errors.rate-limited"].outcome is not Outcome.ERROR


def test_the_pytest_plugin_retries_too(pytester: pytest.Pytester) -> None:
    async def rate_limited(request: HostileRequest, writer: asyncio.StreamWriter) -> None:
        await send(writer, [RATE_LIMITED])

    with HostileServer({"rate-limited": rate_limited}) as server:
        argv = ["--conformance", "--conformance-base-url", server.url("rate-limited"), "--api-key", "k"]
        result = pytester.runpytest(*argv, "-k", "text.string-content", "--conformance-retries", "1")
    result.assert_outcomes(failed=1)
    assert "the target answered 429 rate_limit_error twice" in result.stdout.str()
    assert server.received("rate-limited") == 2


def test_negative_retries_are_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--conformance", "--conformance-retries", "-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--conformance-retries: expected a whole number, 0 or more, got '-1'" in result.stderr.str()


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
