"""The reference server over real HTTP on loopback: admission, validation, the scripted model, streams."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jsonschema
import pytest

from conformance.reference import ReferenceServer, create_app

API_KEY = "test-key"
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
REQUEST_ID = re.compile(r"^req_[0-9A-Za-z]{24}$")
MESSAGE_ID = re.compile(r"^msg_[0-9A-Za-z]{24}$")
TOOL_ID = re.compile(r"^toolu_[0-9A-Za-z]{24}$")
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
# A one-page PDF that shows "The secret word is MARIGOLD."
PDF = (
    "JVBERi0xLjQKMSAwIG9iago8PCAvVHlwZSAvQ2F0YWxvZyAvUGFnZXMgMiAwIFIgPj4KZW5kb2JqCjIgMCBvYmoKPDwgL1R5cGUg"
    "L1BhZ2VzIC9LaWRzIFszIDAgUl0gL0NvdW50IDEgPj4KZW5kb2JqCjMgMCBvYmoKPDwgL1R5cGUgL1BhZ2UgL1BhcmVudCAyIDAg"
    "UiAvTWVkaWFCb3ggWzAgMCA0MDAgMjAwXSAvQ29udGVudHMgNCAwIFIgL1Jlc291cmNlcyA8PCAvRm9udCA8PCAvRjEgNSAwIFIg"
    "Pj4gPj4gPj4KZW5kb2JqCjQgMCBvYmoKPDwgL0xlbmd0aCA1OSA+PgpzdHJlYW0KQlQgL0YxIDE4IFRmIDQwIDEwMCBUZCAoVGhl"
    "IHNlY3JldCB3b3JkIGlzIE1BUklHT0xELikgVGogRVQKZW5kc3RyZWFtCmVuZG9iago1IDAgb2JqCjw8IC9UeXBlIC9Gb250IC9T"
    "dWJ0eXBlIC9UeXBlMSAvQmFzZUZvbnQgL0hlbHZldGljYSA+PgplbmRvYmoKeHJlZgowIDYKMDAwMDAwMDAwMCA2NTUzNSBmIAow"
    "MDAwMDAwMDA5IDAwMDAwIG4gCjAwMDAwMDAwNTggMDAwMDAgbiAKMDAwMDAwMDExNSAwMDAwMCBuIAowMDAwMDAwMjQxIDAwMDAw"
    "IG4gCjAwMDAwMDAzNTAgMDAwMDAgbiAKdHJhaWxlcgo8PCAvU2l6ZSA2IC9Sb290IDEgMCBSID4+CnN0YXJ0eHJlZgo0MjAKJSVF"
    "T0YK"
)
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
}
CLOCK = {
    "name": "get_time",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def reference_server() -> Iterator[ReferenceServer]:
    with ReferenceServer(api_key=API_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def client(reference_server: ReferenceServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=reference_server.base_url, headers=HEADERS, timeout=10) as http:
        yield http


def body(prompt: str = "Hello.", **fields: Any) -> dict[str, Any]:
    return {"model": "claude-test", "max_tokens": 64, "messages": [{"role": "user", "content": prompt}], **fields}


def create(client: httpx.Client, payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    response = client.post("/v1/messages", json=payload, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def text_of(message: dict[str, Any]) -> str:
    return "".join(block["text"] for block in message["content"] if block["type"] == "text")


def assert_error(response: httpx.Response, status: int, error_type: str, message: str | None = None) -> str:
    """Check the status, the envelope and the request id; returns the error message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    assert set(data) == {"type", "error", "request_id"}
    assert data["type"] == "error"
    assert data["error"]["type"] == error_type
    assert REQUEST_ID.match(data["request_id"])
    assert response.headers["request-id"] == data["request_id"]
    if message is not None:
        assert message in data["error"]["message"], data["error"]["message"]
    return data["error"]["message"]


