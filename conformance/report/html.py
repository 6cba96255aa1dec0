"""report.html: one self-contained page (inline CSS and JS, nothing fetched) to read a run.

Exchange bodies, headers and even finding messages come from the endpoint under test, so they are
untrusted: the template autoescapes everything, and the page carries a Content-Security-Policy
that allows only its own inline script (by hash) and loads nothing from anywhere.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import markupsafe

from conformance.curl import auth_style, curl_lines
from conformance.impact.names import client_title
from conformance.impact.tally import summary_lines
from conformance.model import CaseResult, Exchange, Outcome, Response, RunReport, SSEEvent, own_docs_line
from conformance.private_cache import private_cache_dir
from conformance.report.evidence import describe_cut, number
from conformance.report.json_report import headline, parse_timestamp, run_seconds
from conformance.report.junit import xml_text

if TYPE_CHECKING:
    import jinja2

# Characters of one body (or of one stream's event data, all events together) put on the page.
# Beyond this a browser struggles; report.json keeps the whole evidence the run kept.
DISPLAY_LIMIT = 200_000

_GATED = (Outcome.FAILED, Outcome.ERROR)
# Control characters but tab and line ends, and DEL, as the symbols Unicode draws them with (same length):
# a body of "\x00" is then a visible ␀, not an empty box.
_CONTROL_PICTURES = {code: 0x2400 + code for code in range(0x20) if chr(code) not in "\t\n\r"} | {0x7F: 0x2421}


@dataclass
class Shown:
    """A piece of text as displayed: possibly cut to the display limit, with its full length."""

    text: str
    total: int

    @property
    def truncated(self) -> bool:
        return len(self.text) < self.total

    @classmethod
    def of(cls, text: str, limit: int = DISPLAY_LIMIT) -> Shown:
        """`text` cut to `limit`, its control characters shown as their Unicode pictures (a NUL as ␀)."""
        return cls(text[:limit].translate(_CONTROL_PICTURES), len(text))


@dataclass
class EventView:
    index: int
    t: float
    event: str | None
    data: Shown
    json_error: str | None


@dataclass
class ResponseView:
    status: int
    phrase: str
    headers: dict[str, str]
    elapsed: float
    first_byte: float | None
    truncated: str | None
    body: Shown | None = None
    events: list[EventView] | None = None
    hidden_events: int = 0


@dataclass
class ExchangeView:
    step: int
    method: str
    url: str
    headers: dict[str, str]
    body: Shown | None
    response: ResponseView | None
    error: str | None
    # What the reports did not keep of this exchange (conformance.report.evidence), as sentences.
    cut: list[str] = field(default_factory=list)
    # The request as a curl command, the key taken from $ANTHROPIC_API_KEY.
    curl: str = ""


@dataclass
class CaseView:
    result: CaseResult
    headline: str
    exchanges: list[ExchangeView] = field(default_factory=list)

    @property
    def search_text(self) -> str:
        """What the page's text filter matches against."""
        return " ".join((self.result.id, self.result.feature, self.result.title)).lower()


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _events(events: list[SSEEvent], cut: dict[str, Any]) -> tuple[list[EventView], int]:
    """The events to display, within one shared display budget, and how many did not fit.

    Each keeps its index in the stream as received, also past events the reports did not keep.
    """
    gap = cut.get("events") if isinstance(cut.get("events"), dict) else {}
    after, dropped = gap.get("after", len(events)), gap.get("dropped", 0)
    budget = DISPLAY_LIMIT
    shown: list[EventView] = []
    for index, event in enumerate(events):
        if budget <= 0:
            return shown, len(events) - index
        data = Shown.of(event.data, budget)
        budget -= len(data.text)
        number_in_stream = index if index < after else index + dropped
        shown.append(EventView(number_in_stream, event.t, event.event, data, event.json_error))
    return shown, 0


def _response_view(response: Response, cut: dict[str, Any]) -> ResponseView:
    try:
        phrase = http.HTTPStatus(response.status).phrase
    except ValueError:
        phrase = ""
    view = ResponseView(
        status=response.status,
        phrase=phrase,
        headers=response.headers,
        elapsed=response.elapsed,
        first_byte=response.first_byte,
        truncated=response.truncated,
    )
    if response.events is not None:
        view.events, view.hidden_events = _events(response.events, cut)
    elif response.json is not None:
        view.body = Shown.of(_pretty(response.json))
    elif response.text:
        view.body = Shown.of(response.text)
    return view


