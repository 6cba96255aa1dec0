"""What a run shows while its cases are in flight: a live display on an interactive terminal, the plain
heartbeat lines everywhere else (CI logs, pipes, tests).

The live display holds the cases done of the total with a bar, the passed, failed and error counts so far
and the cases running with how long each has been. It is transient: it draws below the per-case lines,
which keep printing above it, and is erased when the run ends (SIGINT, SIGTERM and an error included), so
the summary prints after it as it does without one.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

from conformance.cli.heartbeat import Heartbeat
from conformance.model import CaseResult, Outcome

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from conformance.cases import Case
    from conformance.report.console import ConsoleReporter

# Cases listed as running; more are summed up in one line, so the display stays a few lines high.
SHOWN_RUNNING = 8
REFRESHES_PER_SECOND = 2
_ALWAYS_COUNTED = (Outcome.PASSED, Outcome.FAILED, Outcome.ERROR)


def interactive(stream: TextIO) -> bool:
    """A terminal someone watches: a tty whose TERM is not `dumb` (colours are rich's own business)."""
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def run_progress(reporter: ConsoleReporter, cases: Sequence[Case]) -> Heartbeat | LiveProgress:
    """The display of a run of `cases`, whose finished cases `reporter` prints."""
    if interactive(sys.stdout):
        return LiveProgress(reporter.case_done, len(cases), reporter.console)
    from conformance.cli.common import print_lines

    return Heartbeat(reporter.case_done, len(cases), lambda line: print_lines([line]))


class LiveProgress:
    """Wraps the per-case callback, as Heartbeat does; from `with` to its end, a live display on `console`.

    `console` must be the one the per-case lines are printed on: rich draws what that console prints above
    the display, but another console writes straight to the terminal, through the display.

    The runner tells which cases run: `case_started` as a case takes a slot, `case_done` as it ends.
    """

    def __init__(
        self,
        case_done: Callable[[CaseResult], None],
        total: int,
        console: Console,
    ) -> None:
        self._case_done = case_done
        self._total = total
        self._console = console
        self._lock = threading.Lock()
        self._counts: Counter[Outcome] = Counter()
        self._running: dict[str, float] = {}  # case id -> when it started, in the order they started
        self._started = time.monotonic()
        self._live: Live | None = None

    def case_done(self, result: CaseResult) -> None:
        with self._lock:
            self._counts[result.outcome] += 1
            self._running.pop(result.id, None)
        if self._live is not None:
            self._live.refresh()  # the case's line, printed next, is drawn above the new counts, not stale ones
        self._case_done(result)

    def case_started(self, case_id: str) -> None:
        with self._lock:
            self._running[case_id] = time.monotonic()
        if self._live is not None:
            self._live.refresh()  # a short case may end before the next timed refresh: show it started

    def render(self, now: float | None = None) -> RenderableType:
        """The display at `now`: a bar with the counts, then the cases running, longest first."""
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        from conformance.report.console import STYLES, _safe

        now = time.monotonic() if now is None else now
        with self._lock:
            counts = Counter(self._counts)
            running = list(self._running.items())
        done, total = sum(counts.values()), self._total
        head = Table.grid(padding=(0, 1))
        status = Text(f"{done}/{total} cases")
        for outcome in Outcome:
            if counts[outcome] or outcome in _ALWAYS_COUNTED:
                status.append("  ")
                status.append(f"{counts[outcome]} {outcome.value}", style=STYLES[outcome] if counts[outcome] else "dim")
        status.append(f"  {now - self._started:.0f}s", style="dim")
        head.add_row(ProgressBar(total=max(total, 1), completed=done, width=30), status)
        lines: list[RenderableType] = [head]
        for case_id, started in running[:SHOWN_RUNNING]:
            lines.append(Text.assemble(("  running ", "dim"), _safe(case_id), (f"  {now - started:.0f}s", "dim")))
        if len(running) > SHOWN_RUNNING:
            lines.append(Text(f"  ... and {len(running) - SHOWN_RUNNING} more running", style="dim"))
        return Group(*lines)

    def __enter__(self) -> LiveProgress:
        from rich.live import Live

        self._started = time.monotonic()
        self._live = Live(
            console=self._console,
            get_renderable=self.render,
            refresh_per_second=REFRESHES_PER_SECOND,
            transient=True,
        )
        self._live.start(refresh=True)
        # Live hides the cursor until it stops; a second Ctrl+C exits at once, leaving no chance to show it again.
        self._console.show_cursor(True)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
