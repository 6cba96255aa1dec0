"""`conformance cases from-capture`: recorded requests turned into replayable cases (docs/how-to/cases.md format).

Each distinct request a client sent (a retry of the same request counts once) becomes one case
that sends it again, byte for byte in structure: method, path and query, headers, body. What is
never written: credentials (x-api-key, Authorization and the like: the case sends the target's
own, `auth: true`), any other header whose name looks like a credential (conformance.redact's
rule, unless the user marks it public: left out, and named in a comment at the top of the file), a
credential's value wherever else it appears, connection headers, and the model name unless asked
(`$model`, the target's).
With `shorten`, every text longer than that many characters becomes a `{$text: {bytes: N}}`
filler of the same size: the request keeps its size and structure, not its words.

A case expects what the client needed: the request accepted (200) and, when it asked for a
stream, an SSE stream. Its `requires` names the capabilities the request uses, so that a target
claiming fewer skips it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from conformance.cases import MODEL_PLACEHOLDER, TEXT_KEY
from conformance.cassette import CassetteError, load_cassette
from conformance.model import Exchange
from conformance.proxy.relay import HOP_BY_HOP
from conformance.redact import REDACTED, SECRET_HEADERS, Redactor, credential, secret_header

# Headers that describe one connection or one body, not what the client asks for.
DROPPED_HEADERS = frozenset({"host", "content-length", *(name.decode() for name in HOP_BY_HOP)})
ENDPOINT_CLAUSES = {"/v1/messages": "messages.request.messages", "/v1/messages/count_tokens": "count_tokens.request"}
NAMED_ENDPOINTS = {"/v1/messages": "messages", "/v1/messages/count_tokens": "count_tokens"}
# The keys whose string values are prose that --shorten may replace.
TEXT_FIELDS = frozenset({"text", "description", "content", "system"})
CACHE_CONTROL = "cache_control"


class CaptureError(ValueError):
    """Recorded exchanges that cannot be read or turned into cases."""


@dataclass(frozen=True)
class Options:
    feature: str
    tier: str = "provider"
    shorten: int | None = None
    keep_model: bool = False
    # Lower-case names of headers that look like credentials but are not (--public-header).
    public_headers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CapturedCase:
    """A case (docs/how-to/cases.md, as a dict) and the secret-looking headers left out of its request."""

    case: dict[str, Any]
    left_out: tuple[str, ...] = ()


def recorded_exchanges(location: Path) -> tuple[str, list[Exchange]]:
    """The recorded target's base URL and every exchange of a capture directory (or cassette.json), in order."""
    try:
        cassette = load_cassette(location)
    except CassetteError as exc:
        raise CaptureError(str(exc)) from None
    return cassette.target.base_url, [exchange for case in cassette.cases for exchange in case.exchanges]


def transient(exchange: Exchange) -> bool:
    """An answer that says nothing lasting about the request (no answer, 429, a 5xx such as 529 overloaded):
    a case made from it would expect a success the recording never showed."""
    response = exchange.response
    return response is None or response.status == 429 or response.status >= 500


def build_cases(exchanges: Iterable[Exchange], base_url: str | None, options: Options) -> list[CapturedCase]:
    """One case per distinct Messages API request (first occurrence first), transient answers left out."""
    exchanges = list(exchanges)
    # A cassette written before its headers were redacted may still hold the values: never let one through.
    redactor = Redactor(
        [
            secret
            for exchange in exchanges
            for name, value in exchange.request.headers.items()
            if (secret := credential(name, value, options.public_headers))
        ],
        public_headers=options.public_headers,
    )
    cases: list[CapturedCase] = []
    seen: set[str] = set()
    for exchange in exchanges:
        endpoint = _endpoint(exchange.request.url, base_url)
        if endpoint is None or transient(exchange):
            continue
        request, left_out = _request(exchange, redactor.text(endpoint), options, redactor)
        key = json.dumps(request, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        body = exchange.request.body if isinstance(exchange.request.body, dict) else {}
        number = len(cases) + 1
        case = {
            "id": f"{options.feature}.{number:02d}",
            "title": _title(exchange.request.method, endpoint, body),
            "spec": ENDPOINT_CLAUSES[_path(endpoint)],
            "requires": sorted(requirements(body, endpoint)),
            "request": request,
            "expect": {"status": 200, **({"stream": True} if body.get("stream") is True else {})},
        }
        cases.append(CapturedCase(case, left_out))
    return cases


def write_cases(cases: list[CapturedCase], path: Path, options: Options, source: str) -> Path:
    document = {"feature": options.feature, "tier": options.tier, "cases": [captured.case for captured in cases]}
    header = (
        f"# Requests recorded by `conformance proxy` ({source}), written by `conformance cases from-capture`.\n"
        "# Credentials are never stored: each case sends the target's own. See docs/how-to/proxy.md.\n"
    )
    for captured in cases:
        if captured.left_out:
            header += (
                f"# {captured.case['id']}: left out {', '.join(captured.left_out)} (a credential by its name or "
                "value; --public-header NAME keeps a header that is not one).\n"
            )
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + text, encoding="utf-8")
    return path