def _exchange_view(exchange: Exchange) -> ExchangeView:
    request = exchange.request
    if request.raw_body is not None:
        body: Shown | None = Shown.of(request.raw_body)
    elif request.body is not None:
        body = Shown.of(_pretty(request.body))
    else:
        body = None
    return ExchangeView(
        step=exchange.step,
        method=request.method,
        url=request.url,
        headers=request.headers,
        body=body,
        response=_response_view(exchange.response, exchange.evidence_cut or {}) if exchange.response else None,
        error=exchange.error,
        cut=describe_cut(exchange.evidence_cut),
        curl="\n".join(curl_lines(request, auth_style(request.headers))),
    )


def _case_view(result: CaseResult) -> CaseView:
    return CaseView(
        result=result,
        headline=headline(result),
        exchanges=[_exchange_view(exchange) for exchange in result.exchanges],
    )


def _ordered(results: list[CaseResult]) -> list[CaseResult]:
    """Failed and error cases first, then the rest; each group by id."""
    return sorted(results, key=lambda r: (r.outcome not in _GATED, r.id))


def _csp_hash(script: str) -> markupsafe.Markup:
    """The CSP source expression allowing exactly this inline script (base64 never needs escaping)."""
    digest = hashlib.sha256(str(script).encode("utf-8")).digest()
    return markupsafe.Markup("'sha256-" + base64.b64encode(digest).decode("ascii") + "'")


def _seconds(value: float) -> str:
    if value >= 60:
        minutes, seconds = divmod(value, 60)
        return f"{int(minutes)} min {seconds:.0f} s"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def _timestamp(value: str) -> str:
    parsed: datetime | None = parse_timestamp(value)
    if parsed is None:
        return value
    return parsed.strftime("%Y-%m-%d %H:%M:%S") + (f" {parsed.tzname()}" if parsed.tzinfo else "")


def _printable(value: Any) -> Any:
    """Every value put on a page loses the control characters no HTML (or XML) document may hold."""
    return xml_text(value) if isinstance(value, str) and not isinstance(value, markupsafe.Markup) else value


@functools.cache
def _environment() -> jinja2.Environment:
    """The templates' environment, made once per process (jinja2 keeps the compiled templates in it).

    jinja2 is imported here, when a page is first rendered: the command line imports the report
    writers to declare its flags, which needs neither jinja2 nor rich."""
    import jinja2

    # Autoescape is forced on: select_autoescape would not recognise the ".html.j2" name.
    env = jinja2.Environment(
        finalize=_printable,
        loader=jinja2.PackageLoader("conformance.report", "templates"),
        bytecode_cache=_bytecode_cache(),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["csp_hash"] = _csp_hash
    env.filters["seconds"] = _seconds
    env.filters["timestamp"] = _timestamp
    env.filters["number"] = number
    env.filters["client"] = client_title
    return env


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """The templates compiled once per user, not once per run: jinja2's cache in conformance.private_cache's
    folder, keyed by each template's source. A cache that cannot be read or written is no cache; it never
    fails a report."""
    import jinja2

    class QuietCache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except Exception:  # a damaged entry: compile the template again
                bucket.reset()

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            with contextlib.suppress(OSError):  # a full disk, the folder removed meanwhile
                super().dump_bytecode(bucket)

    folder = private_cache_dir()
    return QuietCache(str(folder)) if folder is not None else None


def render_html(report: RunReport) -> str:
    """The report.html document as text."""
    return "".join(stream_html(report))


def stream_html(report: RunReport) -> Iterator[str]:
    """The report.html document in pieces, to be written as it is rendered."""
    from conformance.report.console import generated_lines  # here: it imports rich, which declaring flags needs not

    summary = report.summary()
    total = len(report.results)
    failing = summary[Outcome.FAILED.value] + summary[Outcome.ERROR.value]
    template = _environment().get_template("report.html.j2")
    return template.generate(
        report=report,
        target=report.target,
        summary=summary,
        total=total,
        failing=failing,
        outcomes=[(outcome.value, summary[outcome.value]) for outcome in Outcome],
        duration=run_seconds(report),
        cases=[_case_view(result) for result in _ordered(report.results)],
        generated=generated_lines(report),
        impact=summary_lines(report.results),
        own_docs=own_docs_line(report.target.provider, report.results),
    )
