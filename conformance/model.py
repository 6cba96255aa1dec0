"""The data that flows through the pipeline: cases -> runner -> exchanges -> checks -> findings -> results.

Everything here is plain data (dataclasses) so that an exchange recorded today can be judged again
offline tomorrow by the same checks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Outcome(str, enum.Enum):
    """The verdict of one case (see docs/verdicts in the README)."""

    PASSED = "passed"
    # Allowed by the contract, but not what the real API does, in a way clients may feel (docs/reference/verdicts.md).
    WARNING = "warning"
    FAILED = "failed"
    DEVIATION = "deviation"
    UNSUPPORTED = "unsupported"
    SKIPPED = "skipped"
    ERROR = "error"


class Severity(str, enum.Enum):
    """How much a finding weighs: a failure decides the outcome; a warning (behaviour the docs allow but
    do not promise, done otherwise than the real API does it) makes a case `warning` when nothing
    fails; a note is only reported."""

    FAILURE = "failure"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Finding:
    """One observed difference between what the target did and what the contract says."""

    check: str
    message: str
    spec_ref: str = ""
    severity: Severity = Severity.FAILURE
    # Set when the target's provider profile documents this difference (outcome `deviation`).
    deviation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "check": self.check,
            "message": self.message,
            "spec_ref": self.spec_ref,
            "severity": self.severity.value,
        }
        if self.deviation:
            data["deviation"] = self.deviation
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            check=data["check"],
            message=data["message"],
            spec_ref=data.get("spec_ref", ""),
            severity=Severity(data.get("severity", "failure")),
            deviation=data.get("deviation"),
        )


@dataclass
class SSEEvent:
    """One server-sent event as it arrived: its fields, its parsed JSON and when it arrived.

    `data` is the joined `data:` lines exactly as sent; `json` is its parse (None when it is not
    JSON, with `json_error` saying why); `t` is seconds since the request was sent.
    """

    event: str | None
    data: str
    t: float = 0.0
    id: str | None = None
    retry: int | None = None
    json: Any = None
    json_error: str | None = None

    @property
    def type(self) -> str | None:
        """The JSON payload's `type`, or None when the payload is not a JSON object."""
        if isinstance(self.json, dict):
            value = self.json.get("type")
            return value if isinstance(value, str) else None
        return None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"event": self.event, "data": self.data, "t": round(self.t, 4)}
        if self.id is not None:
            data["id"] = self.id
        if self.retry is not None:
            data["retry"] = self.retry
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SSEEvent:
        from conformance.bounded_json import parse_json_payload

        parsed, error = parse_json_payload(data["data"])
        return cls(
            event=data.get("event"),
            data=data["data"],
            t=data.get("t", 0.0),
            id=data.get("id"),
            retry=data.get("retry"),
            json=parsed,
            json_error=error,
        )


@dataclass
class Request:
    """What was sent. Headers and body are already redacted when stored in an Exchange."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    # The JSON body as sent (None for no body); `raw_body` when the case sends non-JSON bytes.
    body: Any = None
    raw_body: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"method": self.method, "url": self.url, "headers": self.headers, "body": self.body}
        if self.raw_body is not None:
            data["raw_body"] = self.raw_body
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Request:
        return cls(
            method=data["method"],
            url=data["url"],
            headers=dict(data.get("headers") or {}),
            body=data.get("body"),
            raw_body=data.get("raw_body"),
        )


@dataclass
class Response:
    """What came back: status, headers (lower-cased names), and either a body or SSE events.

    `text` is the body decoded as UTF-8 (with replacement), `json` its parse when it is JSON.
    For a stream, `events` holds every event and `text` the raw stream as received.
    `truncated` says why the suite stopped reading early (a bound was hit), if it did.
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    json: Any = None
    events: list[SSEEvent] | None = None
    truncated: str | None = None
    elapsed: float = 0.0
    first_byte: float | None = None

    @property
    def is_stream(self) -> bool:
        return self.events is not None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status,
            "headers": self.headers,
            "elapsed": round(self.elapsed, 4),
        }
        if self.first_byte is not None:
            data["first_byte"] = round(self.first_byte, 4)
        if self.events is not None:
            data["events"] = [event.to_dict() for event in self.events]
        elif self.json is not None:
            data["body"] = self.json
        else:
            data["text"] = self.text
        if self.truncated:
            data["truncated"] = self.truncated
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Response:
        import json as jsonlib

        events = data.get("events")
        body = data.get("body")
        text = data.get("text", "")
        if body is not None and not text:
            text = jsonlib.dumps(body)
        return cls(
            status=data["status"],
            headers=dict(data.get("headers") or {}),
            text=text,
            json=body,
            events=[SSEEvent.from_dict(e) for e in events] if events is not None else None,
            truncated=data.get("truncated"),
            elapsed=data.get("elapsed", 0.0),
            first_byte=data.get("first_byte"),
        )


