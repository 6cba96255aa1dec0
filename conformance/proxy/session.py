"""A proxy session: captures come in from the relay, are judged on a worker thread (never on the
relay's path), shown live, and kept in OUT/ as a normal run's reports plus a cassette.

OUT/report.json, junit.xml and report.html are rewritten at most every `flush_interval` seconds
while exchanges arrive, and once more on close; OUT/cassette.json holds every exchange (redacted)
for `conformance recheck OUT` and `conformance cases from-capture OUT`.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from conformance import __version__
from conformance.cassette import write_cassette
from conformance.model import CaseResult, RunReport, TargetInfo
from conformance.proxy.judging import judge_recorded
from conformance.proxy.recording import Capture, to_exchange
from conformance.redact import Redactor
from conformance.report import write_reports
from conformance.runner import now_iso
from conformance.transport import Limits

if TYPE_CHECKING:
    from conformance.report.console import ConsoleReporter
    from conformance.specs.profiles import ProviderProfile

DEFAULT_MAX_EXCHANGES = 2000
DEFAULT_FLUSH_INTERVAL = 2.0
_STOP = object()


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
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    ) -> None:
        self.upstream = upstream
        self.out = Path(out)
        self.provider = provider
        self.profile = profile
        self.limits = limits or Limits()
        self.reporter = reporter
        self.max_exchanges = max_exchanges
        self.flush_interval = flush_interval
        self.started_at = now_iso()
        # Relayed but not recorded, once max_exchanges were: counted for the summary.
        self.unrecorded = 0
        self._accepted = 0
        self._results: list[CaseResult] = []
        self._models: list[str] = []
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._queue: queue.Queue[object] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="conformance-proxy-judge", daemon=True)

    def start(self) -> ProxySession:
        self.out.mkdir(parents=True, exist_ok=True)
        self._worker.start()
        return self

    def submit(self, capture: Capture) -> None:
        """Queue a finished exchange for judging; past `max_exchanges` it is only counted."""
        if self._accepted >= self.max_exchanges:
            self.unrecorded += 1
            return
        self._accepted += 1
        self._queue.put(capture)

    def close(self) -> tuple[RunReport, dict[str, Path]]:
        """Judge what is still queued, write the reports a last time; the whole report and its files."""
        if self._worker.is_alive():
            self._queue.put(_STOP)
            self._worker.join()
        return self.write()

    @property
    def results(self) -> list[CaseResult]:
        with self._lock:
            return list(self._results)

    def report(self) -> RunReport:
        results = self.results
        return RunReport(
            target=TargetInfo(base_url=self.upstream, provider=self.provider, model=", ".join(self._models)),
            started_at=self.started_at,
            finished_at=now_iso(),
            results=results,
            tool_version=__version__,
            planned_requests=len(results),
        )

    def write(self) -> tuple[RunReport, dict[str, Path]]:
        """Write OUT/report.json, junit.xml, report.html and cassette.json from what was judged so far."""
        report = self.report()
        paths = write_reports(report, self.out)
        paths["cassette"] = write_cassette(report, [], self.out)
        return report, paths

    def _work(self) -> None:
        dirty = False
        last_write = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=self.flush_interval)
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            if isinstance(item, Capture):
                self._judge(item)
                dirty = True
            if dirty and time.monotonic() - last_write >= self.flush_interval:
                try:
                    self.write()
                except OSError as exc:  # a full disk must not stop the judging; close() tries again
                    print(f"conformance proxy: cannot write the reports to {self.out}: {exc}", file=sys.stderr)
                dirty, last_write = False, time.monotonic()

    def _judge(self, capture: Capture) -> None:
        self._secrets.update(capture.credentials())
        recorded = to_exchange(capture, self.limits, Redactor(secrets=sorted(self._secrets)))
        body = recorded.exchange.request.body
        model = body.get("model") if isinstance(body, dict) else None
        if isinstance(model, str) and model not in self._models:
            self._models.append(model)
        with self._lock:
            result = judge_recorded(len(self._results) + 1, recorded, self.profile)
            self._results.append(result)
        if self.reporter is not None:
            self.reporter.case_done(result)
