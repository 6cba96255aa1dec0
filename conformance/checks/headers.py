"""Header checks: the request-id every response carries, and the content type that matches the body.

The docs promise a request-id on every response ("Every API response includes a unique request-id
header"), so the cases written for it (headers.request-id*, through their `expect.headers`) fail
without it. Everywhere else a missing request-id is a warning: one absent header is one failed case,
not a failure of every case that would hide the differences that matter to a client.

Header names are compared without regard to case; header values are not validated beyond
presence (recorders and proxies replace ids with placeholders).
"""

from __future__ import annotations

from conformance.checks.common import MESSAGES, check, endpoint, header, request_body, response, succeeded
from conformance.model import Exchange, Finding, Severity

JSON = "application/json"
EVENT_STREAM = "text/event-stream"


@check("headers.request-id")
def request_id(exchange: Exchange) -> list[Finding]:
    """Every response, success or error, JSON or stream, has a non-empty request-id header."""
    value = header(response(exchange), "request-id")
    if value is not None and value.strip():
        return []
    return [
        Finding(
            check="headers.request-id",
            message=f"the HTTP {response(exchange).status} response has "
            + ("an empty request-id header" if value is not None else "no request-id header"),
            spec_ref="headers.request-id",
            severity=Severity.WARNING,
        )
    ]


def expected_media_type(exchange: Exchange) -> str:
    """A 2xx answer to a `stream: true` Messages request is an event stream; everything else (errors too) is JSON."""
    streamed = endpoint(exchange) == MESSAGES and request_body(exchange).get("stream") is True
    return EVENT_STREAM if streamed and succeeded(exchange) else JSON


@check("headers.content-type")
def content_type(exchange: Exchange) -> list[Finding]:
    """The Content-Type names the media type the contract prescribes (parameters such as charset are fine).
    Not for HEAD (a reachability probe such as Claude Code's `HEAD /`): no body, no media type to judge."""
    if exchange.request.method.upper() == "HEAD":
        return []
    res = response(exchange)
    expected = expected_media_type(exchange)
    value = header(res, "content-type")
    media_type = (value or "").split(";", 1)[0].strip().lower()
    if media_type == expected:
        return []
    if expected == EVENT_STREAM:
        what = "the response to a stream: true request"
    elif succeeded(exchange):
        what = f"the HTTP {res.status} response to a non-stream request"
    else:
        what = f"the HTTP {res.status} error response"
    shown = repr(value) if value is not None else "no Content-Type header"
    return [
        Finding(
            check="headers.content-type",
            message=f"{what} has {shown}; expected {expected}",
            spec_ref="headers.content-type",
        )
    ]