@dataclass
class Exchange:
    """One request and what happened to it: a response, or an `error` when none could be had."""

    request: Request
    response: Response | None = None
    # Transport failure (connection refused, timeout before any response...): outcome `error`.
    error: str | None = None
    # Which step of its case this exchange is (cases may chain several requests).
    step: int = 0
    # What the reports did not keep of this exchange, by part ("body", "events", "request_body",
    # "budget"...); None when it is kept whole. See conformance.report.evidence.
    evidence_cut: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "step": self.step,
            "request": self.request.to_dict(),
            "response": self.response.to_dict() if self.response else None,
        }
        if self.error:
            data["error"] = self.error
        if self.evidence_cut:
            data["evidence_cut"] = self.evidence_cut
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Exchange:
        response = data.get("response")
        return cls(
            request=Request.from_dict(data["request"]),
            response=Response.from_dict(response) if response else None,
            error=data.get("error"),
            step=data.get("step", 0),
            evidence_cut=data.get("evidence_cut") or None,
        )


@dataclass
class CaseResult:
    """The verdict on one case, with the evidence behind it."""

    id: str
    feature: str
    outcome: Outcome
    findings: list[Finding] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    tier: str = "core"
    spec_ref: str = ""
    title: str = ""
    reason: str = ""
    duration: float = 0.0
    # Tokens the target reported for this case (usage), to report what a run cost.
    input_tokens: int = 0
    output_tokens: int = 0
    # The case was generated from the contract (conformance.generate), not written in cases/.
    generated: bool = False
    # How many times the case was tried, retries included (1: it was not retried).
    attempts: int = 1
    # What the recorded answers do to real clients (conformance.impact): one
    # {client, version, effect, detail} per client; empty when not computed.
    impact: list[dict[str, str]] = field(default_factory=list)
    # The verdict as the provider's own documented contract says (conformance.own_contract):
    # {outcome: passed|failed|not-documented, findings: [Finding]}; None for anthropic or offline.
    own_docs: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "feature": self.feature,
            "outcome": self.outcome.value,
            "tier": self.tier,
            "spec_ref": self.spec_ref,
            "title": self.title,
            "reason": self.reason,
            "duration": round(self.duration, 4),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "findings": [finding.to_dict() for finding in self.findings],
            "exchanges": [exchange.to_dict() for exchange in self.exchanges],
        }
        if self.generated:
            data["generated"] = True
        if self.attempts != 1:
            data["attempts"] = self.attempts
        if self.impact:
            data["impact"] = [dict(entry) for entry in self.impact]
        if self.own_docs is not None:
            data["own_docs"] = {
                "outcome": self.own_docs["outcome"],
                "findings": [finding.to_dict() for finding in self.own_docs["findings"]],
            }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        return cls(
            id=data["id"],
            feature=data.get("feature", ""),
            outcome=Outcome(data["outcome"]),
            findings=[Finding.from_dict(f) for f in data.get("findings", [])],
            exchanges=[Exchange.from_dict(e) for e in data.get("exchanges", [])],
            tier=data.get("tier", "core"),
            spec_ref=data.get("spec_ref", ""),
            title=data.get("title", ""),
            reason=data.get("reason", ""),
            duration=data.get("duration", 0.0),
            input_tokens=_count(data.get("input_tokens")),
            output_tokens=_count(data.get("output_tokens")),
            generated=bool(data.get("generated", False)),
            attempts=_count(data.get("attempts"), default=1),
            impact=[dict(entry) for entry in data.get("impact") or [] if isinstance(entry, dict)],
            own_docs=_own_docs(data.get("own_docs")),
        )


SUMMARY_KEYS = (
    "passed",
    "warning",
    "failed",
    "deviation",
    "unsupported",
    "skipped",
    "error",
    "requests",
    "input_tokens",
    "output_tokens",
)


@dataclass
class TargetInfo:
    """How a report names what it tested (never the API key)."""

    base_url: str
    provider: str = "anthropic"
    model: str = ""
    reference: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "provider": self.provider, "model": self.model, "reference": self.reference}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetInfo:
        return cls(
            base_url=data["base_url"],
            provider=data.get("provider", "anthropic"),
            model=data.get("model", ""),
            reference=bool(data.get("reference", False)),
        )


