"""Sending requests and recording what comes back, within bounds, with secrets redacted.

Every exchange is recorded whatever happens: a hostile endpoint (garbage SSE, an endless stream,
a huge body, a compression bomb, silence, an answer that is not HTTP) ends in a recorded,
truncated exchange that the checks judge, and an unreachable one in an exchange with `error` set,
each with one sentence saying what happened. Nothing here raises for the endpoint's sake.

The body is read as it came over the wire and its Content-Encoding undone here, within the
bounds (conformance.decoding), not by httpx, which would decode a bomb without limit. The
response keeps its headers, so the declared encoding stays on record beside the decoded body.
"""

from __future__ import annotations

import errno
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from conformance.bounded_json import parse_json_payload
from conformance.decoding import ACCEPT_ENCODING, BodyDecoder
from conformance.model import Exchange, Request, Response
from conformance.redact import Redactor
from conformance.sse import MAX_EVENT_BYTES, SSEParser

# How the error of an exchange that got no answer begins, for the kinds worth another try
# (conformance.retry): timeouts, and a connection closed unanswered, reset or broken. A refused
# connection (nothing listens) and an answer that is not HTTP are not: sending again gets the same.
_TIMEOUT = "timeout"
_CONNECT_TIMEOUT = "connection timed out"
_TRANSPORT_ERROR = "transport error: "
_CLOSED_UNANSWERED = "the target closed the connection without answering"
_RESET = "the target reset the connection"
_BROKE = "the connection broke"
TRANSIENT_ERRORS = (
    _TIMEOUT,
    _CONNECT_TIMEOUT,
    *(_TRANSPORT_ERROR + failure for failure in (_CLOSED_UNANSWERED, _RESET, _BROKE)),
)
# How a response's `truncated` begins when the target cut it short, or left it hanging (conformance.impact
# replays each as it happened).
_CLOSED_INCOMPLETE = "the target closed the connection before the body was complete"
_MID_EVENT = "the stream ended in the middle of an event"
_NO_END = "the response did not end within"
_SILENT = "no bytes for"
CUT_SHORT = (_CLOSED_UNANSWERED, _CLOSED_INCOMPLETE, _RESET, _MID_EVENT)
HUNG = (_NO_END, _SILENT)


@dataclass(frozen=True)
class Limits:
    """Bounds on one exchange, so that no endpoint can hang or flood the suite."""

    timeout: float = 60.0
    connect_timeout: float = 10.0
    max_silence: float = 30.0
    # The body as received and once decoded (a compressed body may expand no further than this).
    max_body_bytes: int = 8 * 1024 * 1024
    max_events: int = 20_000
    # One SSE line, and one event's fields together.
    max_event_bytes: int = MAX_EVENT_BYTES


def joined_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-case name, the values of a repeated header joined with ", "."""
    headers: dict[str, str] = {}
    for name, value in items:
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def is_event_stream(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "text/event-stream"


class ResponseRecorder:
    """Keeps what a response delivers within the bounds: the body (decoded, capped), the SSE events as
    they complete (capped), the time of the first byte, and why reading stopped early, if it did.

    Used by the suite's own requests and by `conformance proxy` for the traffic it relays.
    """

    def __init__(self, response: Response, limits: Limits) -> None:
        self.response = response
        self.limits = limits
        self.body = bytearray()
        self.decoder = BodyDecoder(response.headers.get("content-encoding", ""), limits.max_body_bytes)
        # A body that cannot be decoded is not read at all.
        response.truncated = self.decoder.problem
        self.parser: SSEParser | None = None
        if is_event_stream(response.headers.get("content-type", "")):
            response.events = []
            self.parser = SSEParser(limits.max_event_bytes)

    def take(self, chunk: bytes, now: float) -> bool:
        """Keep a chunk as received (still encoded) `now` seconds after the request; False once a bound
        is hit or the body cannot be decoded (stop reading)."""
        response = self.response
        if response.first_byte is None:
            response.first_byte = now
        if response.truncated is not None:
            return False
        data = self.decoder.decode(chunk)
        self.body.extend(data)
        response.truncated = self.decoder.stopped
        if self.parser is not None and response.events is not None:
            response.events.extend(self.parser.feed(data, now))
            if len(response.events) > self.limits.max_events:
                del response.events[self.limits.max_events :]
                response.truncated = f"the stream exceeded {self.limits.max_events} events"
            response.truncated = response.truncated or self.parser.stopped
        return response.truncated is None

    def finish(self, elapsed: float) -> Response:
        """The recorded response, once reading ended (normally or not)."""
        response = self.response
        response.elapsed = elapsed
        response.text = self.body.decode("utf-8", errors="replace")
        response.truncated = response.truncated or self.decoder.unfinished()
        if self.parser is not None:
            if self.parser.pending and response.truncated is None:
                response.truncated = _MID_EVENT
        elif response.text.strip():
            response.json, _ = parse_json_payload(response.text)
        return response


@dataclass
class _Progress:
    """What has been read so far; kept outside the reading task so a deadline loses nothing."""

    recorder: ResponseRecorder | None = None

    @property
    def response(self) -> Response | None:
        return self.recorder.response if self.recorder is not None else None


class _FirstUseTransport:
    """httpx's default transport (TLS verified against its CA bundle), made when it is first used."""

    def __init__(self) -> None:
        self._transport: Any = None

    async def handle_async_request(self, request: Any) -> Any:
        if self._transport is None:
            import httpx

            self._transport = httpx.AsyncHTTPTransport()
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()


