"""The Starlette application: routes, and the admission checks every request goes through.

Admission runs in the order of the real service: body size (413), credentials (401),
anthropic-version (400), Content-Type and JSON (400); then the body is validated (400) and
answered. Every response carries a `request-id` header, and every error body the same id.
"""

from __future__ import annotations

import asyncio
import gzip
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformance.reference import ids, programmatic
from conformance.reference.errors import APIError, error_body, error_response, invalid_request
from conformance.reference.responses import ORGANIZATION_ID, build_message, rate_limit_headers
from conformance.reference.scripted import Directives, read_directives, read_prompt, respond
from conformance.reference.streaming import Item, encode, failing_events, message_events
from conformance.reference.tokens import count_input
from conformance.reference.validation import (
    SUPPORTED_VERSIONS,
    RequestContext,
    validate_count_request,
    validate_messages_request,
)

MAX_BODY_BYTES = 32 * 1024 * 1024
KNOWN_MODEL_PREFIX = "claude"
EVENT_STREAM = "text/event-stream; charset=utf-8"
# JSON answers at least this large are gzip-compressed for a client that accepts gzip; streams never are.
GZIP_MIN_BYTES = 1024


def create_app(api_key: str | None = None, *, max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    """The reference server as an ASGI app. With `api_key` None (or empty) any non-empty key is accepted."""
    service = _Service(api_key or None, max_body_bytes)
    routes = [
        Route("/v1/messages", service.messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", service.count_tokens, methods=["POST"]),
        Route("/", _root, methods=["HEAD", "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    ]
    handlers = {HTTPException: _http_error, APIError: _api_error, Exception: _unexpected_error}
    return Starlette(routes=routes, middleware=[Middleware(RequestIdMiddleware)], exception_handlers=handlers)


class RequestIdMiddleware:
    """Gives each request a `req_…` id (in `request.state.request_id`) and puts it on the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ids.request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("request-id", request_id)
                headers.setdefault("anthropic-organization-id", ORGANIZATION_ID)
            await send(message)

        await self.app(scope, receive, send_with_id)


class _Service:
    def __init__(self, api_key: str | None, max_body_bytes: int) -> None:
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes

    async def messages(self, request: Request) -> Response:
        context, body = await self._admit(request)
        params = validate_messages_request(body, context)
        _require_known_model(params["model"])
        prompt = read_prompt(params["messages"])
        directives = read_directives(prompt)
        streaming = params.get("stream", False)
        failure = directives.error or (None if streaming else directives.stream_error)
        if failure:
            raise APIError.of_type(failure)
        turn = respond(params, prompt)
        message = programmatic.answer(params, prompt, turn) or build_message(params, turn, count_input(params))
        headers = rate_limit_headers(message["usage"]["input_tokens"], message["usage"]["output_tokens"])
        if not streaming:
            return _json_answer(message, headers, request.headers)
        return _event_stream(message, directives, request.state.request_id, headers)

    async def count_tokens(self, request: Request) -> Response:
        context, body = await self._admit(request)
        params = validate_count_request(body, context)
        _require_known_model(params["model"])
        input_tokens = count_input(params)
        return JSONResponse({"input_tokens": input_tokens}, headers=rate_limit_headers(input_tokens, 0))

    async def _admit(self, request: Request) -> tuple[RequestContext, dict[str, Any]]:
        """The checks before validation, in the order the real service makes them."""
        raw = await self._read_body(request)
        self._authenticate(request.headers)
        version = _version(request.headers)
        _require_json_content_type(request.headers)
        body = _parse_json(raw)
        return RequestContext(version=version, betas=_betas(request.headers)), body

    async def _read_body(self, request: Request) -> bytes:
        """The body, refusing (413) as soon as it is known to exceed the limit, without reading further."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise APIError.of_type("request_too_large")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise APIError.of_type("request_too_large")
            chunks.append(chunk)
        return b"".join(chunks)

    def _authenticate(self, headers: Headers) -> None:
        keys = [headers.get("x-api-key", "").strip()]
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            keys.append(token.strip())
        keys = [key for key in keys if key]
        if not keys:
            raise APIError(401, "x-api-key header is required")
        if self.api_key is not None and not any(_same(key, self.api_key) for key in keys):
            raise APIError(401, "invalid x-api-key")


async def _root(request: Request) -> Response:
    """`HEAD /` answers the reachability probe clients such as Claude Code send; any other method is a 404."""
    if request.method != "HEAD":
        raise HTTPException(404)
    return Response(status_code=200, media_type="application/json")


def _json_answer(message: dict[str, Any], headers: dict[str, str], request_headers: Headers) -> Response:
    """A Message as JSON, gzip-compressed when it is large and the client accepts gzip."""
    response = JSONResponse(message, headers=headers)
    if len(response.body) < GZIP_MIN_BYTES or not _accepts_gzip(request_headers.get("accept-encoding", "")):
        return response
    compressed = {**headers, "content-encoding": "gzip", "vary": "accept-encoding"}
    return Response(gzip.compress(response.body), headers=compressed, media_type="application/json")


def _accepts_gzip(accept_encoding: str) -> bool:
    """True when Accept-Encoding names gzip (or *) without q=0."""
    for item in accept_encoding.lower().split(","):
        name, _, params = item.partition(";")
        quality = params.replace(" ", "").removeprefix("q=")
        if name.strip() in ("gzip", "*") and quality not in ("0", "0.0", "0.00", "0.000"):
            return True
    return False


def _require_known_model(model: str) -> None:
    """Any Claude model name is served (aliases and snapshots alike); another name is an unknown model."""
    if not model.startswith(KNOWN_MODEL_PREFIX):
        raise APIError(404, f"model: {model}")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _version(headers: Headers) -> str:
    """The anthropic-version; a repeated header reads as its values joined, which is no version."""
    values = headers.getlist("anthropic-version")
    if not values:
        raise invalid_request("anthropic-version: header is required")
    version = ", ".join(values)
    if version not in SUPPORTED_VERSIONS:
        raise invalid_request(f'anthropic-version: "{version}" is not a valid version')
    return version


def _betas(headers: Headers) -> tuple[str, ...]:
    """anthropic-beta values, whether comma-separated or in repeated headers."""
    return tuple(
        beta.strip() for value in headers.getlist("anthropic-beta") for beta in value.split(",") if beta.strip()
    )


def _require_json_content_type(headers: Headers) -> None:
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise invalid_request("Content-Type must be application/json")


def _parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_request(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object")
    return body


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are not JSON, although Python's parser takes them."""
    raise ValueError(f"{name} is not a valid JSON value")


def _event_stream(
    message: dict[str, Any], directives: Directives, request_id: str, headers: dict[str, str]
) -> StreamingResponse:
    """The answer as SSE, or (for "Simulate stream error") a stream that fails after message_start."""
    if directives.stream_error:
        failure = APIError.of_type(directives.stream_error)
        events = failing_events(message, error_body(failure.error_type, failure.message, request_id))
    else:
        events = message_events(message, directives.pings, directives.delay, directives.unknown_event)
    return StreamingResponse(_sse(events), headers={**headers, "cache-control": "no-cache"}, media_type=EVENT_STREAM)


async def _sse(events: Iterator[Item]) -> AsyncIterator[bytes]:
    """Send each event as soon as it is made, yielding to the loop so it goes out on its own;
    a number in the sequence is a pause of that many seconds."""
    for event in events:
        if isinstance(event, (int, float)):
            await asyncio.sleep(event)
            continue
        yield encode(event)
        await asyncio.sleep(0)


def _request_id(request: Request) -> str:
    return request.scope.get("state", {}).get("request_id") or ids.request_id()


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return error_response(exc, _request_id(request))


async def _http_error(request: Request, exc: Exception) -> Response:
    """Routing refusals (unknown path, wrong method) in the Anthropic envelope."""
    assert isinstance(exc, HTTPException)
    message = "Not found" if exc.status_code == 404 else f"Method {request.method} not allowed for {request.url.path}"
    response = error_response(APIError(exc.status_code, message), _request_id(request))
    response.headers.update(exc.headers or {})
    return response


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    return error_response(APIError(500, "Internal server error"), _request_id(request))
