"""A sign of life while cases are in flight: a plain line every few seconds in which no case finished.

A hanging target otherwise leaves the console silent for a whole timeout per case. The line goes to
the same console as the per-case lines; it is what a run shows where its output is no terminal (CI logs,
pipes): an interactive terminal gets the live display of conformance.cli.progress instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from conformance.model import CaseResult

INTERVAL = 5.0


class Heartbeat:
    """Wraps the per-case callback; from `with` to its end, says every `interval` seconds what is still running."""

    def __init__(
        self,
        case_done: Callable[[CaseResult], None],
        total: int,
        say: Callable[[str], None],
        interval: float = INTERVAL,
    ) -> None:
        self._case_done = case_done
        self._total = total
        self._say = say
        self._interval = interval
        self._done = 0
        self._started = self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="conformance-heartbeat", daemon=True)

    def case_done(self, result: CaseResult) -> None:
        self._done += 1
        self._last = time.monotonic()
        self._case_done(result)

    def line(self, now: float) -> str:
        """The status line at `now`: cases done, and how long since the last one finished."""
        waiting = now - self._last
        return (
            f"  ... {self._done} of {self._total} cases done, {self._total - self._done} still running or queued; "
            f"{waiting:.0f}s since the last finished ({now - self._started:.0f}s in all)"
        )

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            now = time.monotonic()
            if now - self._last >= self._interval and self._done < self._total:
                self._say(self.line(now))

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