def requirements(body: dict[str, Any], endpoint: str) -> set[str]:
    """The capabilities (docs/how-to/cases.md) a request uses."""
    needed = {"count_tokens"} if endpoint == "count_tokens" else set()
    if body.get("tools"):
        needed.add("tools")
    if (body.get("thinking") or {}).get("type") in ("enabled", "adaptive"):
        needed.add("thinking")
    output_config = body.get("output_config") or {}
    if "effort" in output_config:
        needed.add("effort")
    if "format" in output_config:
        needed.add("structured-outputs")
    kinds = set(_block_types(body.get("messages")))
    if "image" in kinds:
        needed.add("vision")
    if "document" in kinds:
        needed.add("documents")
    if "search_result" in kinds:
        needed.add("search-results")
    if CACHE_CONTROL in json.dumps(body):
        needed.add("prompt-caching")
    return needed


def _block_types(value: Any) -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _block_types(item)
    elif isinstance(value, dict):
        if isinstance(value.get("type"), str):
            yield value["type"]
        for item in value.values():
            yield from _block_types(item)


def _endpoint(url: str, base_url: str | None) -> str | None:
    """`messages`, `count_tokens`, or the path and query relative to the base URL; None outside the API."""
    parts = urlsplit(url)
    path = parts.path
    base_path = urlsplit(base_url).path.rstrip("/") if base_url else ""
    if base_path and path.startswith(base_path):
        path = path[len(base_path) :]
    if path.rstrip("/") not in NAMED_ENDPOINTS:
        return None
    path = path.rstrip("/")
    return f"{path}?{parts.query}" if parts.query else NAMED_ENDPOINTS[path]


def _path(endpoint: str) -> str:
    reverse = {name: path for path, name in NAMED_ENDPOINTS.items()}
    return reverse.get(endpoint, endpoint.split("?", 1)[0])


def _request(
    exchange: Exchange, endpoint: str, options: Options, redactor: Redactor
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The case's request, and the secret-looking headers left out of it (other than the key itself)."""
    recorded = exchange.request
    secret = {
        name
        for name, value in recorded.headers.items()
        if secret_header(name, options.public_headers) or REDACTED in redactor.text(value)
    }
    headers = {
        name: value
        for name, value in sorted(recorded.headers.items())
        if name.lower() not in DROPPED_HEADERS and name not in secret
    }
    left_out = tuple(sorted(name for name in secret if name.lower() not in SECRET_HEADERS))
    request: dict[str, Any] = {"endpoint": endpoint}
    if recorded.method != "POST":
        request["method"] = recorded.method
    if not secret:
        request["auth"] = False
    if headers:
        request["headers"] = headers
    if isinstance(recorded.body, dict):
        body = redactor.json(recorded.body)
        if not options.keep_model and "model" in body:
            body["model"] = MODEL_PLACEHOLDER
        request["body"] = _shorten(body, options.shorten) if options.shorten else body
    elif recorded.raw_body is not None:
        request["raw_body"] = redactor.text(recorded.raw_body)
    return request, left_out


def _shorten(value: Any, limit: int, key: str = "") -> Any:
    if isinstance(value, str):
        if key in TEXT_FIELDS and len(value) > limit:
            return {TEXT_KEY: {"bytes": len(value.encode("utf-8"))}}
        return value
    if isinstance(value, list):
        return [_shorten(item, limit, key if key in TEXT_FIELDS else "") for item in value]
    if isinstance(value, dict):
        return {name: _shorten(item, limit, name) for name, item in value.items()}
    return value


def _title(method: str, endpoint: str, body: dict[str, Any]) -> str:
    facts = [f"{method} {endpoint}"]
    if isinstance(body.get("messages"), list):
        facts.append(f"{len(body['messages'])} messages")
    if isinstance(body.get("tools"), list):
        facts.append(f"{len(body['tools'])} tools")
    if body.get("stream") is True:
        facts.append("streamed")
    return "recorded request: " + ", ".join(facts)