@dataclass
class RunReport:
    """A whole run: the source of truth that report.json holds and every other report renders."""

    target: TargetInfo
    started_at: str
    finished_at: str
    results: list[CaseResult] = field(default_factory=list)
    tool_version: str = ""
    # Planned cost of the run: request count and the sum of max_tokens asked for.
    planned_requests: int = 0
    planned_max_output_tokens: int = 0
    # How the generated cases were made, when the run had some (`--generated`): seed, contracts,
    # plan, shrinking cost and exported failures (conformance.generate.session writes it).
    generation: dict[str, Any] | None = None
    # Why the run stopped before every case ran ("SIGINT", "SIGTERM"...); None for a complete run.
    interrupted: str | None = None
    # Ids of the planned cases that never ran because the run was interrupted.
    not_run: list[str] = field(default_factory=list)

    SCHEMA_VERSION = 1

    @property
    def complete(self) -> bool:
        """Every planned case ran: the run was not interrupted."""
        return self.interrupted is None and not self.not_run

    def summary(self) -> dict[str, int]:
        """Outcome counts and cost of every case, generated ones included."""
        return summary_counts(self.results)

    def generated_summary(self) -> dict[str, int] | None:
        """The same counts for the generated cases alone (`cases` is their number); None when there are none."""
        generated = [result for result in self.results if result.generated]
        if not generated and self.generation is None:
            return None
        return {"cases": len(generated), **summary_counts(generated)}

    def to_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = dict(self.summary())
        generated = self.generated_summary()
        if generated is not None:
            summary["generated"] = generated
        data: dict[str, Any] = {
            "schema_version": self.SCHEMA_VERSION,
            "tool": {"name": "conformance", "version": self.tool_version},
            "target": self.target.to_dict(),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "summary": summary,
            "plan": {
                "requests": self.planned_requests,
                "max_output_tokens": self.planned_max_output_tokens,
            },
            "results": [result.to_dict() for result in self.results],
        }
        if self.generation is not None:
            data["generation"] = self.generation
        data["interrupted"] = self.interrupted
        data["not_run"] = list(self.not_run)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        plan = data.get("plan") or {}
        return cls(
            target=TargetInfo.from_dict(data["target"]),
            started_at=data.get("started_at", ""),
            finished_at=data.get("finished_at", ""),
            results=[CaseResult.from_dict(r) for r in data.get("results", [])],
            tool_version=(data.get("tool") or {}).get("version", ""),
            planned_requests=plan.get("requests", 0),
            planned_max_output_tokens=plan.get("max_output_tokens", 0),
            generation=data.get("generation"),
            interrupted=data.get("interrupted"),
            not_run=[str(case_id) for case_id in data.get("not_run") or []],
        )


# The outcomes of the second axis, "as the provider's own docs say" (conformance.own_contract).
OWN_DOCS_OUTCOMES = ("passed", "failed", "not-documented")


def own_docs_line(provider: str, results: list[CaseResult]) -> str | None:
    """`as P's own docs say: N passed, M failed, K not documented`, or None when no case has the axis."""
    judged = [r.own_docs["outcome"] for r in results if r.own_docs is not None]
    if not judged:
        return None
    counts = ", ".join(f"{judged.count(outcome)} {outcome.replace('-', ' ')}" for outcome in OWN_DOCS_OUTCOMES)
    return f"as {provider}'s own docs say: {counts}"


def _own_docs(data: Any) -> dict[str, Any] | None:
    """A report's `own_docs` read back (None when absent: reports written before it, or anthropic)."""
    if not isinstance(data, dict) or not isinstance(data.get("outcome"), str):
        return None
    return {"outcome": data["outcome"], "findings": [Finding.from_dict(f) for f in data.get("findings") or []]}


def _count(value: Any, default: int = 0) -> int:
    """A count read back from a report: written as a number, or as a decimal string when too large."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 4000:
        return int(value)
    return default


def summary_counts(results: list[CaseResult]) -> dict[str, int]:
    """A report's summary of `results`: outcome counts, requests answered or failed, tokens."""
    counts = {key: 0 for key in SUMMARY_KEYS}
    for result in results:
        counts[result.outcome.value] += 1
        counts["requests"] += sum(1 for e in result.exchanges if e.response is not None or e.error)
        counts["input_tokens"] += result.input_tokens
        counts["output_tokens"] += result.output_tokens
    return counts