def events_of(response: httpx.Response) -> list[dict[str, Any]]:
    """Parse a stream strictly: every frame is exactly `event: NAME` + `data: JSON`, NAME == data.type."""
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.text.endswith("\n\n")
    events = []
    for frame in response.text[:-2].split("\n\n"):
        event_line, data_line = frame.split("\n")
        name = event_line.removeprefix("event: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert name == data["type"]
        events.append(data)
    return events


def accumulate(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Rebuild the Message from its events, the way the SDKs do."""
    message = copy.deepcopy(events[0]["message"])
    partial: dict[int, str] = {}
    for event in events[1:]:
        if event["type"] == "content_block_start":
            message["content"].append(copy.deepcopy(event["content_block"]))
        elif event["type"] == "content_block_delta":
            block, delta = message["content"][event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                partial[event["index"]] = partial.get(event["index"], "") + delta["partial_json"]
        elif event["type"] == "message_delta":
            message.update(event["delta"])
            message["usage"].update(event["usage"])
    for index, text in partial.items():
        message["content"][index]["input"] = json.loads(text)
    return message


# --- server lifecycle -------------------------------------------------------------------------------


def test_base_url_is_loopback_without_trailing_slash(reference_server: ReferenceServer) -> None:
    assert re.match(r"^http://127\.0\.0\.1:\d+$", reference_server.base_url)


def test_stop_closes_the_port() -> None:
    server = ReferenceServer().start()
    host, port = server.base_url.removeprefix("http://").split(":")
    assert httpx.post(server.base_url + "/v1/messages", json=body(), headers=HEADERS).status_code == 200
    server.stop()
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=1):
        pass
    with pytest.raises(RuntimeError):
        _ = server.base_url


def test_stop_lets_an_answer_being_sent_finish_and_closes_idle_connections() -> None:
    """Stopping closes a kept-alive connection left idle, but waits for an answer in progress."""
    inner = create_app()
    arrived, release = threading.Event(), threading.Event()

    async def slow(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and (b"x-slow", b"1") in scope["headers"]:
            arrived.set()
            await asyncio.to_thread(release.wait, 10)
        await inner(scope, receive, send)

    server = ReferenceServer(app=slow).start()
    host, port = server.base_url.removeprefix("http://").split(":")
    payload = json.dumps(body()).encode()
    head = f"POST /v1/messages HTTP/1.1\r\nhost: {host}\r\nx-api-key: {API_KEY}\r\nanthropic-version: 2023-06-01\r\n"
    request = f"{head}content-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n".encode() + payload
    with socket.create_connection((host, int(port)), timeout=10) as idle, ThreadPoolExecutor(1) as pool:
        idle.sendall(request)
        answered = b""
        while b"\r\n\r\n" not in answered:
            answered += idle.recv(65536)
        head, _, rest = answered.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head.lower())[1])  # type: ignore[index]
        while len(rest) < length:
            rest += idle.recv(65536)
        assert head.startswith(b"HTTP/1.1 200")  # answered whole, and kept alive: left idle
        slow_headers = {**HEADERS, "x-slow": "1"}
        answer = pool.submit(httpx.post, server.base_url + "/v1/messages", json=body(), headers=slow_headers)
        assert arrived.wait(10)
        server.request_stop()
        for _ in range(1000):  # the shutdown has begun once the port refuses connections
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
            except OSError:
                break
            time.sleep(0.01)
        assert idle.recv(65536) == b""  # the idle connection is closed while the slow answer is still due
        release.set()
        server.stop()
        assert answer.result(10).status_code == 200  # answered whole, not cut off by the stop


def test_serves_any_asgi_app_wrapping_the_reference_app() -> None:
    inner = create_app()

    async def broken(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        async def send_teapot(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "status": 418}
            await send(message)

        await inner(scope, receive, send_teapot)

    with ReferenceServer(app=broken) as server:
        assert httpx.post(server.base_url + "/v1/messages", json=body(), headers=HEADERS).status_code == 418


def test_without_a_configured_key_any_non_empty_key_is_accepted() -> None:
    with ReferenceServer() as server:
        headers = {**HEADERS, "x-api-key": "anything"}
        assert httpx.post(server.base_url + "/v1/messages", json=body(), headers=headers).status_code == 200
        del headers["x-api-key"]
        response = httpx.post(server.base_url + "/v1/messages", json=body(), headers=headers)
        assert_error(response, 401, "authentication_error")


# --- routes, request ids, headers -----------------------------------------------------------------


def test_success_has_request_id_organization_and_rate_limit_headers(client: httpx.Client) -> None:
    response = client.post("/v1/messages", json=body())
    assert REQUEST_ID.match(response.headers["request-id"])
    assert response.headers["anthropic-organization-id"]
    assert response.headers["content-type"] == "application/json"
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        for part in ("limit", "remaining"):
            assert response.headers[f"anthropic-ratelimit-{kind}-{part}"].isdigit()
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", response.headers[f"anthropic-ratelimit-{kind}-reset"])


def test_request_ids_differ_between_requests(client: httpx.Client) -> None:
    ids = {client.post("/v1/messages", json=body()).headers["request-id"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize("path", ["/v1/messages?beta=true", "/v1/messages/count_tokens?beta=true"])
def test_query_string_is_routed(client: httpx.Client, path: str) -> None:
    payload = (
        body() if "count" not in path else {"model": "claude-test", "messages": [{"role": "user", "content": "Hi"}]}
    )
    response = client.post(path, json=payload)
    assert response.status_code == 200
    assert REQUEST_ID.match(response.headers["request-id"])


@pytest.mark.parametrize("path", ["/v1/messages/not-an-endpoint", "/v1/complete", "/", "/v1/models"])
def test_unknown_path_is_404_envelope(client: httpx.Client, path: str) -> None:
    assert_error(client.post(path, json=body()), 404, "not_found_error")


def test_head_root_answers_the_reachability_probe(client: httpx.Client) -> None:
    response = client.head("/")
    assert response.status_code == 200
    assert REQUEST_ID.match(response.headers["request-id"])


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_method_is_405_envelope(client: httpx.Client, method: str) -> None:
    response = client.request(method, "/v1/messages")
    assert_error(response, 405, "invalid_request_error")
    assert response.headers["allow"] == "POST"


# --- admission: auth, version, size, content type, JSON -------------------------------------------


def test_x_api_key_and_bearer_are_accepted(reference_server: ReferenceServer) -> None:
    url = reference_server.base_url + "/v1/messages"
    version = {"anthropic-version": "2023-06-01"}
    assert httpx.post(url, json=body(), headers={**version, "x-api-key": API_KEY}).status_code == 200
    bearer = {**version, "authorization": f"Bearer {API_KEY}"}
    assert httpx.post(url, json=body(), headers=bearer).status_code == 200


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "x-api-key header is required"),
        ({"x-api-key": ""}, "x-api-key header is required"),
        ({"authorization": "Basic abc"}, "x-api-key header is required"),
        ({"x-api-key": "wrong"}, "invalid x-api-key"),
        ({"authorization": "Bearer wrong"}, "invalid x-api-key"),
    ],
)
def test_bad_credentials_are_401(reference_server: ReferenceServer, headers: dict[str, str], message: str) -> None:
    url = reference_server.base_url + "/v1/messages"
    response = httpx.post(url, json=body(), headers={"anthropic-version": "2023-06-01", **headers})
    assert_error(response, 401, "authentication_error", message)


def test_count_tokens_needs_credentials_too(reference_server: ReferenceServer) -> None:
    url = reference_server.base_url + "/v1/messages/count_tokens"
    payload = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
    assert_error(
        httpx.post(url, json=payload, headers={"anthropic-version": "2023-06-01"}), 401, "authentication_error"
    )


def test_missing_version_is_400(client: httpx.Client) -> None:
    request = client.build_request("POST", "/v1/messages", json=body())
    del request.headers["anthropic-version"]
    response = client.send(request)
    assert_error(response, 400, "invalid_request_error", "anthropic-version: header is required")


@pytest.mark.parametrize("version", ["1999-01-01", "2023-06-02", "latest", ""])
def test_invalid_version_is_400(client: httpx.Client, version: str) -> None:
    response = client.post("/v1/messages", json=body(), headers={"anthropic-version": version})
    assert_error(response, 400, "invalid_request_error", "is not a valid version")


def test_duplicated_version_header_is_400(reference_server: ReferenceServer) -> None:
    headers = [("x-api-key", API_KEY), ("anthropic-version", "2023-06-01"), ("anthropic-version", "2023-06-01")]
    response = httpx.post(reference_server.base_url + "/v1/messages", json=body(), headers=headers)
    assert_error(response, 400, "invalid_request_error", '"2023-06-01, 2023-06-01" is not a valid version')


@pytest.mark.parametrize("version", ["2023-06-01", "2023-01-01", "2026-10-21"])
def test_supported_versions_are_accepted(client: httpx.Client, version: str) -> None:
    assert client.post("/v1/messages", json=body(), headers={"anthropic-version": version}).status_code == 200


@pytest.mark.parametrize("field", [{"temperature": 0.5}, {"top_p": 0.9}, {"top_k": 5}])
def test_version_2026_10_21_has_no_sampling_fields(client: httpx.Client, field: dict[str, Any]) -> None:
    response = client.post("/v1/messages", json=body(**field), headers={"anthropic-version": "2026-10-21"})
    assert_error(response, 400, "invalid_request_error", f"{next(iter(field))}: Extra inputs are not permitted")
    assert client.post("/v1/messages", json=body(**field)).status_code == 200


@pytest.fixture(scope="module")
def small_server() -> Iterator[ReferenceServer]:
    with ReferenceServer(app=create_app(API_KEY, max_body_bytes=1024)) as server:
        yield server


def test_body_over_the_limit_is_413(small_server: ReferenceServer) -> None:
    url = small_server.base_url + "/v1/messages"
    assert httpx.post(url, json=body("x" * 500), headers=HEADERS).status_code == 200
    response = httpx.post(url, json=body("x" * 1100), headers=HEADERS)
    assert_error(response, 413, "request_too_large")


def test_chunked_body_over_the_limit_is_413(small_server: ReferenceServer) -> None:
    payload = json.dumps(body("x" * 1100)).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 256):
            yield payload[start : start + 256]

    response = httpx.post(
        small_server.base_url + "/v1/messages",
        content=chunks(),
        headers={**HEADERS, "content-type": "application/json"},
    )
    assert_error(response, 413, "request_too_large")


def test_size_is_checked_before_auth_and_auth_before_version(small_server: ReferenceServer) -> None:
    url = small_server.base_url + "/v1/messages"
    assert_error(httpx.post(url, json=body("x" * 1100)), 413, "request_too_large")
    assert_error(httpx.post(url, json=body()), 401, "authentication_error")
    response = httpx.post(url, content=b"{not json", headers={"x-api-key": API_KEY, "content-type": "application/json"})
    assert_error(response, 400, "invalid_request_error", "anthropic-version")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_content_type_is_400(client: httpx.Client, content_type: str | None) -> None:
    request = client.build_request("POST", "/v1/messages", content=json.dumps(body()).encode())
    if content_type is None:
        request.headers.pop("content-type", None)
    else:
        request.headers["content-type"] = content_type
    assert_error(client.send(request), 400, "invalid_request_error", "Content-Type")


def test_json_content_type_with_charset_is_accepted(client: httpx.Client) -> None:
    headers = {"content-type": "application/json; charset=utf-8"}
    assert client.post("/v1/messages", content=json.dumps(body()).encode(), headers=headers).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [b'{"model": "x", "max_tokens": 16, "messages": [', b"", b"[1, 2]", b'"text"', b'{"max_tokens": NaN}'],
)
def test_body_that_is_not_a_json_object_is_400(client: httpx.Client, raw: bytes) -> None:
    response = client.post("/v1/messages", content=raw, headers={"content-type": "application/json"})
    assert_error(response, 400, "invalid_request_error")


# --- validation ------------------------------------------------------------------------------------


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def with_blocks(*blocks: dict[str, Any]) -> dict[str, Any]:
    return body(messages=[user([*blocks, {"type": "text", "text": "Hi"}])])


def tool_turns(result: dict[str, Any], call_id: str = "toolu_1") -> list[dict[str, Any]]:
    call = {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {"city": "Oslo"}}
    return [user("Weather?"), assistant([call]), user([result])]


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("model missing", {k: v for k, v in body().items() if k != "model"}, "model: Field required"),
    ("model empty", body(model=""), "model: String should have at least 1 character"),
    ("model not a string", body(model=5), "model: Input should be a valid string"),
    ("messages missing", {"model": "m", "max_tokens": 5}, "messages: Field required"),
    ("messages empty", body(messages=[]), "messages: at least one message is required"),
    ("messages a string", body(messages="Hello."), "messages: Input should be a valid list"),
    ("max_tokens missing", {"model": "m", "messages": [user("Hi")]}, "max_tokens: Field required"),
    ("max_tokens zero", body(max_tokens=0), "max_tokens: Input should be greater than or equal to 1"),
    ("max_tokens bool", body(max_tokens=True), "max_tokens: Input should be a valid integer"),
    ("max_tokens string", body(max_tokens="sixteen"), "max_tokens: Input should be a valid integer"),
    ("max_tokens fraction", body(max_tokens=1.5), "max_tokens: Input should be a valid integer, got a number"),
    ("unknown field", body(not_a_real_parameter=True), "not_a_real_parameter: Extra inputs are not permitted"),
    ("message extra key", body(messages=[{**user("Hi"), "name": "x"}]), "messages.0.name: Extra inputs"),
    ("message not object", body(messages=["Hi"]), "messages.0: Input should be a valid dictionary"),
    (
        "role wizard",
        body(messages=[{"role": "wizard", "content": "Hi"}]),
        "messages.0.role: Input should be 'user', 'assistant' or",
    ),
    (
        "system message neither content nor config",
        body(messages=[user("Hi"), {"role": "system"}]),
        "content or output_config",
    ),
    (
        "clear_at on a user message",
        body(messages=[{"role": "user", "content": "Hi", "clear_at": "never"}]),
        "messages.0.clear_at",
    ),
    (
        "system message output_config without its beta",
        body(messages=[user("Hi"), {"role": "system", "content": "x", "output_config": {}}]),
        "messages.1.output_config: Extra inputs",
    ),
    ("speed", body(speed="turbo"), "speed: Input should be"),
    ("diagnostics", body(diagnostics={"previous_message_id": 5}), "diagnostics.previous_message_id"),
    ("workspace_id", body(workspace_id=5), "workspace_id: Input should be a valid string"),
    ("container skill", body(container={"skills": [{"type": "mine", "skill_id": "x"}]}), "container.skills.0.type"),
    ("skill version", body(container={"skills": [{"type": "custom", "skill_id": "x", "version": None}]}), "version"),
    ("content missing", body(messages=[{"role": "user"}]), "messages.0.content: Field required"),
    ("content empty string", body(messages=[user("")]), "messages.0: all messages must have non-empty content"),
    ("content empty list", body(messages=[user([])]), "messages.0: all messages must have non-empty content"),
    ("content a number", body(messages=[user(5)]), "messages.0.content: Input should be a valid string or a list"),
    ("text empty", with_blocks({"type": "text", "text": ""}), "messages: text content blocks must be non-empty"),
    ("text whitespace", with_blocks({"type": "text", "text": "  "}), "must contain non-whitespace text"),
    ("text missing", with_blocks({"type": "text"}), "messages.0.content.0.text.text: Field required"),
    ("text extra", with_blocks({"type": "text", "text": "a", "foo": 1}), "messages.0.content.0.text.foo: Extra"),
    ("block type unknown", with_blocks({"type": "video"}), "Input tag 'video' found using 'type' does not match"),
    ("block without type", with_blocks({"text": "a"}), "Unable to extract tag using discriminator 'type'"),
    (
        "image media type",
        with_blocks({"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": PNG}}),
        "messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', "
        "'image/gif' or 'image/webp'",
    ),
    (
        "image data missing",
        with_blocks({"type": "image", "source": {"type": "base64", "media_type": "image/png"}}),
        "messages.0.content.0.image.source.base64.data: Field required",
    ),
    (
        "image source unknown",
        with_blocks({"type": "image", "source": {"type": "ftp", "url": "x"}}),
        "messages.0.content.0.image.source: Input tag 'ftp'",
    ),
    (
        "document pdf media type",
        with_blocks({"type": "document", "source": {"type": "base64", "media_type": "text/plain", "data": "x"}}),
        "document.source.base64.media_type: Input should be 'application/pdf'",
    ),
    (
        "document empty context",
        with_blocks(
            {"type": "document", "context": "", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}
        ),
        "document.context: String should have at least 1 character",
    ),
    (
        "search_result without title",
        with_blocks({"type": "search_result", "source": "s", "content": [{"type": "text", "text": "x"}]}),
        "search_result.title: Field required",
    ),
    (
        "thinking without signature",
        body(messages=[user("Hi"), assistant([{"type": "thinking", "thinking": "x"}]), user("Again")]),
        "messages.1.content.0.thinking.signature: Field required",
    ),
    (
        "redacted_thinking without data",
        body(messages=[user("Hi"), assistant([{"type": "redacted_thinking"}]), user("Again")]),
        "messages.1.content.0.redacted_thinking.data: Field required",
    ),
    (
        "tool_use bad id",
        body(messages=[user("Hi"), assistant([{"type": "tool_use", "id": "bad id!", "name": "t", "input": {}}])]),
        "messages.1.content.0.tool_use.id: String should match pattern",
    ),
    (
        "tool_use input not object",
        body(messages=[user("Hi"), assistant([{"type": "tool_use", "id": "t1", "name": "t", "input": []}])]),
        "messages.1.content.0.tool_use.input: Input should be a valid dictionary",
    ),
    (
        "tool_result is_error not bool",
        body(messages=tool_turns({"type": "tool_result", "tool_use_id": "toolu_1", "is_error": "yes"})),
        "messages.2.content.0.tool_result.is_error: Input should be a valid boolean",
    ),
    (
        "tool_result for an unknown tool_use",
        body(messages=tool_turns({"type": "tool_result", "tool_use_id": "toolu_other", "content": "x"})),
        "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_other",
    ),
    (
        "tool_result without any tool_use",
        body(messages=[user([{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}])]),
        "unexpected `tool_use_id`",
    ),
    (
        "tool_use left unanswered",
        body(
            messages=[
                user("Weather?"),
                assistant([{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]),
                user("Never mind."),
            ]
        ),
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1",
    ),
    (
        "tool_result in an assistant message",
        body(messages=[user("Hi"), assistant([{"type": "tool_result", "tool_use_id": "toolu_1"}])]),
        "messages.1.content.0: `tool_result` blocks can only be in `user` messages",
    ),
    (
        "tool_use in a user message",
        with_blocks({"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}),
        "`tool_use` blocks can only be in `assistant` messages",
    ),
    (
        "duplicate tool_use ids",
        body(
            messages=[
                user("Hi"),
                assistant(
                    [
                        {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}},
                        {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}},
                    ]
                ),
            ]
        ),
        "messages.1.content.1: `tool_use` ids must be unique",
    ),
    (
        "cache_control type",
        with_blocks({"type": "text", "text": "a", "cache_control": {"type": "persistent"}}),
        "text.cache_control: Input tag 'persistent'",
    ),
    (
        "cache_control ttl",
        with_blocks({"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "2h"}}),
        "text.cache_control.ephemeral.ttl: Input should be '5m' or '1h'",
    ),
    (
        "more than four cache breakpoints",
        with_blocks(*[{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}] * 5),
        "A maximum of 4 blocks with cache_control may be provided. Found 5.",
    ),
    ("system a number", body(system=5), "system: Input should be a valid string or a list of text blocks"),
    ("system image block", body(system=[{"type": "image", "source": {}}]), "system.0: Input tag 'image'"),
    (
        "system empty block",
        body(system=[{"type": "text", "text": ""}]),
        "system: text content blocks must be non-empty",
    ),
    ("stop_sequences string", body(stop_sequences="STOP"), "stop_sequences: Input should be a valid list"),
    ("stop_sequences number", body(stop_sequences=[1]), "stop_sequences.0: Input should be a valid string"),
    ("stop_sequences blank", body(stop_sequences=[" "]), "stop_sequences: each stop sequence must contain"),
    ("stream not bool", body(stream="yes"), "stream: Input should be a valid boolean"),
    ("temperature high", body(temperature=1.5), "temperature: Input should be less than or equal to 1"),
    ("temperature low", body(temperature=-0.1), "temperature: Input should be greater than or equal to 0"),
    ("temperature string", body(temperature="0.5"), "temperature: Input should be a valid number"),
    ("top_p high", body(top_p=2), "top_p: Input should be less than or equal to 1"),
    ("top_k negative", body(top_k=-1), "top_k: Input should be greater than or equal to 0"),
    ("top_k fraction", body(top_k=1.5), "top_k: Input should be a valid integer"),
    ("metadata extra", body(metadata={"user": "x"}), "metadata.user: Extra inputs are not permitted"),
    (
        "metadata user_id long",
        body(metadata={"user_id": "u" * 513}),
        "metadata.user_id: String should have at most 512",
    ),
    ("service_tier", body(service_tier="priority"), "service_tier: Input should be 'auto' or 'standard_only'"),
    ("container number", body(container=5), "container: Input should be a valid string"),
    ("inference_geo number", body(inference_geo=5), "inference_geo: Input should be a valid string"),
    (
        "thinking budget small",
        body(max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 100}),
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
    ),
    (
        "thinking budget not below max_tokens",
        body(max_tokens=1024, thinking={"type": "enabled", "budget_tokens": 1024}),
        "`max_tokens` must be greater than `thinking.budget_tokens`",
    ),
    ("thinking type", body(thinking={"type": "always"}), "thinking: Input tag 'always'"),
    ("thinking budget missing", body(thinking={"type": "enabled"}), "thinking.enabled.budget_tokens: Field required"),
    ("thinking display", body(thinking={"type": "adaptive", "display": "full"}), "thinking.adaptive.display"),
    ("thinking disabled extra", body(thinking={"type": "disabled", "budget_tokens": 2000}), "thinking.disabled.budget"),
    (
        "thinking with forced tool",
        body(max_tokens=2048, thinking={"type": "adaptive"}, tools=[WEATHER], tool_choice={"type": "any"}),
        "Thinking may not be enabled when tool_choice forces tool use.",
    ),
    (
        "tool_choice unknown tool",
        body(tools=[WEATHER], tool_choice={"type": "tool", "name": "not_defined"}),
        "tool_choice.tool.name: Tool 'not_defined' not found",
    ),
    ("tool_choice without tools", body(tool_choice={"type": "any"}), "tool_choice may only be specified"),
    ("tool_choice type", body(tools=[WEATHER], tool_choice={"type": "maybe"}), "tool_choice: Input tag 'maybe'"),
    (
        "tool_choice parallel flag",
        body(tools=[WEATHER], tool_choice={"type": "auto", "disable_parallel_tool_use": "no"}),
        "tool_choice.auto.disable_parallel_tool_use: Input should be a valid boolean",
    ),
    ("tool_choice none extra", body(tool_choice={"type": "none", "name": "x"}), "tool_choice.none.name: Extra"),
    (
        "tool name pattern",
        body(tools=[{**WEATHER, "name": "get weather"}]),
        "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
    ),
    ("tool without schema", body(tools=[{"name": "t"}]), "tools.0.custom.input_schema: Field required"),
    (
        "tool schema not object",
        body(tools=[{"name": "t", "input_schema": {"type": "array"}}]),
        "tools.0.custom.input_schema.type: Input should be 'object'",
    ),
    (
        "tool schema invalid",
        body(tools=[{"name": "t", "input_schema": {"type": "object", "properties": {"a": {"type": 5}}}}]),
        "tools.0.custom.input_schema: JSON schema is invalid",
    ),
    ("tool extra field", body(tools=[{**WEATHER, "color": "red"}]), "tools.0.custom.color: Extra inputs"),
    ("tool strict not bool", body(tools=[{**WEATHER, "strict": "yes"}]), "tools.0.custom.strict: Input should be a"),
    ("tool names repeated", body(tools=[WEATHER, WEATHER]), "tools: Tool names must be unique."),
    ("tool type unknown", body(tools=[{**WEATHER, "type": "magic"}]), "tools.0: Input tag 'magic'"),
    ("server tool without name", body(tools=[{"type": "web_search_20250305"}]), "tools.0.web_search_20250305.name"),
    ("effort", body(output_config={"effort": "extreme"}), "output_config.effort: Input should be 'low', 'medium'"),
    ("output format type", body(output_config={"format": {"type": "regex"}}), "output_config.format: Input tag"),
    (
        "output format schema",
        body(output_config={"format": {"type": "json_schema", "schema": "x"}}),
        "output_config.format.json_schema.schema: Input should be a valid dictionary",
    ),
    ("output_config extra", body(output_config={"verbosity": 1}), "output_config.verbosity: Extra inputs"),
    (
        "prefill ending in whitespace",
        body(messages=[user("Hi"), assistant("Sure ")]),
        "messages: final assistant content cannot end with trailing whitespace",
    ),
]


@pytest.mark.parametrize(("payload", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_request_is_400_naming_the_field(client: httpx.Client, payload: dict[str, Any], message: str) -> None:
    assert_error(client.post("/v1/messages", json=payload), 400, "invalid_request_error", message)


VALID: list[tuple[str, dict[str, Any]]] = [
    ("image url", with_blocks({"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}})),
    (
        "image base64",
        with_blocks({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}),
    ),
    (
        "document text",
        with_blocks(
            {
                "type": "document",
                "title": "Notes",
                "context": "From a meeting",
                "citations": {"enabled": True},
                "source": {"type": "text", "media_type": "text/plain", "data": "Some notes."},
            }
        ),
    ),
    (
        "document content",
        with_blocks({"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "a"}]}}),
    ),
    ("document url", with_blocks({"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}})),
    (
        "document pdf",
        with_blocks({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}),
    ),
    (
        "search_result",
        with_blocks(
            {
                "type": "search_result",
                "source": "https://e.com",
                "title": "T",
                "content": [{"type": "text", "text": "x"}],
            }
        ),
    ),
    (
        "cache_control 1h",
        with_blocks({"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "1h"}}),
    ),
    ("cache_control null", with_blocks({"type": "text", "text": "a", "cache_control": None})),
    ("top-level cache_control", body(cache_control={"type": "ephemeral"})),
    ("system blocks", body(system=[{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}])),
    ("metadata null user", body(metadata={"user_id": None})),
    ("sampling", body(temperature=1, top_p=0.5, top_k=0)),
    ("max_tokens float", body(max_tokens=16.0)),
    ("service tier", body(service_tier="standard_only")),
    ("server tool", body(tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}])),
    ("newer server tool", body(tools=[{"type": "advisor_20260301", "name": "advisor", "model": "x"}])),
    ("custom tool options", body(tools=[{**WEATHER, "type": "custom", "strict": True, "cache_control": None}])),
    ("tool input_examples", body(tools=[{**WEATHER, "input_examples": [{"city": "Oslo"}], "defer_loading": False}])),
    ("tool_choice none", body(tools=[WEATHER], tool_choice={"type": "none"})),
    ("thinking disabled", body(thinking={"type": "disabled"})),
    ("thinking adaptive", body(thinking={"type": "adaptive", "display": "omitted"}, output_config={"effort": "low"})),
    ("context management", body(context_management={"edits": []}, mcp_servers=[{"type": "url", "url": "x"}])),
    ("container and geo null", body(container=None, inference_geo=None)),
    ("assistant first", body(messages=[assistant("Hi."), user("Hello.")])),
    ("empty final assistant", body(messages=[user("Hi"), assistant("")])),
    ("consecutive user turns", body(messages=[user("Hi"), user("Again")])),
    ("stream false", body(stream=False)),
]


@pytest.mark.parametrize("payload", [case[1] for case in VALID], ids=[case[0] for case in VALID])
def test_valid_request_is_answered(client: httpx.Client, payload: dict[str, Any]) -> None:
    message = create(client, payload)
    assert message["content"]


def test_invalid_streaming_request_is_a_json_error_not_a_stream(client: httpx.Client) -> None:
    payload = {"model": "m", "stream": True, "messages": [user("Hi")]}
    assert_error(client.post("/v1/messages", json=payload), 400, "invalid_request_error", "max_tokens: Field required")


def test_blank_stop_sequence_is_refused_in_the_apis_words(client: httpx.Client) -> None:
    """Clients match on this exact message."""
    message = assert_error(client.post("/v1/messages", json=body(stop_sequences=["\n "])), 400, "invalid_request_error")
    assert message == "stop_sequences: each stop sequence must contain non-whitespace"


def test_system_role_is_accepted_without_a_beta(client: httpx.Client) -> None:
    payload = body(messages=[user("Hi"), assistant("Hello."), {"role": "system", "content": "Be brief."}, user("Go")])
    assert create(client, payload)["content"]
    image = {"type": "image", "source": {"type": "url", "url": "https://e.com/a.png"}}
    payload["messages"][2]["content"] = [image]
    response = client.post("/v1/messages", json=payload)
    assert_error(response, 400, "invalid_request_error", "messages.2.content.0: Input tag 'image'")


def test_system_message_per_turn_controls_and_tool_changes_need_their_betas(client: httpx.Client) -> None:
    text = {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
    added = {"type": "tool_addition", "tool": {"type": "tool_reference", "tool_name": "Read"}}
    system = {"role": "system", "content": [text, added], "output_config": {"effort": "medium"}, "clear_at": "never"}
    betas = {"anthropic-beta": "per-turn-control-2026-07-01,mid-conversation-tool-changes-2026-07-01"}
    assert create(client, body(messages=[user("Hi"), system]), headers=betas)["content"]
    counted = client.post(
        "/v1/messages/count_tokens", json={"model": "claude-x", "messages": [user("Hi"), system]}, headers=betas
    )
    assert counted.status_code == 200
    only_controls = {"anthropic-beta": "per-turn-control-2026-07-01"}
    refused = client.post("/v1/messages", json=body(messages=[user("Hi"), system]), headers=only_controls)
    assert_error(refused, 400, "invalid_request_error", "messages.1.content.1: Input tag 'tool_addition'")
    refused = client.post("/v1/messages", json=body(messages=[user("Hi"), {**system, "content": [text]}]))
    assert_error(refused, 400, "invalid_request_error", "messages.1.output_config: Extra inputs are not permitted")
    only_config = {"role": "system", "output_config": {}}
    refused = client.post("/v1/messages", json=body(messages=[user("Hi"), only_config]), headers=only_controls)
    assert_error(
        refused, 400, "invalid_request_error", "messages.1: a system message must have content or output_config"
    )
    effort = {"role": "system", "output_config": {"effort": "low"}}
    assert create(client, body(messages=[user("Hi"), effort]), headers=only_controls)["content"]
    for config, field in (({"format": None}, "format"), ({"effort": "huge"}, "effort")):
        message = {"role": "system", "content": "x", "output_config": config}
        refused = client.post("/v1/messages", json=body(messages=[user("Hi"), message]), headers=only_controls)
        assert_error(refused, 400, "invalid_request_error", f"messages.1.output_config.{field}")


def test_current_ga_request_fields_are_accepted(client: httpx.Client) -> None:
    payload = body(
        speed="fast",
        diagnostics={"previous_message_id": None},
        user_profile_id="up_1",
        workspace_id="wrkspc_1",
        container={"id": None, "skills": [{"type": "anthropic", "skill_id": "pdf"}]},
        thinking={"type": "between_tools"},
    )
    assert create(client, payload)["content"]
    count = {"model": "claude-x", "messages": [user("Hi")], "speed": "standard", "workspace_id": "w"}
    assert client.post("/v1/messages/count_tokens", json=count).status_code == 200


def test_current_ga_blocks_and_tools_are_accepted(client: httpx.Client) -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://e.com/a.png"}}
    tools = [
        {"type": "browser_toolset_20260801", "configs": None},
        {"type": "web_fetch_20260318", "name": "web_fetch", "response_inclusion": "full", "url_sources": {}},
        {"name": "Read", "input_schema": {"type": "object"}},
    ]
    call = {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}, "caller": None, "toolset_name": None}
    browser = {"type": "browser_state", "tabs": [{"url": "https://e.com"}]}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "toolset_name": "b", "content": [browser]}
    messages = [
        user([{**image, "transformations": {"oversized_image": "downsize"}}, {"type": "text", "text": "Look"}]),
        assistant([call]),
        user([result]),
    ]
    assert create(client, body(messages=messages, tools=tools))["content"]
    bad = [{**tools[1], "response_inclusion": "partial"}]
    refused = client.post("/v1/messages", json=body(tools=bad))
    assert_error(refused, 400, "invalid_request_error", "tools.0.web_fetch_20260318.response_inclusion")


def test_version_2026_10_21_refuses_assistant_documents_and_user_citations(client: httpx.Client) -> None:
    new = {"anthropic-version": "2026-10-21"}
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}
    payload = body(messages=[user("Hi"), assistant([document]), user("Go")])
    assert client.post("/v1/messages", json=payload).status_code == 200
    assert_error(client.post("/v1/messages", json=payload, headers=new), 400, "invalid_request_error", "document")
    citation = {
        "type": "char_location",
        "cited_text": "x",
        "document_index": 0,
        "start_char_index": 0,
        "end_char_index": 1,
    }
    payload = with_blocks({"type": "text", "text": "a", "citations": [citation]})
    assert client.post("/v1/messages", json=payload).status_code == 200
    assert_error(client.post("/v1/messages", json=payload, headers=new), 400, "invalid_request_error", "citations")


# --- the Message and the scripted model -----------------------------------------------------------


def test_message_has_every_field(client: httpx.Client) -> None:
    message = create(client, body("Reply with exactly: ALPHA", model="claude-any-name"))
    assert MESSAGE_ID.match(message["id"])
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    assert message["model"] == "claude-any-name"
    assert message["content"] == [{"type": "text", "text": "ALPHA", "citations": None}]
    assert message["stop_reason"] == "end_turn"
    assert message["stop_sequence"] is None
    assert message["stop_details"] is None
    assert message["container"] is None
    usage = message["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] == 1
    assert usage["cache_creation_input_tokens"] == 0 and usage["cache_read_input_tokens"] == 0
    assert usage["cache_creation"] == {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
    assert usage["server_tool_use"] is None
    assert usage["service_tier"] == "standard"
    assert usage["inference_geo"] == "not_available"


def test_inference_geo_is_echoed_in_usage(client: httpx.Client) -> None:
    assert create(client, body(inference_geo="us"))["usage"]["inference_geo"] == "us"


def test_reply_with_exactly_takes_the_rest_of_its_line(client: httpx.Client) -> None:
    prompt = "Here is an instruction.\nReply with exactly:   Hello, world!  \nThanks."
    assert text_of(create(client, body(prompt))) == "Hello, world!"


def test_text_blocks_of_the_last_user_message_are_read_together(client: httpx.Client) -> None:
    blocks = [
        {"type": "text", "text": "Here is an instruction."},
        {"type": "text", "text": "Reply with exactly: CHARLIE"},
    ]
    payload = body(messages=[user("Reply with exactly: OLD"), assistant("OLD"), user(blocks)])
    assert text_of(create(client, payload)) == "CHARLIE"


def test_default_reply(client: httpx.Client) -> None:
    message = create(client, body("How are you?"))
    assert text_of(message) == "Hello! I am the conformance reference model."
    assert message["usage"]["output_tokens"] == 9


def test_count_and_max_tokens_truncation(client: httpx.Client) -> None:
    full = create(client, body("Count from 1 to 20, separated by spaces."))
    assert text_of(full) == " ".join(str(n) for n in range(1, 21))
    assert full["stop_reason"] == "end_turn" and full["usage"]["output_tokens"] == 20
    cut = create(client, body("Count from 1 to 200.", max_tokens=5))
    assert text_of(cut) == "1 2 3 4 5"
    assert cut["stop_reason"] == "max_tokens" and cut["usage"]["output_tokens"] == 5
    one = create(client, body("Reply with exactly: alpha beta", max_tokens=1))
    assert text_of(one) == "alpha" and one["stop_reason"] == "max_tokens"


def test_stop_sequence_cuts_before_the_earliest_match(client: httpx.Client) -> None:
    message = create(client, body("Reply with exactly: one two STOP three END", stop_sequences=["END", "STOP"]))
    assert text_of(message) == "one two "
    assert message["stop_reason"] == "stop_sequence"
    assert message["stop_sequence"] == "STOP"
    unmatched = create(client, body("Reply with exactly: one two", stop_sequences=["STOP"]))
    assert unmatched["stop_reason"] == "end_turn" and unmatched["stop_sequence"] is None


def test_stop_sequence_at_the_start_gives_no_text(client: httpx.Client) -> None:
    message = create(client, body("Reply with exactly: STOP now", stop_sequences=["STOP"]))
    assert message["content"] == []
    assert message["stop_reason"] == "stop_sequence"
    assert message["usage"]["output_tokens"] >= 1


def test_prefill_is_continued(client: httpx.Client) -> None:
    message = create(client, body(messages=[user("Reply with exactly: ALPHA"), assistant("AL")]))
    assert text_of(message) == "PHA"


def test_tool_use_with_auto_has_text_then_a_schema_valid_call(client: httpx.Client) -> None:
    message = create(client, body("What is the weather in Paris? Use the get_weather tool.", tools=[WEATHER, CLOCK]))
    assert [block["type"] for block in message["content"]] == ["text", "tool_use"]
    call = message["content"][1]
    assert TOOL_ID.match(call["id"])
    assert call["name"] == "get_weather"
    assert call["caller"] == {"type": "direct"}
    jsonschema.validate(call["input"], WEATHER["input_schema"])
    assert message["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("choice", "prompt", "names"),
    [
        ({"type": "any"}, "What is the weather in Rome?", ["get_weather"]),
        ({"type": "any"}, "Call get_time please.", ["get_time"]),
        ({"type": "tool", "name": "get_time"}, "Use the get_weather tool.", ["get_time"]),
        ({"type": "any"}, "Use the get_weather tool and the get_time tool.", ["get_weather", "get_time"]),
        (
            {"type": "any", "disable_parallel_tool_use": True},
            "Use the get_time tool and the get_weather tool.",
            ["get_time"],
        ),
    ],
)
def test_forced_tool_choice_calls_without_text(
    client: httpx.Client, choice: dict[str, Any], prompt: str, names: list[str]
) -> None:
    message = create(client, body(prompt, tools=[WEATHER, CLOCK], tool_choice=choice))
    assert [block["type"] for block in message["content"]] == ["tool_use"] * len(names)
    assert [block["name"] for block in message["content"]] == names
    assert len({block["id"] for block in message["content"]}) == len(names)


@pytest.mark.parametrize(
    ("prompt", "choice"),
    [
        ("Reply with exactly: LIMA. Use the get_weather tool.", {"type": "none"}),
        ("Reply with exactly: LIMA", {"type": "auto"}),
        ("Reply with exactly: LIMA (the weather is nice)", None),
    ],
)
def test_no_tool_call_unless_asked_or_forced(client: httpx.Client, prompt: str, choice: dict[str, Any] | None) -> None:
    payload = body(prompt, tools=[WEATHER]) | ({"tool_choice": choice} if choice else {})
    message = create(client, payload)
    assert [block["type"] for block in message["content"]] == ["text"]
    assert message["stop_reason"] == "end_turn"


def test_server_tools_are_never_called(client: httpx.Client) -> None:
    tools = [{"type": "web_search_20250305", "name": "web_search"}]
    message = create(client, body("Use the web_search tool.", tools=tools))
    assert [block["type"] for block in message["content"]] == ["text"]


def test_tool_input_is_valid_for_a_rich_schema(client: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "count": {"type": "integer", "minimum": 3, "maximum": 9},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "mode": {"enum": ["fast", "slow"]},
            "kind": {"const": "fixed"},
            "flag": {"type": "boolean"},
            "when": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True},
            "nested": {"$ref": "#/$defs/point"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "string", "minLength": 12}]},
        },
        "required": ["count", "nested"],
        "additionalProperties": False,
        "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}},
    }
    tool = {"name": "configure", "input_schema": schema}
    message = create(client, body("Hi", tools=[tool], tool_choice={"type": "tool", "name": "configure"}))
    jsonschema.validate(message["content"][0]["input"], schema)


def test_tool_result_round_trip(client: httpx.Client) -> None:
    first_payload = body("Weather in Lisbon?", tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"})
    first = create(client, first_payload)
    call = first["content"][0]
    result = {"type": "tool_result", "tool_use_id": call["id"], "content": "Sunny, 21 degrees."}
    payload = body(tools=[WEATHER], messages=[user("Weather in Lisbon?"), assistant(first["content"]), user([result])])
    answer = create(client, payload)
    assert text_of(answer) == "The tool returned: Sunny, 21 degrees."
    assert answer["stop_reason"] == "end_turn"
    result = {**result, "is_error": True, "content": [{"type": "text", "text": "Service down."}]}
    payload["messages"][2] = user([result])
    assert text_of(create(client, payload)) == "The tool reported an error: Service down."


def test_structured_output_is_json_valid_against_the_schema(client: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    payload = body("Extract the person.", output_config={"format": {"type": "json_schema", "schema": schema}})
    jsonschema.validate(json.loads(text_of(create(client, payload))), schema)


THINKING = {"type": "enabled", "budget_tokens": 1024}


def test_thinking_block_comes_first_and_round_trips(client: httpx.Client) -> None:
    first = create(client, body("Reply with exactly: OSCAR", max_tokens=1200, thinking=THINKING))
    assert [block["type"] for block in first["content"]] == ["thinking", "text"]
    thinking = first["content"][0]
    assert thinking["thinking"] and thinking["signature"]
    assert first["usage"]["output_tokens"] > 1
    turns = [user("Reply with exactly: OSCAR"), assistant(first["content"]), user("Reply with exactly: PAPA")]
    assert text_of(create(client, body(max_tokens=1200, thinking=THINKING, messages=turns))) == "PAPA"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda block: {**block, "signature": block["signature"][:-4] + "AAA="},
        lambda block: {**block, "thinking": block["thinking"] + " And more."},
        lambda block: {**block, "signature": "not base64!"},
    ],
    ids=["signature", "thinking text", "garbage"],
)
def test_tampered_thinking_is_refused(client: httpx.Client, tamper: Callable[[dict], dict]) -> None:
    first = create(client, body("Hello.", max_tokens=1200, thinking=THINKING))
    content = [tamper(first["content"][0]), *first["content"][1:]]
    payload = body(max_tokens=1200, thinking=THINKING, messages=[user("Hello."), assistant(content), user("Again.")])
    response = client.post("/v1/messages", json=payload)
    assert_error(
        response, 400, "invalid_request_error", "messages.1.content.0: Invalid `signature` in `thinking` block"
    )


def test_omitted_thinking_is_empty_but_signed_and_billed(client: httpx.Client) -> None:
    shown = create(client, body("Hello.", max_tokens=1200, thinking=THINKING))
    omitted = create(client, body("Hello.", max_tokens=1200, thinking={**THINKING, "display": "omitted"}))
    block = omitted["content"][0]
    assert block["type"] == "thinking" and block["thinking"] == "" and block["signature"]
    assert omitted["usage"]["output_tokens"] == shown["usage"]["output_tokens"]
    turns = [user("Hello."), assistant(omitted["content"]), user("Again.")]
    assert create(client, body(max_tokens=1200, thinking=THINKING, messages=turns))["content"]


def test_adaptive_thinking_thinks_only_with_room(client: httpx.Client) -> None:
    roomy = create(client, body("Hello.", max_tokens=2000, thinking={"type": "adaptive"}))
    assert roomy["content"][0]["type"] == "thinking"
    tight = create(client, body("Hello.", max_tokens=64, thinking={"type": "adaptive"}))
    assert [block["type"] for block in tight["content"]] == ["text"]


def test_redacted_thinking_round_trips_and_bad_data_is_refused(client: httpx.Client) -> None:
    first = create(client, body("Use redacted thinking. Reply with exactly: X", max_tokens=1200, thinking=THINKING))
    assert [block["type"] for block in first["content"]] == ["redacted_thinking", "text"]
    assert set(first["content"][0]) == {"type", "data"}
    turns = [user("Hi"), assistant(first["content"]), user("Again.")]
    assert create(client, body(max_tokens=1200, thinking=THINKING, messages=turns))["content"]
    turns[1] = assistant([{"type": "redacted_thinking", "data": "ZmFrZQ=="}, first["content"][1]])
    response = client.post("/v1/messages", json=body(max_tokens=1200, thinking=THINKING, messages=turns))
    assert_error(response, 400, "invalid_request_error", "Invalid `data` in `redacted_thinking` block")


def test_thinking_with_tools_needs_thinking_first_when_answering_calls(client: httpx.Client) -> None:
    first = create(client, body("Use the get_weather tool.", max_tokens=1200, thinking=THINKING, tools=[WEATHER]))
    assert [block["type"] for block in first["content"]] == ["thinking", "text", "tool_use"]
    result = {"type": "tool_result", "tool_use_id": first["content"][2]["id"], "content": "Rain."}
    turns = [user("Use the get_weather tool."), assistant(first["content"]), user([result])]
    answer = create(client, body(max_tokens=1200, thinking=THINKING, tools=[WEATHER], messages=turns))
    assert [block["type"] for block in answer["content"]] == ["thinking", "text"]
    turns[1] = assistant(first["content"][1:])
    response = client.post(
        "/v1/messages", json=body(max_tokens=1200, thinking=THINKING, tools=[WEATHER], messages=turns)
    )
    assert_error(response, 400, "invalid_request_error", "messages.1.content.0.type: Expected `thinking`")


# --- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "status", "retry_after"),
    [
        ("overloaded_error", 529, "1"),
        ("rate_limit_error", 429, "1"),
        ("api_error", 500, None),
        ("permission_error", 403, None),
    ],
)
def test_simulated_errors(client: httpx.Client, error_type: str, status: int, retry_after: str | None) -> None:
    response = client.post("/v1/messages", json=body(f"Simulate error: {error_type}"))
    assert_error(response, status, error_type)
    assert response.headers.get("retry-after") == retry_after
    assert response.headers["x-should-retry"] == ("true" if status >= 429 else "false")


def test_simulated_stream_error_without_stream_is_a_plain_error(client: httpx.Client) -> None:
    assert_error(
        client.post("/v1/messages", json=body("Simulate stream error: overloaded_error")), 529, "overloaded_error"
    )


def test_unknown_simulated_error_type_is_ignored(client: httpx.Client) -> None:
    assert create(client, body("Simulate error: cosmic_ray"))["content"]


# --- streams --------------------------------------------------------------------------------------


def stream(client: httpx.Client, payload: dict[str, Any]) -> tuple[httpx.Response, list[dict[str, Any]]]:
    response = client.post("/v1/messages", json={**payload, "stream": True})
    assert response.status_code == 200, response.text
    assert REQUEST_ID.match(response.headers["request-id"])
    return response, events_of(response)


def test_text_stream_event_sequence(client: httpx.Client) -> None:
    payload = body("Reply with exactly: one two three four five six seven")
    _, events = stream(client, payload)
    names = [event["type"] for event in events]
    deltas = names.count("content_block_delta")
    assert deltas >= 2
    expected = ["message_start", "content_block_start", "ping", *["content_block_delta"] * deltas]
    assert names == [*expected, "content_block_stop", "message_delta", "message_stop"]
    start = events[0]["message"]
    assert MESSAGE_ID.match(start["id"])
    assert start["content"] == [] and start["stop_reason"] is None and start["stop_sequence"] is None
    assert start["usage"]["input_tokens"] > 0 and start["usage"]["output_tokens"] == 1
    assert events[1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": "", "citations": None},
    }
    assert all(event["delta"]["type"] == "text_delta" for event in events if event["type"] == "content_block_delta")
    assert events[-3] == {"type": "content_block_stop", "index": 0}
    plain = create(client, payload)
    assert events[-2]["delta"] == {
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "stop_details": None,
        "container": None,
    }
    assert events[-2]["usage"]["output_tokens"] == plain["usage"]["output_tokens"]
    assert events[-2]["usage"]["input_tokens"] == plain["usage"]["input_tokens"]
    rebuilt = accumulate(events)
    assert rebuilt["content"] == plain["content"]
    assert {key: value for key, value in rebuilt.items() if key != "id"} == {
        key: value for key, value in plain.items() if key != "id"
    }


def test_stream_has_cache_control_no_cache(client: httpx.Client) -> None:
    response, _ = stream(client, body())
    assert response.headers["cache-control"] == "no-cache"


def test_tool_use_stream(client: httpx.Client) -> None:
    payload = body("Weather in Oslo?", tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"})
    _, events = stream(client, payload)
    names = [event["type"] for event in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    block = events[1]["content_block"]
    assert block["type"] == "tool_use" and block["input"] == {} and block["name"] == "get_weather"
    assert TOOL_ID.match(block["id"])
    pieces = [event["delta"] for event in events if event["type"] == "content_block_delta"]
    assert len(pieces) >= 2 and all(piece["type"] == "input_json_delta" for piece in pieces)
    tool_input = json.loads("".join(piece["partial_json"] for piece in pieces))
    jsonschema.validate(tool_input, WEATHER["input_schema"])
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_text_then_tool_use_stream_indexes(client: httpx.Client) -> None:
    _, events = stream(client, body("Use the get_weather tool.", tools=[WEATHER]))
    starts = [
        (event["index"], event["content_block"]["type"]) for event in events if event["type"] == "content_block_start"
    ]
    assert starts == [(0, "text"), (1, "tool_use")]
    stops = [event["index"] for event in events if event["type"] == "content_block_stop"]
    assert stops == [0, 1]
    message = accumulate(events)
    assert message["content"][1]["input"] == {"city": "example", "unit": "celsius"}


def test_thinking_stream(client: httpx.Client) -> None:
    _, events = stream(client, body("Reply with exactly: NOVEMBER", max_tokens=1200, thinking=THINKING))
    assert events[1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
    }
    block_events = [event for event in events if event.get("index") == 0]
    kinds = [event["delta"]["type"] for event in block_events if event["type"] == "content_block_delta"]
    assert kinds[-1] == "signature_delta" and kinds.count("signature_delta") == 1
    assert set(kinds[:-1]) == {"thinking_delta"}
    assert block_events[-1]["type"] == "content_block_stop"
    message = accumulate(events)
    assert [block["type"] for block in message["content"]] == ["thinking", "text"]
    assert text_of(message) == "NOVEMBER"
    turns = [user("Reply with exactly: NOVEMBER"), assistant(message["content"]), user("Reply with exactly: PAPA")]
    assert text_of(create(client, body(max_tokens=1200, thinking=THINKING, messages=turns))) == "PAPA"


def test_redacted_thinking_stream_sends_the_block_whole(client: httpx.Client) -> None:
    _, events = stream(client, body("Show redacted thinking.", max_tokens=1200, thinking=THINKING))
    assert events[1]["content_block"]["type"] == "redacted_thinking" and events[1]["content_block"]["data"]
    assert not [event for event in events if event["type"] == "content_block_delta" and event["index"] == 0]


def test_stream_stops_for_max_tokens_and_stop_sequences(client: httpx.Client) -> None:
    _, events = stream(client, body("Count from 1 to 200.", max_tokens=5))
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"
    assert events[-2]["usage"]["output_tokens"] == 5
    assert text_of(accumulate(events)) == "1 2 3 4 5"
    _, events = stream(client, body("Reply with exactly: red green STOP blue", stop_sequences=["STOP"]))
    assert events[-2]["delta"]["stop_reason"] == "stop_sequence"
    assert events[-2]["delta"]["stop_sequence"] == "STOP"
    assert text_of(accumulate(events)).strip() == "red green"


def test_stream_without_content_still_pings(client: httpx.Client) -> None:
    _, events = stream(client, body("Reply with exactly: STOP", stop_sequences=["STOP"]))
    assert [event["type"] for event in events] == ["message_start", "ping", "message_delta", "message_stop"]


def test_simulated_pings(client: httpx.Client) -> None:
    _, events = stream(client, body("Simulate pings: 5\nReply with exactly: a b c d e f g h i j"))
    names = [event["type"] for event in events]
    assert names.count("ping") == 6
    assert names[-2:] == ["message_delta", "message_stop"]
    assert text_of(accumulate(events)) == "a b c d e f g h i j"


def test_simulated_stream_error(client: httpx.Client) -> None:
    response, events = stream(client, body("Simulate stream error: overloaded_error"))
    assert [event["type"] for event in events] == ["message_start", "ping", "error"]
    error = events[-1]
    assert error["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert error["request_id"] == response.headers["request-id"]


# --- count_tokens ---------------------------------------------------------------------------------


def count(client: httpx.Client, **payload: Any) -> int:
    payload.setdefault("model", "claude-test")
    payload.setdefault("messages", [user("Hello.")])
    response = client.post("/v1/messages/count_tokens", json=payload)
    assert response.status_code == 200, response.text
    assert REQUEST_ID.match(response.headers["request-id"])
    data = response.json()
    assert list(data) == ["input_tokens"]
    return data["input_tokens"]


def test_count_tokens_is_positive(client: httpx.Client) -> None:
    assert count(client) > 0


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"system": "You are terse."},
        {"tools": [WEATHER], "tool_choice": {"type": "auto"}},
        {"messages": [user([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}])]},
        {"thinking": {"type": "enabled", "budget_tokens": 1024}},
        {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
    ],
    ids=["plain", "system", "tools", "image", "thinking", "output format"],
)
def test_count_tokens_equals_messages_input_tokens(client: httpx.Client, extra: dict[str, Any]) -> None:
    counted = count(client, **extra)
    message = create(client, {"model": "claude-test", "max_tokens": 2048, "messages": [user("Hello.")], **extra})
    assert counted == message["usage"]["input_tokens"]


def test_count_tokens_grows_with_text_tools_images_and_tool_results(client: httpx.Client) -> None:
    base = count(client)
    assert count(client, messages=[user("Hello. Tell me about the founding of Rome.")]) > base
    assert count(client, system="You answer questions about Rome.") > base
    assert count(client, tools=[WEATHER]) > base
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    with_image = count(client, messages=[user([image, {"type": "text", "text": "Hello."}])])
    assert with_image > base
    large = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG * 200}}
    assert count(client, messages=[user([large, {"type": "text", "text": "Hello."}])]) > with_image
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "A long memo."}}
    assert count(client, messages=[user([document, {"type": "text", "text": "Hello."}])]) > base

    def with_result(text: str) -> int:
        return count(client, messages=tool_turns({"type": "tool_result", "tool_use_id": "toolu_1", "content": text}))

    assert with_result("Sunny and warm with a light breeze from the west.") > with_result("Sunny.")


@pytest.mark.parametrize(
    "field",
    [
        {"max_tokens": 16},
        {"stream": True},
        {"temperature": 0.5},
        {"metadata": {"user_id": "u"}},
        {"stop_sequences": ["STOP"]},
        {"top_k": 1},
        {"service_tier": "auto"},
    ],
)
def test_count_tokens_refuses_messages_only_fields(client: httpx.Client, field: dict[str, Any]) -> None:
    payload = {"model": "m", "messages": [user("Hello.")], **field}
    response = client.post("/v1/messages/count_tokens", json=payload)
    assert_error(response, 400, "invalid_request_error", f"{next(iter(field))}: Extra inputs are not permitted")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"messages": [{"role": "user", "content": "Hi"}]}, "model: Field required"),
        ({"model": "m"}, "messages: Field required"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "Hi"}]}, "messages.0.role"),
    ],
)
def test_count_tokens_validates_its_body(client: httpx.Client, payload: dict[str, Any], message: str) -> None:
    assert_error(client.post("/v1/messages/count_tokens", json=payload), 400, "invalid_request_error", message)
