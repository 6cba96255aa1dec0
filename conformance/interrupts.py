"""SIGINT and SIGTERM during a run: the first stops it (the partial report is still written), the
second exits at once. Exit codes follow the shell's convention, 128 + the signal number."""

from __future__ import annotations

import asyncio
import os
import signal
from types import FrameType, TracebackType

from conformance.runner import Stop

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupts:
    """Catches SIGINT and SIGTERM while in its `with` block and turns the first into `stop.request`.

    The handler runs between two bytecodes of the main thread, possibly inside the event loop's own
    code, so it hands the stop to the loop (`attach` it once running) instead of cancelling there.
    """

    def __init__(self, stop: Stop) -> None:
        self.stop = stop
        self.received: signal.Signals | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[signal.Signals, object] = {}

    def __enter__(self) -> Interrupts:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in EXIT_CODES}
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the run goes on in: later signals stop it from inside the loop."""
        self._loop = loop

    @property
    def exit_code(self) -> int | None:
        """130 after SIGINT, 143 after SIGTERM, None when no signal came."""
        return EXIT_CODES[self.received] if self.received is not None else None

    def _handle(self, number: int, frame: FrameType | None) -> None:
        sig = signal.Signals(number)
        if self.received is not None:
            os.write(2, f"conformance: {sig.name} again: exiting at once\n".encode())
            os._exit(EXIT_CODES[sig])
        self.received = sig
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.stop.request, sig.name)
        else:
            self.stop.request(sig.name)
