"""Real api.anthropic.com traffic, recorded by client libraries, must pass every check.

The recordings live outside the repository (../shared/reference/recorded); the tests skip when
they are absent. A failure here means a check is wrong, not the API.

Formats read: VCR cassettes of pydantic-ai (JSON bodies re-serialised under `parsed_body`, SSE
verbatim), llm-anthropic (bodies possibly gzip + base64 `!!binary`) and ruby_llm (Ruby's
`!binary`: base64 of plain UTF-8), the JSON snapshots of the official Python SDK, and the
vercel-ai fixtures: a stream stored as one `data:` payload per line (the recorder dropped the
`event:` lines, which equal each payload's type) and a bare 400 error body. Those fixtures kept no
request, status or headers: the exchange gets the minimal request that asks for such an answer,
and the header checks are not applied. Only interactions whose host is api.anthropic.com are
judged.

Real traffic must raise no failure, and only the notes that are true of it: a block type newer
than the contract, an unknown event, an error body of an era without request_id.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from conformance.bounded_json import parse_json_payload
from conformance.checks import run_checks
from conformance.checks.common import final_message
from conformance.model import Exchange, Request, Response, Severity, SSEEvent
from conformance.sse import parse_stream

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
RECORDED = REFERENCE / "recorded"
SOURCES = ("pydantic-ai", "llm-anthropic", "ruby_llm", "anthropic-sdk-python", "vercel-ai")
# These recorders drop the request-id header from what they store, so its absence proves nothing.
FILTERED_HEADERS = {
    "pydantic-ai": {"headers.request-id"},
    "anthropic-sdk-python": {"headers.request-id"},
    "vercel-ai": {"headers.request-id", "headers.content-type"},
}
# The notes a real exchange may rightly get; any other note on real traffic is a check being wrong.
TRUE_NOTES = {"schema.unknown-type", "stream.unknown-event", "errors.envelope"}
VERCEL_URL = "https://api.anthropic.com/v1/messages"


class _CassetteLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML plus Ruby's `!binary` tag (base64 text)."""


_CassetteLoader.add_constructor("!binary", lambda loader, node: base64.b64decode(loader.construct_scalar(node)))


def _files() -> list[Path]:
    if not RECORDED.is_dir():
        return []
    return sorted(path for source in SOURCES for path in (RECORDED / source).glob("*") if path.is_file())


def _headers(raw: dict[str, Any] | None) -> dict[str, str]:
    """Lower-cased names; VCR stores each value as a list."""
    return {
        name.lower(): ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        for name, value in (raw or {}).items()
    }


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return gzip.decompress(value) if value[:2] == b"\x1f\x8b" else value
    return (value or "").encode("utf-8")


def _response(status: int, headers: dict[str, str], raw: bytes | None = None, parsed: Any = None) -> Response:
    if parsed is not None:
        return Response(status=status, headers=headers, text=json.dumps(parsed), json=parsed)
    assert raw is not None
    text = raw.decode("utf-8", errors="replace")
    if headers.get("content-type", "").startswith("text/event-stream"):
        return Response(status=status, headers=headers, text=text, events=parse_stream(raw))
    return Response(status=status, headers=headers, text=text, json=parse_json_payload(text)[0])


def _vcr(path: Path) -> Iterator[Exchange]:
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_CassetteLoader)
    for interaction in document.get("interactions") or document.get("http_interactions") or []:
        sent, received = interaction["request"], interaction["response"]
        if urlsplit(sent["uri"]).hostname != "api.anthropic.com":
            continue
        if "parsed_body" in sent:
            body = sent["parsed_body"]
        else:
            raw = sent.get("body")
            raw = _bytes(raw.get("string") if isinstance(raw, dict) else raw)
            body = json.loads(raw) if raw else None
        request = Request(
            method=sent["method"].upper(), url=sent["uri"], headers=_headers(sent.get("headers")), body=body
        )
        headers, status = _headers(received.get("headers")), received["status"]["code"]
        if "parsed_body" in received:
            response = _response(status, headers, parsed=received["parsed_body"])
        else:
            raw = received.get("body")
            response = _response(status, headers, _bytes(raw.get("string") if isinstance(raw, dict) else raw))
        yield Exchange(request=request, response=response)


def _sdk_snapshot(path: Path) -> Iterator[Exchange]:
    for interaction in json.loads(path.read_text(encoding="utf-8")):
        sent, received = interaction["request"], interaction["response"]
        request = Request(
            method=sent["method"], url=sent["url"], headers=_headers(sent.get("headers")), body=sent.get("body")
        )
        headers, body = _headers(received.get("headers")), received.get("body")
        if isinstance(body, str):
            yield Exchange(request=request, response=_response(received["status_code"], headers, body.encode("utf-8")))
        else:
            yield Exchange(request=request, response=_response(received["status_code"], headers, parsed=body))


