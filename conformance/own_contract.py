"""Each exchange judged against the provider's own documented contract (specs/<provider>/openapi.yaml).

The second axis of a verdict: "as Anthropic says" is the case's outcome; "as its own docs say" is
whether the answer is one the provider's OpenAPI document declares — the operation for the method
and path (relative to the provider's base path), the status, the content type and the body's schema
(for a stream, each event's JSON data against the declared `itemSchema`; without one, only that a
stream is declared). Validation is openapi-core's; the documents are compiled once per file state.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openapi_core import Config, OpenAPI
from openapi_core.templating.media_types.exceptions import MediaTypeNotFound
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.schemas import oas32_schema_validators_factory

from conformance.checks.nullable import NULLABLE_NOTE, REQUIRED_PROPERTY
from conformance.contract import format_path
from conformance.model import OWN_DOCS_OUTCOMES, Exchange, Finding, Severity, SSEEvent
from conformance.specs.documents import SpecError, load

PASSED, FAILED, NOT_DOCUMENTED = OWN_DOCS_OUTCOMES
STREAM = "text/event-stream"
# Rounds of filling absent keys with null before a body is judged as it is (a schema reports some errors only
# once others are gone).
_NULL_FILLS = 4


class OwnContract:
    """A provider's OpenAPI document compiled for openapi-core, with its paths as the target serves them."""

    def __init__(self, path: Path) -> None:
        document = dict(load(path))
        # openapi-core validates 3.0/3.1 documents; 3.2's `itemSchema` is read here, not by its spec check.
        document["openapi"] = "3.1.0"
        server = urlsplit(str((document.get("servers") or [{}])[0].get("url", ""))).path.rstrip("/")
        document["servers"] = [{"url": "/"}]
        self.api = OpenAPI.from_dict(document, base_uri=path.resolve().as_uri(), config=Config(spec_validator_cls=None))
        # Longest first: the most specific documented path wins.
        self.paths = sorted(((server + key, key) for key in document.get("paths") or {}), key=lambda p: -len(p[0]))

    def documented_path(self, url: str) -> str | None:
        """The document's path key the request URL ends with (server path included), or None."""
        path = urlsplit(url).path.rstrip("/")
        return next((key for served, key in self.paths if path.endswith(served)), None)


@functools.lru_cache(maxsize=16)
def _compiled(path: Path, mtime_ns: int) -> OwnContract:
    return OwnContract(path)


def own_contract(path: Path) -> OwnContract | None:
    """The compiled document at `path` (cached until the file changes), or None when there is none."""
    try:
        return _compiled(path.resolve(), path.stat().st_mtime_ns)
    except (OSError, SpecError):
        return None


def _finding(check: str, message: str, severity: Severity = Severity.FAILURE) -> Finding:
    return Finding(check=f"own-docs.{check}", message=message, severity=severity)


def _undeclared_status(status: int, method: str, key: str) -> Finding:
    return _finding("status", f"status {status} is not declared for {method.upper()} {key}")


def check_own_docs(exchange: Exchange, contract: OwnContract) -> list[Finding] | None:
    """What the provider's own document says against one exchange: findings, or None when the
    document does not declare the operation (or there is no answer to judge)."""
    response = exchange.response
    key = contract.documented_path(exchange.request.url)
    if response is None or key is None:
        return None
    method = exchange.request.method.lower()
    if method not in contract.api.spec / "paths" / key:  # the path item resolved, were it a $ref
        return None
    content_type = response.content_type or ("application/json" if response.json is not None else "")
    if response.is_stream:
        return _check_stream(exchange, contract, key, method)
    body = response.text.encode() if response.text else json.dumps(response.json).encode()
    request = MockRequest("http://target", method, key, content_type="application/json")

    def validate_encoded(encoded: bytes) -> None:
        answer = MockResponse(encoded, status_code=response.status, content_type=content_type)
        contract.api.validate_response(request, answer)

    def validate(instance: Any) -> None:
        validate_encoded(json.dumps(instance).encode())

    try:
        validate_encoded(body)
    except Exception as exc:  # openapi-core wraps the why (status, media type, schema) in its causes
        causes = _causes(exc)
        if any(isinstance(cause, ResponseNotFound) for cause in causes):
            return [_undeclared_status(response.status, method, key)]
        if any(isinstance(cause, MediaTypeNotFound) for cause in causes):
            message = f"content type {content_type!r} is not declared for status {response.status}"
            return [_finding("content-type", message)]
        if any(isinstance(cause, PathError) for cause in causes):
            return None
        return [_body_finding(validate, response.json, exc)]
    return []


