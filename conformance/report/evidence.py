"""What the reports keep of a run: bounded evidence, strict JSON, redacted by value.

The checks judge every exchange whole (within the transport's own limits); the reports keep a
bounded part of it, so that no target can make a report (or the memory a run holds once its cases
are judged) grow without end. The bounds are stated here, in one place, and explained in
docs/reference/robustness.md ("Report bounds"):

- per exchange: at most MAX_BODY_CHARS of body text (request body, response body, raw stream) and
  of event data, and at most EVENTS_HEAD first plus EVENTS_TAIL last stream events;
- per string: header names and values, finding messages, reasons and errors at most
  MAX_TEXT_CHARS; at most MAX_FINDINGS findings per case;
- per run: RUN_BUDGET_CHARS of evidence, past which exchanges keep only their summary (request
  line and headers, status, response headers, timings); failing cases are served first.

What was cut is said in the exchange's `evidence_cut` (read back by `from_dict`, named by
`conformance recheck`). Every document is then made strict JSON by `strict_json`, which also
redacts every string by value: non-finite floats become strings, integers past 64 bits strings,
structures deeper than MAX_DEPTH a marker, keys strings, lone surrogates U+FFFD.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from typing import Any

from conformance.model import CaseResult, Exchange, Finding, Request, Response, RunReport, Severity, SSEEvent
from conformance.redact import Redactor

KIB = 1024
MIB = 1024 * KIB
# Per exchange: the body text kept, and the stream event data kept (all events together).
MAX_BODY_CHARS = 256 * KIB
# Per exchange: the first and the last stream events kept; those between are counted.
EVENTS_HEAD = 1000
EVENTS_TAIL = 1000
# Header names and values, finding messages, reasons, errors, SSE event names and ids.
MAX_TEXT_CHARS = 4 * KIB
# Findings kept per case (an endless stream can yield one per event); the rest are counted.
MAX_FINDINGS = 200
# Evidence of a whole run (body text, event data and headers, in characters).
RUN_BUDGET_CHARS = 16 * MIB
# What one event costs in the budget beyond its data: its name, time and JSON punctuation.
EVENT_OVERHEAD_CHARS = 64
# Nesting depth of a written document; anything deeper becomes DEPTH_MARKER.
MAX_DEPTH = 100
DEPTH_MARKER = f"[nested deeper than {MAX_DEPTH} levels: not kept]"
# Integers are written as JSON numbers up to 64 bits, as decimal strings beyond, and past
# MAX_INT_BITS (Python refuses to print more than 4,300 digits) as a description.
JSON_INT_BITS = 63
MAX_INT_BITS = 10_000
FINDINGS_CUT_CHECK = "report.findings-cut"

_SURROGATES = re.compile("[\ud800-\udfff]")


# The longest one-line quote (an error a client raised, an upstream's message).
ONE_LINE_CHARS = 300


def clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """`text` cut to `limit` characters, saying how many more there were."""
    if len(text) <= limit:
        return text
    marker = f"… [{len(text) - limit} more characters not kept]"
    return text[: limit - len(marker)] + marker


def one_line(text: str, limit: int = ONE_LINE_CHARS) -> str:
    """`text` on one line (whitespace runs made one space), cut to `limit` characters with an ellipsis."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _clip_optional(text: str | None) -> str | None:
    return None if text is None else clip(text)


def _headers(headers: dict[str, str]) -> dict[str, str]:
    return {clip(name): clip(value) for name, value in headers.items()}


def _headers_size(headers: dict[str, str]) -> int:
    return sum(_written_size(name) + _written_size(value) for name, value in headers.items())


def _cut_text(text: str, limit: int) -> tuple[str, dict[str, int] | None]:
    """The text kept and, when cut, {kept_chars, dropped_chars}."""
    if len(text) <= limit:
        return text, None
    return text[:limit], {"kept_chars": limit, "dropped_chars": len(text) - limit}


