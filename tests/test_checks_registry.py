"""The check registry and run_checks."""

from __future__ import annotations

import pytest

from conformance.checks import CHECKS, endpoint, run_checks
from conformance.model import Exchange
from tests.exchanges import COUNT_TOKENS_URL, MESSAGES_URL, message, message_exchange, request

EXPECTED = {
    "schema.message", "schema.count-tokens", "schema.error", "schema.stream-event", "schema.unknown-type",
    "stream.grammar", "stream.done-sentinel", "stream.unknown-event", "stream.truncated", "stream.block-start",
    "stream.keepalive",
    "reassembly",
    "semantics.stop-reason", "semantics.usage", "semantics.identity", "semantics.thinking-signature",
    "semantics.tool-use", "semantics.count-tokens", "semantics.citations",
    "errors.envelope", "errors.status-map", "errors.stream-event",
    "headers.request-id", "headers.content-type",
}  # fmt: skip


def test_the_registry_holds_every_check():
    assert set(CHECKS) == EXPECTED


def test_no_response_means_no_findings():
    exchange = Exchange(request=request(), response=None, error="connection refused")
    assert run_checks(exchange) == []
    for check in CHECKS.values():
        assert check(exchange) == []


def test_run_checks_can_select_checks():
    exchange = message_exchange(message(stop_reason="stop"), headers={"content-type": "application/json"})
    assert {f.check for f in run_checks(exchange)} == {"schema.message", "headers.request-id"}
    assert {f.check for f in run_checks(exchange, ["headers.request-id"])} == {"headers.request-id"}
    with pytest.raises(KeyError):
        run_checks(exchange, ["no.such.check"])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (MESSAGES_URL, "messages"),
        (MESSAGES_URL + "?beta=true", "messages"),
        (COUNT_TOKENS_URL + "?beta=true", "count_tokens"),
        ("https://openrouter.ai/api/v1/messages", "messages"),
        ("http://127.0.0.1:8080/anthropic/v1/messages/count_tokens/", "count_tokens"),
        ("https://gateway.example.test/v1/models", None),
    ],
)
def test_endpoint_from_the_url(url, expected):
    assert endpoint(Exchange(request=request(url=url))) == expected


def test_other_endpoints_are_not_judged_as_messages():
    exchange = message_exchange({"data": [], "has_more": False})
    exchange.request.url = "https://gateway.example.test/v1/models"
    assert {f.check for f in run_checks(exchange)} == set()
