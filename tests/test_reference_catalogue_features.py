"""The reference server's behaviour that the case catalogue relies on: Anthropic's documented test
prompts, the fault directives for stop reasons, quiet streams and unknown events, citations,
image and PDF checks, and unknown models."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conformance.reference import ReferenceServer
from conformance.reference.scripted import REDACTED_THINKING_TRIGGER, REFUSAL_TRIGGER
from tests.test_reference_server import PDF, PNG, assert_error, events_of

API_KEY = "features-key"
THINKING = {"type": "enabled", "budget_tokens": 1024}
MEMO = "The favourite fruit is the quince.  It grows in a walled garden. Nothing else grows there."


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with ReferenceServer(api_key=API_KEY) as server:
        headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as http:
            yield http


def body(content: Any = "Hello.", **fields: Any) -> dict[str, Any]:
    return {"model": "claude-test", "max_tokens": 64, "messages": [{"role": "user", "content": content}], **fields}


def create(client: httpx.Client, payload: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/messages", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


def stream(client: httpx.Client, payload: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post("/v1/messages", json={**payload, "stream": True})
    assert response.status_code == 200, response.text
    return events_of(response)


def text_document(citations: bool = True, **extra: Any) -> dict[str, Any]:
    block = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": MEMO}, **extra}
    return {**block, "citations": {"enabled": citations}}


# --- Anthropic's test prompts ---------------------------------------------------------------------


def test_the_refusal_test_prompt_gives_stop_reason_refusal_with_details(client: httpx.Client) -> None:
    message = create(client, body(REFUSAL_TRIGGER))
    assert message["stop_reason"] == "refusal"
    assert message["stop_details"] == {"type": "refusal", "category": None, "explanation": None}
    events = stream(client, body(REFUSAL_TRIGGER))
    assert events[-2]["delta"]["stop_reason"] == "refusal"
    assert events[-2]["delta"]["stop_details"]["type"] == "refusal"


def test_the_redacted_thinking_test_prompt_gives_a_redacted_block_that_round_trips(client: httpx.Client) -> None:
    payload = body(REDACTED_THINKING_TRIGGER, max_tokens=1100, thinking=THINKING)
    message = create(client, payload)
    assert message["content"][0]["type"] == "redacted_thinking"
    payload["messages"] += [{"role": "assistant", "content": message["content"]}, {"role": "user", "content": "Hi."}]
    create(client, payload)


# --- fault directives -----------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["pause_turn", "model_context_window_exceeded", "refusal"])
def test_simulated_stop_reasons(client: httpx.Client, reason: str) -> None:
    prompt = f"Simulate stop: {reason}\nReply with exactly: Hi"
    message = create(client, body(prompt))
    assert (message["stop_reason"], message["stop_sequence"]) == (reason, None)
    assert message["content"] == [{"type": "text", "text": "Hi", "citations": None}]
    assert (message["stop_details"] or {}).get("type") == ("refusal" if reason == "refusal" else None)
    assert stream(client, body(prompt))[-2]["delta"]["stop_reason"] == reason


def test_an_unknown_simulated_stop_reason_is_ignored(client: httpx.Client) -> None:
    assert create(client, body("Simulate stop: coffee_break\nReply with exactly: Hi"))["stop_reason"] == "end_turn"


def test_simulated_delay_keeps_the_stream_alive_with_pings() -> None:
    with ReferenceServer(api_key=API_KEY) as server:
        headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
        payload = {**body("Simulate delay: 1.2\nReply with exactly: AWAKE"), "stream": True}
        arrivals: list[tuple[float, str]] = []
        started = time.monotonic()
        with httpx.stream("POST", server.base_url + "/v1/messages", json=payload, headers=headers) as response:
            for line in response.iter_lines():
                if line.startswith("event: "):
                    arrivals.append((time.monotonic() - started, line.removeprefix("event: ")))
    names = [name for _, name in arrivals]
    assert names[:4] == ["message_start", "ping", "ping", "ping"]
    assert arrivals[-1][0] >= 1.2
    assert max(later[0] - earlier[0] for earlier, later in itertools.pairwise(arrivals)) < 0.9


def test_simulated_unknown_event_follows_message_start(client: httpx.Client) -> None:
    events = stream(client, body("Simulate unknown event\nReply with exactly: Hi"))
    assert events[1]["type"] == "unknown_event_probe"
    assert events[-1] == {"type": "message_stop"}


# --- citations ------------------------------------------------------------------------------------


def test_a_cited_text_document_gets_a_char_location_of_its_first_sentence(client: httpx.Client) -> None:
    message = create(client, body([text_document(title="Memo"), {"type": "text", "text": "Which fruit?"}]))
    [block] = message["content"]
    [citation] = block["citations"]
    assert citation["type"] == "char_location"
    assert citation["cited_text"] == MEMO[citation["start_char_index"] : citation["end_char_index"]]
    assert citation["cited_text"] == "The favourite fruit is the quince.  "
    assert (citation["document_index"], citation["document_title"]) == (0, "Memo")
    assert block["text"] == "The favourite fruit is the quince."


def test_without_citations_enabled_nothing_is_cited(client: httpx.Client) -> None:
    message = create(client, body([text_document(citations=False), {"type": "text", "text": "Which fruit?"}]))
    assert message["content"][0]["citations"] is None


def test_document_and_search_result_indexes_count_across_the_request(client: httpx.Client) -> None:
    search = {"type": "search_result", "source": "https://example.com/a", "title": "A", "citations": {"enabled": True},
              "content": [{"type": "text", "text": "Quinces ripen in October."}]}  # fmt: skip
    earlier = [text_document(citations=False), search, {"type": "text", "text": "Read these."}]
    messages = [
        {"role": "user", "content": earlier},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": [search, {"type": "text", "text": "When?"}]},
    ]
    message = create(client, {**body(), "messages": messages})
    [citation] = message["content"][0]["citations"]
    assert citation == {
        "type": "search_result_location",
        "cited_text": "Quinces ripen in October.",
        "search_result_index": 1,
        "source": "https://example.com/a",
        "title": "A",
        "start_block_index": 0,
        "end_block_index": 1,
    }


def test_content_and_pdf_documents_get_their_citation_types(client: httpx.Client) -> None:
    content = {"type": "document", "citations": {"enabled": True},
               "source": {"type": "content", "content": [{"type": "text", "text": "Picked in October."}]}}  # fmt: skip
    [citation] = create(client, body([content, {"type": "text", "text": "When?"}]))["content"][0]["citations"]
    assert citation["type"] == "content_block_location"
    assert (citation["cited_text"], citation["start_block_index"], citation["end_block_index"]) == (
        "Picked in October.",
        0,
        1,
    )
    pdf = {"type": "document", "citations": {"enabled": True},
           "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}  # fmt: skip
    message = create(client, body([pdf, {"type": "text", "text": "What is the secret word?"}]))
    [citation] = message["content"][0]["citations"]
    assert citation["type"] == "page_location"
    assert citation["cited_text"] == "The secret word is MARIGOLD."
    assert (citation["start_page_number"], citation["end_page_number"]) == (1, 2)


def test_a_streamed_citation_comes_before_the_text(client: httpx.Client) -> None:
    plain = create(client, body([text_document(), {"type": "text", "text": "Which fruit?"}]))
    events = stream(client, body([text_document(), {"type": "text", "text": "Which fruit?"}]))
    start = next(event for event in events if event["type"] == "content_block_start")
    assert start["content_block"] == {"type": "text", "text": "", "citations": []}
    deltas = [event["delta"] for event in events if event["type"] == "content_block_delta"]
    assert deltas[0] == {"type": "citations_delta", "citation": plain["content"][0]["citations"][0]}
    assert {delta["type"] for delta in deltas[1:]} == {"text_delta"}
    assert "".join(delta["text"] for delta in deltas[1:]) == plain["content"][0]["text"]


def test_an_exact_reply_wins_over_citing(client: httpx.Client) -> None:
    message = create(client, body([text_document(), {"type": "text", "text": "Reply with exactly: OK"}]))
    assert message["content"] == [{"type": "text", "text": "OK", "citations": None}]


# --- media and models -----------------------------------------------------------------------------


def image(media_type: str, data: str) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


JPEG_BYTES = base64.b64encode(b"\xff\xd8\xff\xe0\x00\x10JFIF").decode()


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (image("image/png", base64.b64encode(b"This is not an image.").decode()), "Could not process image"),
        (image("image/png", JPEG_BYTES), "Image does not match the provided media type image/png"),
        (image("image/png", "not base64!"), "image.source.base64.data: Input should be valid base64"),
        (
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PNG}},
            "The PDF specified was not valid.",
        ),
        ({"type": "image", "source": {"type": "url", "url": "file:///etc/passwd"}}, "image.source.url.url"),
    ],
    ids=["not-an-image", "media-type-mismatch", "not-base64", "not-a-pdf", "not-http"],
)
def test_media_that_cannot_be_read_is_a_400(client: httpx.Client, block: dict[str, Any], message: str) -> None:
    response = client.post("/v1/messages", json=body([block, {"type": "text", "text": "Describe it."}]))
    assert_error(response, 400, "invalid_request_error", message)


def test_every_supported_image_type_is_recognised(client: httpx.Client) -> None:
    signatures = {"image/png": PNG, "image/jpeg": JPEG_BYTES, "image/gif": base64.b64encode(b"GIF89a...").decode(),
                  "image/webp": base64.b64encode(b"RIFF\x00\x00\x00\x00WEBPVP8 ").decode()}  # fmt: skip
    for media_type, data in signatures.items():
        create(client, body([image(media_type, data), {"type": "text", "text": "Describe it."}]))


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_an_unknown_model_is_404(client: httpx.Client, path: str) -> None:
    payload = body(model="gpt-4o")
    if path.endswith("count_tokens"):
        payload.pop("max_tokens")
    assert_error(client.post(path, json=payload), 404, "not_found_error", "model: gpt-4o")


def test_a_count_tokens_answer_is_plain_json(client: httpx.Client) -> None:
    response = client.post(
        "/v1/messages/count_tokens", json={"model": "claude-x", "messages": [{"role": "user", "content": "Hi"}]}
    )
    assert json.loads(response.text).keys() == {"input_tokens"}
