"""The `warning` outcome: a case whose only findings beyond notes are warnings; a failure outweighs them."""

from __future__ import annotations

import pytest

from conformance.cases import Case, Step, StepRequest
from conformance.judge import decide, judge
from conformance.model import Finding, Outcome, Severity
from tests.exchanges import message, message_exchange

CASE = Case(
    id="text.basic", feature="text", spec="messages.response.message", tier="core", steps=(Step(StepRequest(), {}),)
)
WARNING = Finding("stream.keepalive", "50.1 s passed without any event", "stream.ping", Severity.WARNING)
NOTE = Finding("stream.unknown-event", "unknown event type 'x'", "stream.unknown-events", Severity.NOTE)
FAILURE = Finding("stream.grammar", "message_stop is missing", "stream.grammar")


@pytest.mark.parametrize(
    ("findings", "outcome", "reason"),
    [
        ([], Outcome.PASSED, ""),
        ([NOTE], Outcome.PASSED, ""),
        ([NOTE, WARNING], Outcome.WARNING, WARNING.message),
        ([WARNING, FAILURE], Outcome.FAILED, FAILURE.message),
    ],
)
def test_the_outcome_weighs_warnings_between_notes_and_failures(findings, outcome, reason):
    assert decide(CASE, findings, [message_exchange()]) == (outcome, reason)


def test_a_message_without_request_id_and_stop_sequence_is_a_warning_not_a_failure():
    body = message()
    del body["stop_sequence"]
    result = judge(CASE, [message_exchange(body, headers={"content-type": "application/json"})])
    assert result.outcome is Outcome.WARNING
    assert {f.check for f in result.findings if f.severity is Severity.WARNING} == {
        "headers.request-id",
        "schema.message",
    }