def _json_text(value: Any) -> str | None:
    """The JSON text of a value, or None when it cannot be written (too deep, huge integers)."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return None


class EvidenceBudget:
    """Cuts exchanges to what the reports keep, spending one run-wide budget as it goes.

    `result` (and `exchange`) return bounded copies and leave their input alone, so a runner can
    bound each result as it is judged and the writers can bound a report again at no loss: bounds
    are idempotent.
    """

    def __init__(self, run_chars: int = RUN_BUDGET_CHARS, left: int | None = None) -> None:
        """`left`: what is left to spend, when some of the run's budget is spent already (all of it by default)."""
        self.left = run_chars if left is None else left
        self.run_chars = run_chars

    def report(self, report: RunReport) -> RunReport:
        """A copy of the report whose results keep bounded evidence; failing cases are served first."""
        order = sorted(range(len(report.results)), key=lambda i: report.results[i].outcome.value not in _GATED)
        bounded: dict[int, CaseResult] = {i: self.result(report.results[i]) for i in order}
        return replace(report, results=[bounded[i] for i in range(len(report.results))])

    def result(self, result: CaseResult) -> CaseResult:
        findings = result.findings
        if len(findings) > MAX_FINDINGS and findings[-1].check != FINDINGS_CUT_CHECK:
            more = f"{len(findings) - MAX_FINDINGS} more findings are not kept in the report"
            findings = [*findings[:MAX_FINDINGS], Finding(FINDINGS_CUT_CHECK, more, severity=Severity.NOTE)]
        findings = [replace(finding, message=clip(finding.message)) for finding in findings]
        return replace(
            result,
            reason=clip(result.reason),
            title=clip(result.title),
            findings=findings,
            exchanges=[self.exchange(exchange) for exchange in result.exchanges],
        )

    def exchange(self, exchange: Exchange) -> Exchange:
        cut: dict[str, Any] = dict(exchange.evidence_cut or {})
        request = self._request(exchange.request, cut)
        response = exchange.response
        if response is not None:
            response = self._response(response, cut)
        bounded = Exchange(request, response, _clip_optional(exchange.error), exchange.step, cut or None)
        cost = _cost(bounded)
        if cost > self.left and response is not None and (response.text or response.events or response.json):
            cut = {key: value for key, value in cut.items() if key not in _RESPONSE_PARTS}
            cut["budget"] = f"the run's evidence budget of {self.run_chars // MIB} MiB was spent"
            bounded.response = replace(response, text="", json=None, events=[] if response.events is not None else None)
            bounded.evidence_cut = cut
            cost = _cost(bounded)
        self.left = max(0, self.left - cost)
        return bounded

    @staticmethod
    def _request(request: Request, cut: dict[str, Any]) -> Request:
        raw_body = request.raw_body
        body = request.body
        if raw_body is not None:
            raw_body, cut_body = _cut_text(raw_body, MAX_BODY_CHARS)
        else:
            text = _json_text(body) if body is not None else None
            cut_body = None
            if text is not None and len(text) > MAX_BODY_CHARS:
                body = None
                raw_body, cut_body = _cut_text(text, MAX_BODY_CHARS)
        if cut_body:
            cut["request_body"] = cut_body
        return replace(request, headers=_headers(request.headers), body=body, raw_body=raw_body)

    @staticmethod
    def _response(response: Response, cut: dict[str, Any]) -> Response:
        text, cut_body = _cut_text(response.text, MAX_BODY_CHARS)
        json_body = response.json if cut_body is None else None
        if cut_body:
            cut["body"] = cut_body
        events = response.events
        if events is not None:
            events = _bounded_events(events, cut)
        return replace(
            response,
            headers=_headers(response.headers),
            text=text,
            json=json_body,
            events=events,
            truncated=_clip_optional(response.truncated),
        )


_GATED = ("failed", "error")
# The parts of `evidence_cut` that describe the response's body and events.
_RESPONSE_PARTS = ("body", "events", "event_data")


def _bounded_events(events: list[SSEEvent], cut: dict[str, Any]) -> list[SSEEvent]:
    """The first EVENTS_HEAD and last EVENTS_TAIL events, their data within MAX_BODY_CHARS (half each)."""
    head_count = min(len(events), EVENTS_HEAD)
    tail_count = min(len(events) - head_count, EVENTS_TAIL)
    if head_count + tail_count < len(events):
        cut["events"] = {"kept": head_count + tail_count, "dropped": len(events) - head_count - tail_count}
        cut["events"]["after"] = head_count
    data_cut = {"events": 0, "dropped_chars": 0}
    half = MAX_BODY_CHARS // 2
    head = _data_within(events[:head_count], half, data_cut)
    tail = _data_within(events[len(events) - tail_count :][::-1], half, data_cut)[::-1]
    if data_cut["events"]:
        cut["event_data"] = data_cut
    return head + tail


def _data_within(events: list[SSEEvent], budget: int, data_cut: dict[str, int]) -> list[SSEEvent]:
    kept = []
    for event in events:
        data = event.data
        if len(data) > budget:
            data_cut["events"] += 1
            data_cut["dropped_chars"] += len(data) - budget
            data = data[:budget]
        budget -= len(data)
        if data is event.data and _clip_optional(event.event) == event.event and _clip_optional(event.id) == event.id:
            kept.append(event)
            continue
        whole = data is event.data
        kept.append(
            replace(
                event,
                event=_clip_optional(event.event),
                id=_clip_optional(event.id),
                data=data,
                json=event.json if whole else None,
                json_error=event.json_error if whole else "its data was cut in the report",
            )
        )
    return kept


