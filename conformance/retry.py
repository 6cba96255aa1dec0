"""Transient answers and how long to wait before asking again (docs/reference/robustness.md, "Retries").

A rate limit, an overload or a connection reset says nothing about the contract: the runner sends
such a request again a bounded number of times, and what stays transient is an `error`, never a
contract verdict. Pure functions over recorded exchanges, so the judge can tell them apart too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from conformance.model import Exchange, Response
from conformance.transport import TRANSIENT_ERRORS

DEFAULT_RETRIES = 2
# The longest wait before a retry, whatever `retry-after` asks: no target can park the run.
MAX_RETRY_WAIT = 30.0
# The wait before the first retry when the answer names none; it doubles with each retry.
FIRST_BACKOFF = 0.5
# Statuses that mean "try again later"; 503 only when the answer says when (`retry-after`).
TRANSIENT_STATUSES = frozenset({429, 529})


@dataclass(frozen=True)
class RetryPolicy:
    """How many more times a transient answer is asked again."""

    retries: int = DEFAULT_RETRIES

    def wait(self, retry: int, response: Response | None) -> float:
        """Seconds to wait before retry number `retry` (1 for the first): the answer's retry-after, or backoff;
        at most MAX_RETRY_WAIT."""
        asked = retry_after(response.headers.get("retry-after")) if response is not None else None
        wait = asked if asked is not None else FIRST_BACKOFF * 2 ** (retry - 1)
        return max(0.0, min(wait, MAX_RETRY_WAIT))


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """The seconds a `retry-after` value asks for (delay-seconds or an HTTP date); None when unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value) if len(value) < 10 else MAX_RETRY_WAIT
    from email.utils import parsedate_to_datetime  # here: an HTTP date is rare, and the module slow to import

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def transient_status(response: Response) -> bool:
    """A status that asks the client to come back later."""
    return response.status in TRANSIENT_STATUSES or (response.status == 503 and "retry-after" in response.headers)


def expected(wanted_status: Any, response: Response) -> bool:
    """The answer's status is one the step expects (`expect.status`: an int, "4xx" or a list of them)."""
    from conformance.checks.expect import status_problem  # here: the command line imports this module for its flags

    return status_problem(wanted_status, response.status, None) is None


def is_transient(exchange: Exchange, wanted_status: Any = 200) -> bool:
    """True when the exchange is worth sending again: a transient status the step does not expect,
    or no answer because of a reset, a broken connection or a timeout."""
    if exchange.response is None:
        return (exchange.error or "").startswith(TRANSIENT_ERRORS)
    return transient_status(exchange.response) and not expected(wanted_status, exchange.response)


def describe_answer(response: Response) -> str:
    """ "529 overloaded_error": the status and the error type an answer names."""
    from conformance.checks.expect import error_type  # here, as in `expected`

    kind = error_type(response.json)
    return f"{response.status} {kind}" if isinstance(kind, str) and kind else str(response.status)
