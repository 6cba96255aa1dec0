"""Real api.anthropic.com traffic, recorded by client libraries, must pass every check.

The recordings live outside the repository (../shared/reference/recorded); the tests skip when
they are absent. A failure here means a check is wrong, not the API.

Formats read: VCR cassettes of pydantic-ai (JSON bodies re-serialised under `parsed_body`, SSE
verbatim), llm-anthropic (bodies possibly gzip + base64 `!!binary`) and ruby_llm (Ruby's
`!binary`: base64 of plain UTF-8), and the JSON snapshots of the official Python SDK. Only
interactions whose host is api.anthropic.com are judged. Files without status or request
(data-only chunk fixtures, bare error bodies) are not exchanges and are left out.
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

from conformance.checks import run_checks
from conformance.model import Exchange, Request, Response, Severity
from conformance.sse import parse_json_payload, parse_stream

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
RECORDED = REFERENCE / "recorded"
SOURCES = ("pydantic-ai", "llm-anthropic", "ruby_llm", "anthropic-sdk-python")
# These recorders drop the request-id header from what they store, so its absence proves nothing.
FILTERED_HEADERS = {"pydantic-ai": {"headers.request-id"}, "anthropic-sdk-python": {"headers.request-id"}}


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


def load(path: Path) -> list[Exchange]:
    """The api.anthropic.com exchanges recorded in one file."""
    if path.suffix in (".yaml", ".yml"):
        return list(_vcr(path))
    if path.suffix == ".json" and path.parent.name == "anthropic-sdk-python":
        return list(_sdk_snapshot(path))
    return []


FILES = _files()


@pytest.mark.parametrize("path", FILES or [None], ids=[f"{p.parent.name}/{p.name}" for p in FILES] or ["absent"])
def test_recorded_traffic_has_no_failures(path: Path | None):
    if path is None:
        pytest.skip(f"no recorded traffic at {RECORDED}")
    ignored = FILTERED_HEADERS.get(path.parent.name, set())
    for position, exchange in enumerate(load(path)):
        found = [
            f"{f.check} [{f.spec_ref}] {f.message}"
            for f in run_checks(exchange)
            if f.severity is Severity.FAILURE and f.check not in ignored
        ]
        assert not found, f"interaction {position}:\n" + "\n".join(found)


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
