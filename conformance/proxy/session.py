"""A proxy session: captures come in from the relay, are judged in a process of their own (never on
the relay's path, nor holding its interpreter), shown live, and kept in OUT/.

Each capture is handed to the judging process as it is submitted, numbered in order (see
JudgeProcess: the relay's thread sends it, no other thread is woken); the judging process shows
each verdict on the console and writes it, in order, to the files below.

While traffic flows, each judged exchange is appended to OUT/results.jsonl: one strict-JSON line,
redacted and bounded, so that the cost of a long session does not grow with its length. The whole
results go to a spool file (OUT/.judged.spool), from which the big files (report.json, junit.xml,
report.html, cassette.json: every exchange, redacted, for `conformance recheck OUT` and
`conformance cases from-capture OUT`) are written on close, and whenever asked (`request_flush()`,
which the proxy command calls on SIGUSR1, or every `flush_every` seconds when set), by a thread that
only wakes for that; the spool is removed on close.

Each judged result keeps only what the reports will keep (conformance.report.evidence: bounded
bodies and events, one evidence budget for the session), for at most `max_exchanges` exchanges;
later ones are relayed and counted. Nothing one exchange holds can stop the session: an exception
while judging it makes that exchange an `error` (kept as plain text) and the judging goes on; the
files are strict JSON whatever the traffic held, and a writer that fails does not keep the other
files from being written.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from conformance import __version__
from conformance.cassette import CASSETTE_FILE, write_cassette
from conformance.model import SUMMARY_KEYS, RunReport, TargetInfo
from conformance.proxy.defaults import DEFAULT_MAX_EXCHANGES, RESULTS_FILE, SPOOL_FILE
from conformance.proxy.judge_process import JudgeProcess, Note, SessionFiles, read_spool
from conformance.proxy.judging import LINE_TEXT_CHARS
from conformance.proxy.recording import Capture
from conformance.redact import Redactor
from conformance.report import write_reports_from_text
from conformance.report.evidence import clip, strict_json
from conformance.report.json_report import assembled_json_text
from conformance.runner import now_iso
from conformance.transport import Limits

if TYPE_CHECKING:
    from conformance.specs.profiles import ProviderProfile

# Bytes of captures waiting for the judge; past this the judge has fallen behind and an exchange
# is relayed and counted, not judged.
MAX_PENDING_BYTES = 256 * 1024 * 1024
# Distinct model names named in the report's target.
MAX_MODELS = 20
_STOP = object()
_FLUSH = object()


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
        console: bool = False,
        verbose: bool = False,
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
        self.max_exchanges = max_exchanges
        self.flush_every = flush_every
        self.public_headers = frozenset(name.lower() for name in public_headers)
        self.max_pending_bytes = max_pending_bytes
        self.started_at = now_iso()
        self._accepted = 0
        self._unrecorded = 0
        self._behind = 0
        self._pending_bytes = 0
        self._notes: list[Note] = []
        self._models: list[str] = []
        self._planned_output_tokens = 0
        # Every credential the client sent so far; exchanges are redacted with it before they are judged,
        # and every file and console line again on the way out.
        self.redactor = Redactor(public_headers=self.public_headers)
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()  # put() is reentrant: safe from a signal handler
        self._writer = threading.Thread(target=self._write_when_asked, name="conformance-proxy-reports", daemon=True)
        files = SessionFiles(self.out / SPOOL_FILE, self.out / RESULTS_FILE, console=console, verbose=verbose)
        self._judge_process = JudgeProcess(self.limits, profile, self.redactor, files, on_judged=self._judged)

    def start(self) -> ProxySession:
        self.out.mkdir(parents=True, exist_ok=True)
        for name in (RESULTS_FILE, SPOOL_FILE):
            (self.out / name).write_bytes(b"")  # written by the judge from now on
        try:
            self._judge_process.start()
            self._writer.start()
        except BaseException:
            self._judge_process.close()
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
            self._judge_process.post(self._accepted, capture)  # under the lock: numbers reach the judge in order

    def request_flush(self) -> None:
        """Write the report files as soon as the exchanges queued so far are judged (safe from a signal handler)."""
        self._queue.put(_FLUSH)

    def close(self) -> tuple[RunReport, dict[str, Path]]:
        """Judge what is still queued, write the report files; the whole report and the files written."""
        try:
            if self._writer.is_alive():
                self._queue.put(_STOP)
                self._writer.join()
        finally:
            self._judge_process.close()
        try:
            return self.write()
        finally:
            (self.out / SPOOL_FILE).unlink(missing_ok=True)

    def tally(self) -> Tally:
        with self._lock:
            notes = list(self._notes)
            unrecorded, behind = self._unrecorded, self._behind
        return Tally(
            exchanges=len(notes) + unrecorded + behind,
            client_visible=sum(note.client_visible for note in notes),
            not_judged=sum(note.not_judged for note in notes) + behind,
            unrecorded=unrecorded,
            behind=behind,
        )

    def report_text(self) -> str:
        """report.json's text for what was judged so far, assembled from the results as the judge made them
        strict (conformance.report.json_report.assembled_json_text), each redacted again with every
        credential the session learnt since."""
        records, _ = read_spool(self.out / SPOOL_FILE, end=self._judge_process.spool_size)
        summary = dict.fromkeys(SUMMARY_KEYS, 0)
        for *_, counts in records:
            for key, count in counts.items():
                summary[key] += count
        header = RunReport(
            target=TargetInfo(base_url=self.upstream, provider=self.provider, model=", ".join(self._models)),
            started_at=self.started_at,
            finished_at=now_iso(),
            tool_version=__version__,
            planned_requests=len(records),
            planned_max_output_tokens=self._planned_output_tokens,
        ).to_dict()
        header["summary"] = summary
        results = [self.redactor.json_text(text) for text, *_ in records]
        return assembled_json_text(strict_json(header, self.redactor), results)

    def write(self) -> tuple[RunReport, dict[str, Path]]:
        """Write report.json (first), junit.xml, report.html and cassette.json from what was judged so far.

        A file that cannot be written is named on stderr; the others are written all the same.
        """
        text = self.report_text()
        paths: dict[str, Path] = {}
        report: RunReport | None = None
        try:
            written, report = write_reports_from_text(text, self.out)
            paths.update(written)
        except Exception as exc:  # a full disk, or a writer tripped by an exchange: the cassette still goes
            self._cannot_write("report.json, junit.xml and report.html", exc)
        if report is None:
            report = RunReport.from_dict(json.loads(text))
        try:
            paths["cassette"] = write_cassette(report, [], self.out, self.redactor)
        except Exception as exc:
            self._cannot_write(CASSETTE_FILE, exc)
        paths["results"] = self.out / RESULTS_FILE
        return report, paths

    def _cannot_write(self, what: str, error: Exception) -> None:
        print(f"conformance proxy: cannot write {what} in {self.out}: {type(error).__name__}: {error}", file=sys.stderr)

    def _write_when_asked(self) -> None:
        """Write the reports on request_flush(), or every `flush_every` seconds while exchanges come."""
        last_write, written = time.monotonic(), 0
        while True:
            try:
                item = self._queue.get(timeout=self.flush_every)
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            due = self.flush_every is not None and time.monotonic() - last_write >= self.flush_every
            if item is _FLUSH or (due and self._accepted != written):
                try:
                    written = self._accepted
                    self._judge_process.sync()
                    self.write()
                except Exception as exc:  # the disk failed us: say so, keep judging
                    print(f"conformance proxy: {type(exc).__name__}: {exc}", file=sys.stderr)
                last_write = time.monotonic()

    def _judged(self, notes: list[Note], captures: list[Capture]) -> None:
        """The judge acknowledged these (on its own thread)."""
        # The proxy learns each credential as its exchange is judged: the files it writes (after a sync) are
        # redacted with it too.
        for capture in captures:
            self.redactor.add(*capture.credentials(self.public_headers))
        with self._lock:
            self._pending_bytes -= sum(capture.kept_bytes for capture in captures)
            self._notes.extend(notes)
        for note in notes:
            self._note_request(note.model, note.max_tokens)

    def _note_request(self, model: str | None, max_tokens: int | None) -> None:
        if model is not None and model not in self._models and len(self._models) < MAX_MODELS:
            self._models.append(clip(model, LINE_TEXT_CHARS))
        if max_tokens is not None and 0 < max_tokens < 10**9:
            self._planned_output_tokens += max_tokens
