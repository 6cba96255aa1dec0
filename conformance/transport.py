"""Sending requests and recording what comes back, within bounds, with secrets redacted.

Every exchange is recorded whatever happens: a hostile endpoint (garbage SSE, an endless stream,
a huge body, silence) ends in a recorded, truncated exchange that the checks judge, and an
unreachable one in an exchange with `error` set. Nothing here raises for the endpoint's sake.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from conformance.model import Exchange, Request, Response
from conformance.redact import Redactor
from conformance.sse import SSEParser, parse_json_payload


@dataclass(frozen=True)
class Limits:
    """Bounds on one exchange, so that no endpoint can hang or flood the suite."""

    timeout: float = 60.0
    connect_timeout: float = 10.0
    max_silence: float = 30.0
    max_body_bytes: int = 8 * 1024 * 1024
    max_events: int = 20_000


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
    """Keeps what a response delivers within the bounds: the body (capped), the SSE events as they
    complete (capped), the time of the first byte, and why reading stopped early, if it did.

    Used by the suite's own requests and by `conformance proxy` for the traffic it relays.
    """

    def __init__(self, response: Response, limits: Limits) -> None:
        self.response = response
        self.limits = limits
        self.body = bytearray()
        self.parser: SSEParser | None = None
        if is_event_stream(response.headers.get("content-type", "")):
            response.events = []
            self.parser = SSEParser()

    def take(self, chunk: bytes, now: float) -> bool:
        """Keep a chunk received `now` seconds after the request; False once a bound is hit (stop reading)."""
        response = self.response
        if response.first_byte is None:
            response.first_byte = now
        room = self.limits.max_body_bytes - len(self.body)
        if len(chunk) > room:
            response.truncated = f"the body exceeded {self.limits.max_body_bytes} bytes"
            chunk = chunk[:room]
        self.body.extend(chunk)
        if self.parser is not None and response.events is not None:
            response.events.extend(self.parser.feed(chunk, now))
            if len(response.events) > self.limits.max_events:
                del response.events[self.limits.max_events :]
                response.truncated = f"the stream exceeded {self.limits.max_events} events"
        return response.truncated is None

    def finish(self, elapsed: float) -> Response:
        """The recorded response, once reading ended (normally or not)."""
        response = self.response
        response.elapsed = elapsed
        response.text = self.body.decode("utf-8", errors="replace")
        if self.parser is not None:
            if self.parser.pending and response.truncated is None:
                response.truncated = "the stream ended in the middle of an event"
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


class Transport:
    """An httpx client that turns requests into recorded, bounded, redacted exchanges."""

    def __init__(self, limits: Limits | None = None, redactor: Redactor | None = None) -> None:
        self.limits = limits or Limits()
        self.redactor = redactor or Redactor()
        timeout = httpx.Timeout(self.limits.max_silence, connect=self.limits.connect_timeout)
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, request: Request, step: int = 0) -> Exchange:
        """Send one request; always return an Exchange (never raise for the endpoint's sake)."""
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
                exchange.error = f"timeout: no response within {self.limits.timeout:g} s"
            else:
                progress.response.truncated = f"the response did not end within {self.limits.timeout:g} s"
        except httpx.ReadTimeout:
            if progress.response is None:
                exchange.error = f"timeout: no response headers within {self.limits.max_silence:g} s"
            else:
                progress.response.truncated = f"no bytes for {self.limits.max_silence:g} s (max silence)"
        except httpx.ConnectError as exc:
            exchange.error = f"connection failed: {exc or type(exc).__name__}"
        except httpx.ConnectTimeout:
            exchange.error = f"connection timed out after {self.limits.connect_timeout:g} s"
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if progress.response is None:
                exchange.error = f"transport error: {detail}"
            else:
                progress.response.truncated = f"the connection broke while reading: {detail}"
        if progress.recorder is not None:
            exchange.response = progress.recorder.finish(time.monotonic() - started)
        return self.redactor.exchange(exchange)

    async def _read(self, request: Request, content: bytes | None, progress: _Progress, started: float) -> None:
        async with self._client.stream(request.method, request.url, headers=request.headers, content=content) as r:
            headers = joined_headers(r.headers.multi_items())
            recorder = ResponseRecorder(Response(status=r.status_code, headers=headers), self.limits)
            progress.recorder = recorder
            async for chunk in r.aiter_bytes():
                if not recorder.take(chunk, time.monotonic() - started):
                    return
