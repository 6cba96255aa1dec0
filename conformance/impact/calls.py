"""Which recorded calls a report gives the clients to replay (pure): every exchange of a non-passing
case that is a Messages or count_tokens call, with the contract's answer to it, or why it cannot be
replayed (no response recorded, a response the suite stopped reading, evidence cut by the report
bounds)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from conformance.impact.oracle import Expected, expected_answer
from conformance.model import CaseResult, Exchange, Outcome, Response
from conformance.transport import CUT_SHORT, HUNG

MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
# Outcomes whose cases are replayed: everything but a pass or a skip.
QUIET_OUTCOMES = frozenset({Outcome.PASSED, Outcome.SKIPPED})
# Cut parts of an exchange that leave its response incomplete.
RESPONSE_CUTS = ("body", "events", "event_data", "budget")
# How a replayed response ends: whole, with the connection closed before its end (the target did
# that), or left open (the target went silent; the client's own bound decides).
COMPLETE, ABORT, HOLD = "complete", "abort", "hold"


@dataclass(frozen=True)
class Call:
    """One recorded call to replay: the request's shape, the recorded response and the contract's answer."""

    key: str
    case_id: str
    path: str
    stream: bool
    body: Any
    response: Response
    expected: Expected
    ending: str = COMPLETE
    step: int = 0
    # The case step's expectations (None when the case is not in the catalogue).
    expect: dict[str, Any] | None = None

    def control(self, response: Response) -> Call:
        """The same call answered with `response` (the contract's answer), judged against its own content."""
        expected = expected_answer(response, self.body, self.path == COUNT_TOKENS, self.expect)
        return replace(self, key=f"c{self.key}", response=response, expected=expected, ending=COMPLETE)

    def job(self, base_url: str) -> dict[str, Any]:
        """The call as the client scripts read it."""
        return {"key": self.key, "base_url": base_url, "path": self.path, "stream": self.stream, "body": self.body}

    @property
    def claude_code_sends_it(self) -> bool:
        return claude_code_sends(self.path, self.stream, self.response.status)


@dataclass(frozen=True)
class Unreplayable:
    """A call whose effect is unknown, and why."""

    case_id: str
    path: str
    stream: bool
    status: int | None
    reason: str

    @property
    def claude_code_sends_it(self) -> bool:
        return claude_code_sends(self.path, self.stream, self.status)


def claude_code_sends(path: str, stream: bool, status: int | None) -> bool:
    """Claude Code streams every Messages call: it meets a recorded stream, or an error (answered the
    same to a streamed call), never a JSON message nor a token count."""
    return path == MESSAGES and (stream or (status or 0) >= 400)


def endpoint(exchange: Exchange) -> str | None:
    """/v1/messages or /v1/messages/count_tokens for a POST to either, else None."""
    path = urlsplit(exchange.request.url).path.rstrip("/")
    if exchange.request.method.upper() != "POST":
        return None
    for known in (COUNT_TOKENS, MESSAGES):
        if path.endswith(known):
            return known
    return None


def ending_of(response: Response) -> str | None:
    """How the replay ends `response`: None when the suite stopped reading it at one of its own bounds
    (what came after is not known)."""
    if not response.truncated:
        return COMPLETE
    if response.truncated.startswith(CUT_SHORT):
        return ABORT
    if response.truncated.startswith(HUNG):
        return HOLD
    return None


def _why_unreplayable(exchange: Exchange) -> str | None:
    response = exchange.response
    if response is None:
        return f"no response was recorded ({exchange.error or 'no answer'})"
    if ending_of(response) is None:
        return f"the recording stopped reading the response: {response.truncated}"
    cut = [part for part in RESPONSE_CUTS if part in (exchange.evidence_cut or {})]
    if cut:
        return f"the report bounds cut the recorded response ({', '.join(cut)}): replaying part of it would mislead"
    return None


def calls_of(
    result: CaseResult, expectations: list[dict[str, Any]] | None, first_key: int
) -> list[Call | Unreplayable]:
    """The replayable calls of one case (keys numbered from `first_key`); `expectations` are its
    steps' expectations when the case is known."""
    found: list[Call | Unreplayable] = []
    for exchange in result.exchanges:
        path = endpoint(exchange)
        if path is None:
            continue
        body = exchange.request.body
        stream = isinstance(body, dict) and body.get("stream") is True
        why = _why_unreplayable(exchange)
        if why is not None or exchange.response is None:
            status = exchange.response.status if exchange.response else None
            found.append(Unreplayable(result.id, path, stream, status, why or "no response"))
            continue
        expect = expectations[exchange.step] if expectations and exchange.step < len(expectations) else None
        expected = expected_answer(exchange.response, body, path == COUNT_TOKENS, expect)
        key = str(first_key + len(found))
        ending = ending_of(exchange.response) or COMPLETE
        found.append(
            Call(key, result.id, path, stream, body, exchange.response, expected, ending, exchange.step, expect)
        )
    return found


def replayed_results(results: list[CaseResult]) -> list[CaseResult]:
    return [result for result in results if result.outcome not in QUIET_OUTCOMES]
