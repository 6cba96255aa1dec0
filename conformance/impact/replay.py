"""The loopback replay server: answers every request under /replay/<key>/ with the response once
recorded for that key (status, headers, body or stream), whatever was asked, as often as asked.
A response the target cut short is cut short again (the connection closed where it was); one the
target left hanging is left open until the client gives up.

A stream is sent as recorded: the raw text when the recording kept it (a cassette), otherwise its
events written back one by one as `event:`/`data:` lines, each in its own chunk. A JSON body is
sent as report.json kept it (parsed, so written back without its original spacing). Headers are
sent as recorded, less those that describe the original connection and transfer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from starlette.types import Receive, Scope, Send

from conformance.impact.calls import ABORT, HOLD
from conformance.model import Response, SSEEvent
from conformance.reference import ReferenceServer

PREFIX = "/replay/"
# Headers of the original connection and transfer, not of the answer.
HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"})
# How long a response left hanging is held open, at most, when its client does not give up first.
HOLD_SECONDS = 120.0
NOT_RECORDED = b'{"type":"error","error":{"type":"not_found_error","message":"no recorded response for this path"}}'


def event_bytes(event: SSEEvent) -> bytes:
    """One event as server-sent-event lines, ending with its blank line."""
    lines = [] if event.event is None else [f"event: {event.event}"]
    if event.id is not None:
        lines.append(f"id: {event.id}")
    if event.retry is not None:
        lines.append(f"retry: {event.retry}")
    lines += [f"data: {line}" for line in event.data.split("\n")]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def body_chunks(response: Response) -> Iterator[bytes]:
    """The recorded body, in the chunks it is sent in."""
    if response.events is not None and not response.text:
        for event in response.events:
            yield event_bytes(event)
    else:
        yield response.text.encode("utf-8")


def replay_headers(response: Response, length: int | None) -> list[tuple[bytes, bytes]]:
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1", "replace"))
        for name, value in response.headers.items()
        if name.lower() not in HOP_HEADERS
    ]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return headers


class ReplayAborted(Exception):
    """Raised after a response's last recorded byte, so that the server drops the connection there."""


class ReplayApp:
    """An ASGI app serving `responses` by key: /replay/<key>/... answers with the response and ending
    recorded for that key."""

    def __init__(self, responses: Mapping[str, tuple[Response, str]]) -> None:
        self.responses = dict(responses)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await _drain(receive)
        key = scope["path"][len(PREFIX) :].partition("/")[0] if scope["path"].startswith(PREFIX) else ""
        response, ending = self.responses.get(key, (None, ""))
        if response is None:
            await send(
                {"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": NOT_RECORDED})
            return
        chunks = list(body_chunks(response))
        length = None if response.events is not None else sum(len(chunk) for chunk in chunks)
        await send(
            {"type": "http.response.start", "status": response.status, "headers": replay_headers(response, length)}
        )
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if ending == ABORT:
            raise ReplayAborted("the recorded response ended here, its connection closed")
        if ending == HOLD:
            await _until_disconnected(receive)
        await send({"type": "http.response.body", "body": b""})


async def _drain(receive: Receive) -> None:
    message: dict[str, Any] = {"more_body": True}
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _until_disconnected(receive: Receive) -> None:
    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(disconnected(), HOLD_SECONDS)


class ReplayServer(ReferenceServer):
    """The replay app on a free loopback port; `url_for(key)` is the base URL a client is given.
    Its log stays quiet: the connections it drops on purpose are not errors."""

    def __init__(self, responses: Mapping[str, tuple[Response, str]]) -> None:
        super().__init__(app=ReplayApp(responses), options={"log_level": "critical"})

    def url_for(self, key: str) -> str:
        return f"{self.base_url}{PREFIX}{key}"