class Transport:
    """An httpx client that turns requests into recorded, bounded, redacted exchanges."""

    def __init__(self, limits: Limits | None = None, redactor: Redactor | None = None) -> None:
        self.limits = limits or Limits()
        self.redactor = redactor or Redactor()
        import httpx  # imported where used: the command line imports this module for Limits alone

        timeout = httpx.Timeout(self.limits.max_silence, connect=self.limits.connect_timeout)
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"accept-encoding": ACCEPT_ENCODING},
            # Plain http needs no TLS context: loading the CA bundle (about 80 ms) is left to the first https request.
            transport=_FirstUseTransport(),
            mounts={"http://": httpx.AsyncHTTPTransport(verify=False)},
        )

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, request: Request, step: int = 0) -> Exchange:
        """Send one request; always return an Exchange (never raise for the endpoint's sake)."""
        import asyncio

        import httpx

        if request.raw_body is not None:
            content = request.raw_body.encode()
        elif request.body is not None:
            content = json.dumps(request.body, ensure_ascii=False).encode()
        else:
            content = None
        progress = _Progress()
        started = time.monotonic()
        exchange = Exchange(request=request, step=step)
        try:
            await asyncio.wait_for(self._read(request, content, progress, started), self.limits.timeout)
        except asyncio.TimeoutError:
            if progress.response is None:
                exchange.error = f"{_TIMEOUT}: no response within {self.limits.timeout:g} s"
            else:
                progress.response.truncated = f"{_NO_END} {self.limits.timeout:g} s"
        except httpx.ReadTimeout:
            if progress.response is None:
                exchange.error = f"{_TIMEOUT}: no response headers within {self.limits.max_silence:g} s"
            else:
                progress.response.truncated = f"{_SILENT} {self.limits.max_silence:g} s (max silence)"
        except httpx.ConnectError as exc:
            exchange.error = f"connection failed: {exc or type(exc).__name__}"
        except httpx.ConnectTimeout:
            exchange.error = f"{_CONNECT_TIMEOUT} after {self.limits.connect_timeout:g} s"
        except Exception as exc:  # nothing the endpoint sends may raise out of here, whatever it breaks
            if progress.response is None:
                exchange.error = _TRANSPORT_ERROR + describe_failure(exc, reading=False)
            else:
                progress.response.truncated = progress.response.truncated or describe_failure(exc, reading=True)
        if progress.recorder is not None:
            exchange.response = progress.recorder.finish(time.monotonic() - started)
        return self.redactor.exchange(exchange)

    async def _read(self, request: Request, content: bytes | None, progress: _Progress, started: float) -> None:
        async with self._client.stream(request.method, request.url, headers=request.headers, content=content) as r:
            headers = joined_headers(r.headers.multi_items())
            recorder = ResponseRecorder(Response(status=r.status_code, headers=headers), self.limits)
            progress.recorder = recorder
            async for chunk in r.aiter_raw():
                if not recorder.take(chunk, time.monotonic() - started):
                    return


def describe_failure(exc: BaseException, reading: bool) -> str:
    """What went wrong on the wire, in one sentence; `reading`: the response head had arrived."""
    import httpx

    when = "while reading the body" if reading else "before the response"
    text = str(exc)
    if isinstance(exc, (httpx.LocalProtocolError, httpx.UnsupportedProtocol)):
        return f"the request could not be sent: {text or type(exc).__name__}"
    if isinstance(exc, httpx.RemoteProtocolError):
        if text.startswith("illegal status line"):
            line = text.partition(": ")[2].removeprefix("bytearray(").removesuffix(")")
            return f"the target's answer is not HTTP: malformed status line {line}"
        if text.startswith("Server disconnected without sending a response"):
            return _CLOSED_UNANSWERED
        if "without sending complete message body" in text:
            return f"{_CLOSED_INCOMPLETE} ({text.rpartition('(')[2]}"
        return f"the target's answer is not valid HTTP: {text}"
    if _was_reset(exc):
        return f"{_RESET} {when}"
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, httpx.HTTPError):
        return f"{_BROKE} {when}: {detail}"
    return f"reading stopped on an unexpected error {when}: {detail}"


def _was_reset(exc: BaseException) -> bool:
    """Whether a connection reset (ECONNRESET, EPIPE) is behind an exception, however deeply wrapped."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if (
            isinstance(seen, (ConnectionResetError, BrokenPipeError))
            or getattr(seen, "errno", None) == errno.ECONNRESET
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
