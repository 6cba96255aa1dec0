"""A proxy session: captures come in from the relay, are judged in a process of their own (never on
the relay's path, nor holding its interpreter), shown live, and kept in OUT/.

A worker thread takes the captures in order and hands each to the judging process (see
JudgeProcess), waiting for its verdict; the verdicts are shown and written by that thread, in order.

While traffic flows, each judged exchange is appended to OUT/results.jsonl: one strict-JSON line,
redacted and bounded, so that the cost of a long session does not grow with its length. The big
files (report.json, junit.xml, report.html, cassette.json: every exchange, redacted, for
`conformance recheck OUT` and `conformance cases from-capture OUT`) are written once on close, and
whenever asked (`request_flush()`, which the proxy command calls on SIGUSR1, or every
`flush_every` seconds when set).

In memory, each judged result keeps only what the reports will keep (conformance.report.evidence:
bounded bodies and events, one evidence budget for the session), for at most `max_exchanges`
exchanges; later ones are relayed and counted. Nothing one exchange holds can stop the session: an
exception while judging it makes that exchange an `error` (kept as plain text) and the worker goes
on; the files are strict JSON whatever the traffic held, and a writer that fails does not keep the
other files from being written.
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from conformance import __version__
from conformance.cassette import CASSETTE_FILE, write_cassette
from conformance.model import CaseResult, RunReport, TargetInfo
from conformance.proxy.defaults import DEFAULT_MAX_EXCHANGES, RESULTS_FILE
from conformance.proxy.judging import (
    CLIENT_VISIBLE_CHECK,
    JUDGE_CHECK,
    ignore_interrupts,
    judge_capture,
    judge_failed,
)
from conformance.proxy.recording import Capture, raw_exchange
from conformance.redact import Redactor
from conformance.report import write_reports
from conformance.report.evidence import EvidenceBudget, clip, strict_json
from conformance.runner import now_iso
from conformance.transport import Limits

if TYPE_CHECKING:
    from conformance.report.console import ConsoleReporter
    from conformance.specs.profiles import ProviderProfile

# Bytes of captures waiting for the judge; past this the judge has fallen behind and an exchange
# is relayed and counted, not judged.
MAX_PENDING_BYTES = 256 * 1024 * 1024
# Distinct model names named in the report's target.
MAX_MODELS = 20
# Bounds of one results.jsonl line.
LINE_TEXT_CHARS = 1000
LINE_FINDINGS = 20
_STOP = object()
_FLUSH = object()
T = TypeVar("T")


@dataclass(frozen=True)
class Tally:
    """What a session saw, for its summary line and exit code."""

    exchanges: int = 0
    client_visible: int = 0
    not_judged: int = 0
    unrecorded: int = 0
    behind: int = 0

    def line(self) -> str:
        """ "8 exchanges, 4 answered the client with an error, ...": the summary on stop."""
        parts = [f"{self.exchanges} exchanges", f"{self.client_visible} answered the client with an error"]
        if self.not_judged:
            parts.append(f"{self.not_judged} could not be judged")
        if self.behind:
            parts.append(f"{self.behind} relayed but not judged (the judge fell behind)")
        if self.unrecorded:
            parts.append(f"{self.unrecorded} past --max-exchanges relayed, not recorded")
        return ", ".join(parts)


class JudgeProcess:
    """Runs the judge in one child process, so that the relay never waits on it.

    In one process, the relay's loop would wait for the interpreter while an exchange is judged
    (about 1 ms for a JSON answer, 10 to 20 ms for a long stream): latency and throughput lost for
    every client. The thread that calls `call` only waits for the child, holding nothing.

    Whatever fails in the child fails that one call: `call` raises it (the function's exception, a
    result that cannot be pickled, BrokenProcessPool when the child died). A child that dies is
    replaced once; when the replacement dies too, the calls run in this process from then on, as
    stderr says once.
    """

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._replacements = 1

    def start(self) -> None:
        self._pool = _judging_pool()

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)`, in the child (in this process once two children died)."""
        pool = self._pool
        if pool is None:
            return function(*args)
        try:
            return pool.submit(function, *args).result()
        except BrokenProcessPool:
            pool.shutdown(wait=True)
            self._pool = None
            if self._replacements:
                self._replacements -= 1
                self._pool = _judging_pool()
            else:
                print(
                    "conformance proxy: the judging process died twice; judging goes on in the proxy's own process",
                    file=sys.stderr,
                )
            raise

    def close(self) -> None:
        """Wait for the call under way, and stop the child."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=False)


def _judging_pool() -> ProcessPoolExecutor:
    # Spawned, not forked: a fork would copy a process whose threads (the relay's loop, the judge's
    # worker) hold locks mid-flight. The child is started on the first call.
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=ignore_interrupts)


class ProxySession:
    """Judges and records what the relay passes on. `submit` is the relay's sink: it never blocks."""

    def __init__(
        self,
        upstream: str,
        out: Path,
        *,
        provider: str = "anthropic",
        profile: ProviderProfile | None = None,
        limits: Limits | None = None,
        reporter: ConsoleReporter | None = None,
        max_exchanges: int = DEFAULT_MAX_EXCHANGES,
        flush_every: float | None = None,
        public_headers: frozenset[str] = frozenset(),
        max_pending_bytes: int = MAX_PENDING_BYTES,
    ) -> None:
        self.upstream = upstream
        self.out = Path(out)
        self.provider = provider
        self.profile = profile
        self.limits = limits or Limits()
        self.reporter = reporter
        self.max_exchanges = max_exchanges
        self.flush_every = flush_every
        self.public_headers = frozenset(name.lower() for name in public_headers)
        self.max_pending_bytes = max_pending_bytes
        self.started_at = now_iso()
        self._accepted = 0
        self._unrecorded = 0
        self._behind = 0
        self._pending_bytes = 0
        self._results: list[CaseResult] = []
        self._budget = EvidenceBudget()
        self._models: list[str] = []
        self._planned_output_tokens = 0
        # Every credential the client sent so far; exchanges are redacted with it before they are judged,
        # and every file and console line again on the way out.
        self.redactor = Redactor(public_headers=self.public_headers)
        self._lines: IO[str] | None = None
        self._lock = threading.Lock()
        self._queue: queue.Queue[object] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="conformance-proxy-judge", daemon=True)
        self._judge_process = JudgeProcess()

    def start(self) -> ProxySession:
        self.out.mkdir(parents=True, exist_ok=True)
        self._lines = (self.out / RESULTS_FILE).open("w", encoding="utf-8")
        try:
            self._judge_process.start()
            self._worker.start()
        except BaseException:
            self._judge_process.close()
            self._lines.close()
            self._lines = None
            raise
        return self

    def submit(self, capture: Capture) -> None:
        """Queue a finished exchange for judging; past `max_exchanges`, or while the judge is too far
        behind, it is only counted."""
        size = capture.kept_bytes
        with self._lock:
            if self._accepted >= self.max_exchanges:
                self._unrecorded += 1
                return
            if self._pending_bytes + size > self.max_pending_bytes:
                self._behind += 1
                return
            self._accepted += 1
            self._pending_bytes += size
        self._queue.put(capture)

    def request_flush(self) -> None:
        """Write the report files as soon as the exchanges queued so far are judged (safe from a signal handler)."""
        self._queue.put(_FLUSH)

    def close(self) -> tuple[RunReport, dict[str, Path]]:
        """Judge what is still queued, write the report files; the whole report and the files written."""
        try:
            if self._worker.is_alive():
                self._queue.put(_STOP)
                self._worker.join()
        finally:
            self._judge_process.close()
        if self._lines is not None:
            self._lines.close()
            self._lines = None
        return self.write()

    @property
    def results(self) -> list[CaseResult]:
        with self._lock:
            return list(self._results)

    def tally(self) -> Tally:
        results = self.results
        with self._lock:
            unrecorded, behind = self._unrecorded, self._behind
        return Tally(
            exchanges=len(results) + unrecorded + behind,
            client_visible=sum(1 for result in results if _has(result, CLIENT_VISIBLE_CHECK)),
            not_judged=sum(1 for result in results if _has(result, JUDGE_CHECK)) + behind,
            unrecorded=unrecorded,
            behind=behind,
        )

    def report(self) -> RunReport:
        results = self.results
        return RunReport(
            target=TargetInfo(base_url=self.upstream, provider=self.provider, model=", ".join(self._models)),
            started_at=self.started_at,
            finished_at=now_iso(),
            results=results,
            tool_version=__version__,
            planned_requests=len(results),
            planned_max_output_tokens=self._planned_output_tokens,
        )

    def write(self) -> tuple[RunReport, dict[str, Path]]:
        """Write report.json, junit.xml, report.html and cassette.json from what was judged so far.

        A file that cannot be written is named on stderr; the others are written all the same.
        """
        report = self.report()
        paths: dict[str, Path] = {}
        try:
            paths.update(write_reports(report, self.out, self.redactor))
        except Exception as exc:  # a full disk, or a writer tripped by an exchange: the cassette still goes
            self._cannot_write("report.json, junit.xml and report.html", exc)
        try:
            paths["cassette"] = write_cassette(report, [], self.out, self.redactor)
        except Exception as exc:
            self._cannot_write(CASSETTE_FILE, exc)
        paths["results"] = self.out / RESULTS_FILE
        return report, paths

    def _cannot_write(self, what: str, error: Exception) -> None:
        print(f"conformance proxy: cannot write {what} in {self.out}: {type(error).__name__}: {error}", file=sys.stderr)

    def _work(self) -> None:
        last_write = time.monotonic()
        dirty = False
        while True:
            try:
                item = self._queue.get(timeout=self.flush_every)
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            try:
                if isinstance(item, Capture):
                    self._take(item)
                    dirty = True
                due = self.flush_every is not None and dirty and time.monotonic() - last_write >= self.flush_every
                if item is _FLUSH or due:
                    self.write()
                    dirty, last_write = False, time.monotonic()
            except Exception as exc:  # the console or the disk failed us: say so, keep judging
                print(f"conformance proxy: {type(exc).__name__}: {exc}", file=sys.stderr)

    def _take(self, capture: Capture) -> None:
        with self._lock:
            self._pending_bytes -= capture.kept_bytes
            number = len(self._results) + 1
        result = self._judge(number, capture)
        with self._lock:
            self._results.append(result)
        self._append_line(result)
        if self.reporter is not None:
            self.reporter.case_done(result)

    def _judge(self, number: int, capture: Capture) -> CaseResult:
        """The redacted result of one exchange, whatever it holds.

        Only what the reports will keep is kept: bounded bodies and events, within one budget for the
        session. The judging process gets the credentials learnt so far with the capture, and gives the
        budget back spent.
        """
        redactor = self.redactor
        redactor.add(*capture.credentials(self.public_headers))
        try:
            judged = self._judge_process.call(
                judge_capture, number, capture, self.limits, redactor, self._budget, self.profile
            )
        except Exception as exc:  # RecursionError, a judging process killed...: this exchange is an error
            return self._budget.result(judge_failed(number, raw_exchange(capture, redactor), exc))
        self._budget = judged.budget
        self._note_request(judged.model, judged.max_tokens)
        return judged.result

    def _note_request(self, model: str | None, max_tokens: int | None) -> None:
        if model is not None and model not in self._models and len(self._models) < MAX_MODELS:
            self._models.append(clip(model, LINE_TEXT_CHARS))
        if max_tokens is not None and 0 < max_tokens < 10**9:
            self._planned_output_tokens += max_tokens

    def _append_line(self, result: CaseResult) -> None:
        if self._lines is None:
            return
        self._lines.write(result_line(result, self.redactor) + "\n")
        self._lines.flush()


def result_line(result: CaseResult, redactor: Redactor) -> str:
    """One results.jsonl line: the verdict on an exchange, redacted and bounded (strict JSON, ASCII, no bodies)."""
    exchange = result.exchanges[0] if result.exchanges else None
    response = exchange.response if exchange else None
    visible = next((f.message for f in result.findings if f.check == CLIENT_VISIBLE_CHECK), None)
    line = {
        "id": result.id,
        "outcome": result.outcome.value,
        "title": clip(result.title, LINE_TEXT_CHARS),
        "status": response.status if response else None,
        "client_visible": clip(visible, LINE_TEXT_CHARS) if visible else None,
        "reason": clip(result.reason, LINE_TEXT_CHARS),
        "duration": round(result.duration, 4),
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "findings": [
            {"check": f.check, "severity": f.severity.value, "message": clip(f.message, LINE_TEXT_CHARS)}
            for f in result.findings[:LINE_FINDINGS]
        ],
        "findings_total": len(result.findings),
    }
    return json.dumps(strict_json(line, redactor), allow_nan=False)


def _has(result: CaseResult, check: str) -> bool:
    return any(finding.check == check for finding in result.findings)