def _vercel_chunks(path: Path) -> Iterator[Exchange]:
    """One SSE payload per line; each event gets back the name the recorder dropped (its type)."""
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            payload, error = parse_json_payload(line)
            kind = payload.get("type") if isinstance(payload, dict) else None
            events.append(SSEEvent(event=kind, data=line, json=payload, json_error=error))
    tools = sorted({
        event.json["content_block"]["name"]
        for event in events
        if event.type == "content_block_start" and event.json["content_block"].get("type") == "tool_use"
    })  # fmt: skip
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 4096,
        "stream": True,
        "tools": [{"name": name, "input_schema": {"type": "object"}} for name in tools],
        "messages": [{"role": "user", "content": "(not recorded)"}],
    }
    response = Response(status=200, headers={"content-type": "text/event-stream"}, events=events)
    yield Exchange(request=Request(method="POST", url=VERCEL_URL, body=body), response=response)


def _vercel_error(path: Path) -> Iterator[Exchange]:
    """A bare error body; its status is the one its error type goes with."""
    body = json.loads(path.read_text(encoding="utf-8"))
    status = {"invalid_request_error": 400}[body["error"]["type"]]
    request = Request(method="POST", url=VERCEL_URL, body={"model": "claude-haiku-4-5", "max_tokens": 1024})
    yield Exchange(request=request, response=_response(status, {"content-type": "application/json"}, parsed=body))


def load(path: Path) -> list[Exchange]:
    """The api.anthropic.com exchanges recorded in one file."""
    if path.suffix in (".yaml", ".yml"):
        return list(_vcr(path))
    if path.suffix == ".json" and path.parent.name == "anthropic-sdk-python":
        return list(_sdk_snapshot(path))
    if path.parent.name == "vercel-ai" and path.name.endswith(".chunks.txt"):
        return list(_vercel_chunks(path))
    if path.parent.name == "vercel-ai" and path.suffix == ".json":
        return list(_vercel_error(path))
    return []


FILES = _files()


@pytest.mark.parametrize("path", FILES or [None], ids=[f"{p.parent.name}/{p.name}" for p in FILES] or ["absent"])
def test_recorded_traffic_has_no_failures(path: Path | None):
    if path is None:
        pytest.skip(f"no recorded traffic at {RECORDED}")
    ignored = FILTERED_HEADERS.get(path.parent.name, set())
    exchanges = load(path)
    # A VCR cassette may hold only calls to other hosts (Bedrock, OpenAI); every other file is one exchange or more.
    assert exchanges or path.suffix in (".yaml", ".yml"), f"nothing was read from {path}"
    for position, exchange in enumerate(exchanges):
        found = [
            f"{f.check} [{f.spec_ref}] {f.severity.value}: {f.message}"
            for f in run_checks(exchange)
            if f.check not in ignored and (f.severity is Severity.FAILURE or f.check not in TRUE_NOTES)
        ]
        assert not found, f"interaction {position}:\n" + "\n".join(found)


def _programmatic(exchange: Exchange) -> bool:
    """The request offers a tool to code execution (programmatic tool calling)."""
    tools = exchange.request.body.get("tools") if isinstance(exchange.request.body, dict) else None
    return any(isinstance(tool, dict) and tool.get("allowed_callers") for tool in tools or [])


def _findings(path: Path, exchange: Exchange) -> list[str]:
    """Every finding (notes included) but those on what the recorder filtered out."""
    ignored = FILTERED_HEADERS.get(path.parent.name, set())
    return [f"{f.check} {f.severity.value}: {f.message}" for f in run_checks(exchange) if f.check not in ignored]


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
def test_programmatic_tool_calling_judges_with_no_findings(streamed: bool):
    """Tool calls made by code execution: a `caller` naming the program, the continuation with zero usage
    (streamed: the complete message in message_start, then message_stop; the program's calls whole in
    content_block_start). Not even a note: this is how the API answers."""
    if not FILES:
        pytest.skip(f"no recorded traffic at {RECORDED}")
    recorded = [
        (path, exchange)
        for path in FILES
        for exchange in load(path)
        if _programmatic(exchange) and exchange.response is not None and exchange.response.is_stream is streamed
    ]
    if not recorded:
        pytest.skip(f"no {'streamed' if streamed else 'JSON'} recording of programmatic tool calling at {RECORDED}")
    callers = [
        block.get("caller", {}).get("type")
        for _, exchange in recorded
        for block in final_message(exchange.response)["content"]
        if block["type"] == "tool_use"
    ]
    assert "code_execution_20260120" in callers
    for path, exchange in recorded:
        assert _findings(path, exchange) == [], path.name


def test_every_source_of_recordings_is_read():
    """A new folder of recordings must get a loader here before it counts as golden data."""
    if not RECORDED.is_dir():
        pytest.skip(f"no recorded traffic at {RECORDED}")
    assert {path.name for path in RECORDED.iterdir() if path.is_dir()} == set(SOURCES)


def test_the_recordings_cover_what_they_should():
    """Guard against a loader that silently reads nothing."""
    if not FILES:
        pytest.skip(f"no recorded traffic at {RECORDED}")
    exchanges = [exchange for path in FILES for exchange in load(path)]
    assert exchanges[0].response is not None
    streams = [e for e in exchanges if e.response is not None and e.response.events]
    errors = [e for e in exchanges if e.response is not None and e.response.status >= 400]
    count_tokens = [e for e in exchanges if "count_tokens" in e.request.url]
    assert len(exchanges) >= 150
    assert len(streams) >= 40
    assert sum(len(e.response.events) for e in streams if e.response) >= 1500
    assert len(errors) >= 6
    assert len(count_tokens) >= 8