def _cost(exchange: Exchange) -> int:
    """What an exchange spends of the run's budget: its body text, event data and headers as written
    in JSON (a control character costs its six-character escape), in characters."""
    request = exchange.request
    cost = _headers_size(request.headers) + _written_size(request.raw_body or "")
    if request.raw_body is None and request.body is not None:
        cost += len(_json_text(request.body) or "")
    response = exchange.response
    if response is not None:
        cost += _headers_size(response.headers) + _written_size(response.text)
        cost += sum(_written_size(event.data) + EVENT_OVERHEAD_CHARS for event in response.events or ())
    return cost


# What json.dumps(ensure_ascii=False) escapes: a text without any is written as it stands.
_ESCAPED = re.compile(r'[\x00-\x1f"\\\ud800-\udfff]')


def _written_size(text: str) -> int:
    if not _ESCAPED.search(text):
        return len(text)
    return len(json.dumps(text, ensure_ascii=False)) - 2


def strict_json(value: Any, redactor: Redactor | None = None, _depth: int = 0) -> Any:
    """`value` as strict JSON (no NaN, no huge numbers, bounded depth, string keys), every string redacted."""
    if isinstance(value, str):
        return _string(value, redactor)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return _integer(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value).replace("inf", "Infinity").replace("nan", "NaN")
    if _depth >= MAX_DEPTH:
        return DEPTH_MARKER
    if isinstance(value, dict):
        return {_key(key, redactor): strict_json(item, redactor, _depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item, redactor, _depth + 1) for item in value]
    return _string(str(value), redactor)


def _string(text: str, redactor: Redactor | None) -> str:
    text = text[: MAX_BODY_CHARS + MAX_TEXT_CHARS]
    if not text.isascii():  # a surrogate is not ASCII: most strings need no search for one
        text = _SURROGATES.sub("\ufffd", text)
    return redactor.text(text) if redactor is not None else text


def _integer(value: int) -> int | str:
    bits = value.bit_length()
    if bits <= JSON_INT_BITS:
        return value
    if bits <= MAX_INT_BITS:
        return str(value)
    return f"[an integer of about {int(bits * math.log10(2)) + 1} digits: not kept]"


def _key(key: Any, redactor: Redactor | None) -> str:
    if isinstance(key, str):
        return _string(key, redactor)
    value = strict_json(key)
    return value if isinstance(value, str) else json.dumps(value)


def number(value: int) -> str:
    """An integer with thousands separators, or its description when it is too large to print."""
    return f"{value:,}" if value.bit_length() <= MAX_INT_BITS else str(_integer(value))


def result_text(result: CaseResult, redactor: Redactor | None = None) -> str:
    """One result, already bounded, as report.json holds it: strict JSON, redacted (see report_document)."""
    return json.dumps(strict_json(result.to_dict(), redactor), ensure_ascii=False, allow_nan=False)


def report_document(report: RunReport, redactor: Redactor | None = None) -> dict[str, Any]:
    """report.json's document: the report's bounded evidence as strict JSON, redacted."""
    return strict_json(EvidenceBudget().report(report).to_dict(), redactor)


def describe_cut(cut: dict[str, Any] | None) -> list[str]:
    """What an exchange's `evidence_cut` says, as sentences for the reports and recheck."""
    if not isinstance(cut, dict):
        return []
    sentences = []
    for part, label in (("request_body", "request body"), ("body", "response body")):
        if isinstance(cut.get(part), dict):
            kept, dropped = cut[part].get("kept_chars"), cut[part].get("dropped_chars")
            sentences.append(f"{label}: {_count(kept)} characters kept, {_count(dropped)} more not kept")
    events = cut.get("events")
    if isinstance(events, dict):
        sentences.append(
            f"stream: {_count(events.get('dropped'))} events not kept between the first {_count(events.get('after'))}"
            f" and the last {_count(_int(events.get('kept')) - _int(events.get('after')))}"
        )
    data = cut.get("event_data")
    if isinstance(data, dict):
        sentences.append(
            f"stream: the data of {_count(data.get('events'))} events cut"
            f" ({_count(data.get('dropped_chars'))} characters not kept)"
        )
    if cut.get("budget"):
        sentences.append(f"body and events not kept: {cut['budget']}")
    return sentences


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _count(value: Any) -> str:
    return number(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)