def _check_stream(exchange: Exchange, contract: OwnContract, key: str, method: str) -> list[Finding]:
    response = exchange.response
    assert response is not None
    responses = contract.api.spec / "paths" / key / method / "responses"
    status = str(response.status)
    declared = next((s for s in (status, f"{status[0]}XX", "default") if s in responses), None)
    if declared is None:
        return [_undeclared_status(response.status, method, key)]
    content = responses / declared / "content"
    if STREAM not in content:
        return [_finding("content-type", f"content type {STREAM!r} is not declared for status {response.status}")]
    media = content / STREAM
    if "itemSchema" not in media:
        return []
    item = media / "itemSchema"
    findings = []
    for index, event in enumerate(response.events or []):
        if event.json is None:
            continue
        try:
            _validate_event(contract, item, event, event.json)
        except Exception as exc:
            validate = functools.partial(_validate_event, contract, item, event)
            findings.append(_body_finding(validate, event.json, exc, f"stream event {index} ({event.type}): "))
    return findings


def _body_finding(validate: Callable[[Any], None], instance: Any, exc: Exception, where: str = "") -> Finding:
    """The finding for a body `validate` refused with `exc`: a warning when all it lacks are required keys
    whose schema allows null (absent, they read as null to the official clients, as on the other axis:
    conformance.checks.nullable), a failure otherwise."""
    patched, filled, error = copy.deepcopy(instance), [], exc
    for _ in range(_NULL_FILLS):
        errors = _schema_errors(error)
        if not errors or any(not _fill_null(patched, schema_error, filled) for schema_error in errors):
            break
        try:
            validate(patched)
        except Exception as again:
            error = again
            continue
        missing = ", ".join(filled)
        return _finding("body", f"{where}the body lacks {missing} ({NULLABLE_NOTE})", Severity.WARNING)
    return _finding("body", where + _reason(exc))


def _schema_errors(exc: BaseException) -> list[Any]:
    return next((list(error.schema_errors) for error in _causes(exc) if getattr(error, "schema_errors", None)), [])


def _fill_null(instance: Any, error: Any, filled: list[str]) -> bool:
    """Set the key a `required` schema error names to null in `instance`; False for any other error."""
    match = REQUIRED_PROPERTY.fullmatch(str(getattr(error, "message", "")))
    holder = instance
    for step in getattr(error, "absolute_path", ()):
        holder = holder[step] if isinstance(holder, (dict, list)) else None
    if match is None or getattr(error, "validator", None) != "required" or not isinstance(holder, dict):
        return False
    if match.group(1) in holder:
        return False
    holder[match.group(1)] = None
    filled.append(f"'{format_path([*error.absolute_path, match.group(1)])}'")
    return True


def _validate_event(contract: OwnContract, item: Any, event: SSEEvent, instance: Any) -> None:
    """One event's JSON data (`instance`) against the declared item: an SSE item ({event, data} with data's
    `contentSchema`, chosen by event name where the item says so) or, without one, the JSON data itself."""
    data = item / "properties" / "data" if "properties" in item and "data" in item / "properties" else None
    if data is None or "contentSchema" not in data:
        _validator(contract, item).validate(instance)
        return
    name = event.event or event.type or "message"
    sse_item = {"event": name, "data": event.data}
    _validator(contract, item).validate(sse_item)
    content = data / "contentSchema"
    for branch in item / "allOf" if "allOf" in item else []:
        condition = branch / "if" / "properties" / "event" if "if" in branch else None
        if condition is not None and "const" in condition and condition["const"] == name:
            content = branch / "then" / "properties" / "data" / "contentSchema"
    _validator(contract, content).validate(instance)


def _validator(contract: OwnContract, schema: Any) -> Any:
    return oas32_schema_validators_factory.create(contract.api.spec, schema)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _reason(exc: BaseException) -> str:
    """The first schema error's message, or the exception's own."""
    for error in (exc, exc.__cause__):
        schema_errors = getattr(error, "schema_errors", None)
        if schema_errors:
            return f"the body breaks the declared schema: {schema_errors[0].message}"
    return f"the body breaks the declared schema: {str(exc.__cause__ or exc).splitlines()[0]}"


def own_docs_verdict(exchanges: list[Exchange], contract: OwnContract | None) -> dict[str, Any]:
    """A case's `own_docs`: {outcome: passed|failed|not-documented, findings: [...]}; a case whose findings are
    all warnings passed."""
    judged = [check_own_docs(exchange, contract) for exchange in exchanges] if contract else []
    findings = [finding for found in judged if found is not None for finding in found]
    if any(finding.severity is Severity.FAILURE for finding in findings):
        outcome = FAILED
    elif any(found is not None for found in judged):
        outcome = PASSED
    else:
        outcome = NOT_DOCUMENTED
    return {"outcome": outcome, "findings": findings}
