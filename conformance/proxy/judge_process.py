"""The proxy's judge, in a process of its own: the relay never waits on a judgement, nor for the
interpreter lock one holds.

The child keeps the session's judging state (limits, provider profile, the credentials learnt so
far, the evidence budget) and writes what each verdict gives as it is made: the whole result to a
spool file (read back when the reports are written), its line to results.jsonl, its line on the
console. Each capture crosses a socket as one message, sent from the relay's own thread when the
socket takes it at once; acknowledgements come back lazily, one for many verdicts. What the proxy's
process does for an exchange is thereby a copy of bytes and one send, whatever the exchange holds:
no other thread is woken, and its interpreter stays the relay's.

The child runs at a lower priority (NICENESS): on a machine whose cores are all busy, relaying
comes first and judging catches up once they are not; the session bounds how far it may fall behind.

Whatever fails in the child fails one exchange: the judge raising makes that exchange an `error` in
the child itself, and a child that dies (killed, out of memory) fails the exchange it held (the
spool tells which: the ones before it are there). A dead child is replaced once, with the state the
proxy last heard of; when the replacement dies too, the exchanges are judged in the proxy's own
process from then on, as stderr says once.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import multiprocessing
import os
import pickle
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from conformance.model import summary_counts
from conformance.proxy.judging import (
    CLIENT_VISIBLE_CHECK,
    JUDGE_CHECK,
    ignore_interrupts,
    judge_capture,
    judge_failed,
    result_line,
)
from conformance.proxy.recording import raw_exchange
from conformance.redact import Redactor
from conformance.report.evidence import RUN_BUDGET_CHARS, EvidenceBudget, result_text

if TYPE_CHECKING:
    from conformance.model import CaseResult
    from conformance.proxy.recording import Capture
    from conformance.specs.profiles import ProviderProfile
    from conformance.transport import Limits

# How much lower than the proxy's the judging process is scheduled (see the module's docstring).
NICENESS = 10
# The child acknowledges verdicts once this many wait, or the oldest waited ACK_DELAY seconds.
ACK_EVERY = 64
ACK_DELAY = 0.05
# Control messages (a capture's message is a pickle, which never is either).
_STOP = b""
_SYNC = b"sync"


class JudgeProcessDied(Exception):
    """The judging process ended while it held an exchange."""


@dataclass
class Verdict:
    """One judged exchange: its bounded, redacted result and what the session notes of it."""

    result: CaseResult
    text: str  # the result as report.json holds it (strict JSON)
    line: str  # its results.jsonl line
    model: str | None
    max_tokens: int | None
    budget_left: int  # the session's evidence budget after this exchange


@dataclass(frozen=True)
class Note:
    """What the proxy's process keeps of a verdict while traffic flows: its tally and the report's target."""

    model: str | None
    max_tokens: int | None
    client_visible: bool
    not_judged: bool

    @classmethod
    def of(cls, result: CaseResult, model: str | None = None, max_tokens: int | None = None) -> Note:
        checks = {finding.check for finding in result.findings}
        return cls(model, max_tokens, CLIENT_VISIBLE_CHECK in checks, JUDGE_CHECK in checks)


@dataclass(frozen=True)
class Ack:
    """A batch judged: a note for each of its exchanges, in order, and where the spool and budget stand."""

    notes: list[Note]
    spool_size: int
    budget_left: int


JudgedCallback = Callable[[list[Note], list["Capture"]], None]


@dataclass(frozen=True)
class SessionFiles:
    """Where verdicts go: the spool, results.jsonl, and whether (and how) the console shows them."""

    spool: Path
    lines: Path
    console: bool = False
    verbose: bool = False


class Outputs:
    """Writes each verdict where it goes, as it is made (`done`: how many the session has shown already)."""

    def __init__(self, files: SessionFiles, redactor: Redactor, done: int) -> None:
        from conformance.report.console import ConsoleReporter

        self.spool: BinaryIO = files.spool.open("ab")
        self.lines = files.lines.open("a", encoding="utf-8")
        self.reporter = None
        if files.console:
            self.reporter = ConsoleReporter(verbose=files.verbose, titles=True, redactor=redactor)
            self.reporter.count_from(done)

    def record(self, verdict: Verdict) -> Note:
        note = Note.of(verdict.result, verdict.model, verdict.max_tokens)
        record: SpoolRecord = (verdict.text, verdict.budget_left, note, summary_counts([verdict.result]))
        pickle.dump(record, self.spool, pickle.HIGHEST_PROTOCOL)
        self.spool.flush()  # whole on disk before the next one is judged: a child that dies loses none
        self.lines.write(verdict.line + "\n")
        self.lines.flush()
        if self.reporter is not None:
            self.reporter.case_done(verdict.result)
        return note

    def size(self) -> int:
        return self.spool.tell()

    def close(self) -> None:
        self.spool.close()
        self.lines.close()


# A verdict as spooled: the result as report.json holds it, the evidence budget left after it, its note, and
# what it adds to the report's summary. The reports are written from these texts, never parsed but for
# junit.xml and report.html.
SpoolRecord = tuple[str, int, Note, dict[str, int]]


def read_spool(path: Path, start: int = 0, end: int | None = None) -> tuple[list[SpoolRecord], int]:
    """The records of the spool between `start` and `end` (its end when None), and where the last whole
    one ends: a record cut short (its writer died) is not one. Read record by record, not whole."""
    records: list[SpoolRecord] = []
    try:
        handle = path.open("rb")
    except FileNotFoundError:  # removed from under the session: nothing left to read
        return records, start
    with handle:
        handle.seek(start)
        whole = start
        while end is None or whole < end:
            try:
                records.append(pickle.load(handle))
            except (EOFError, pickle.UnpicklingError, ValueError, AttributeError, IndexError):
                break
            whole = handle.tell()
    return records, whole


class Judging:
    """A session's judging state, and the judgement of one capture with it (in the child, or in the
    proxy once two children died)."""

    def __init__(
        self,
        limits: Limits,
        profile: ProviderProfile | None,
        redactor: Redactor,
        budget: EvidenceBudget,
    ) -> None:
        self.limits = limits
        self.profile = profile
        self.redactor = redactor
        self.budget = budget

    def judge(self, number: int, capture: Capture) -> Verdict:
        """The verdict on exchange `number`, whatever the capture holds: the judge raising, or its result
        not going into a pickle, makes the exchange an `error` that says why."""
        self.redactor.add(*capture.credentials(self.redactor.public_headers))
        try:
            judged = judge_capture(number, capture, self.limits, self.redactor, self.budget, self.profile)
            return self._verdict(judged.result, judged.model, judged.max_tokens)
        except Exception as exc:  # RecursionError, a check tripped by the answer...: this exchange is an error
            return self.failed(number, capture, exc)

    def failed(self, number: int, capture: Capture, error: BaseException) -> Verdict:
        """The verdict on an exchange the judge failed on: an `error` saying why, the exchange kept as plain text."""
        return self._verdict(self.budget.result(judge_failed(number, raw_exchange(capture, self.redactor), error)))

    def _verdict(self, result: CaseResult, model: str | None = None, max_tokens: int | None = None) -> Verdict:
        text = result_text(result, self.redactor)
        return Verdict(result, text, result_line(result, self.redactor), model, max_tokens, self.budget.left)


class JudgeProcess:
    """`post(number, capture)` hands a capture to the child without waiting for anything; the child
    judges the captures in the order posted. `on_judged(notes, captures)` is told of each run of them
    acknowledged (on the judge's own thread); `sync()` waits until every capture posted is.

    The proxy's side is a thread of its own (the pump), woken only when there is something for it to
    do: an acknowledgement to read, a capture that did not fit into the socket at once, a child that
    died. A capture posted while the socket is free goes out from the caller's thread (the relay's
    loop) in one non-blocking send, so that relaying an exchange wakes no other thread. The child
    acknowledges lazily (ACK_EVERY captures, or when none came for ACK_DELAY, or when asked): its
    verdicts are on the console and in results.jsonl at once, and the proxy's process only needs the
    acknowledgements for its tally and when it writes the reports.

    `redactor` is the proxy's: the child starts with the credentials it holds and learns each
    capture's as the proxy does. `files` say where verdicts go.
    """

    def __init__(
        self,
        limits: Limits,
        profile: ProviderProfile | None,
        redactor: Redactor,
        files: SessionFiles,
        on_judged: JudgedCallback | None = None,
    ) -> None:
        self.limits = limits
        self.profile = profile
        self.redactor = redactor
        self.files = files
        self.on_judged = on_judged
        self.spool_size = 0  # where the last acknowledged verdict ends in the spool
        self.recorded = 0  # verdicts acknowledged so far: every capture posted is one of these or in _unacked
        self._budget_left = RUN_BUDGET_CHARS
        self._process: multiprocessing.process.BaseProcess | None = None
        self._socket: socket.socket | None = None
        self._in_process: tuple[Judging, Outputs] | None = None
        self._replacements = 1
        # Shared with the posting threads, under _lock: posted and not acknowledged (in order), not yet
        # framed (the child is behind, or a sync marker), the frame being written.
        self._lock = threading.Lock()
        self._acknowledged = threading.Condition(self._lock)
        self._unacked: collections.deque[tuple[int, Capture]] = collections.deque()
        self._unsent: collections.deque[tuple[int, Capture] | bytes] = collections.deque()
        self._outgoing = bytearray()
        self._closing = False
        self._pump: threading.Thread | None = None
        self._pump_done = False
        self._bell, self._bell_rung = socket.socketpair()
        for end in (self._bell, self._bell_rung):
            end.setblocking(False)

    def start(self) -> None:
        """Start the child, and the pump the first time."""
        # Spawned, not forked: a fork would copy a process whose threads (the relay's loop) hold locks
        # mid-flight. It starts importing now, while the proxy starts listening.
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()  # a socket pair: the proxy's end is used as a plain socket
        state = (self.limits, self.profile, self._judging_state(), self.files, self.recorded)
        process = context.Process(target=_serve, args=(theirs, *state), name="conformance-proxy-judge", daemon=True)
        process.start()
        theirs.close()  # the child's end lives in the child only: its death is an end of file here
        sock = socket.socket(fileno=os.dup(ours.fileno()))
        ours.close()
        sock.setblocking(False)
        with self._lock:
            self._process, self._socket = process, sock
        if self._pump is None:
            self._pump = threading.Thread(target=self._run_pump, name="conformance-proxy-judge", daemon=True)
            self._pump.start()

    def post(self, number: int, capture: Capture) -> None:
        """Hand exchange `number` to the judge (from any thread; never blocks on the child)."""
        with self._lock:
            direct = not (self._unsent or self._outgoing or self._socket is None or self._in_process is not None)
            frame = _frame(pickle.dumps((number, capture), pickle.HIGHEST_PROTOCOL)) if direct else b""
            self._unacked.append((number, capture))
            if not direct:
                # Behind a capture not sent yet (the child is slower than the traffic), or between children.
                self._unsent.append((number, capture))
                if len(self._unsent) == 1:  # the pump works through the rest unasked
                    self._ring()
                return
            try:
                sent = self._socket.send(frame)
            except OSError:  # full (BlockingIOError), or the child is gone: the pump sees to it
                sent = 0
            if sent < len(frame):
                self._outgoing += memoryview(frame)[sent:]
                self._ring()

    def sync(self) -> None:
        """Wait until every capture posted so far is judged and acknowledged."""
        with self._lock:
            posted = self.recorded + len(self._unacked)  # every capture posted so far
            if not self._unacked or self._pump is None:
                return
            self._unsent.append(_SYNC)
            if len(self._unsent) == 1:
                self._ring()
            while self.recorded < posted and not self._pump_done:
                self._acknowledged.wait()

    def close(self) -> None:
        """Let the child judge what was posted, and stop it and the pump."""
        self.sync()
        with self._lock:
            self._closing = True
            self._ring()
        if self._pump is not None:
            self._pump.join()
        self._stop_child()
        self._bell.close()
        self._bell_rung.close()
        if self._in_process is not None:
            self._in_process[1].close()

    def _ring(self) -> None:
        """Wake the pump (with _lock held, or from the pump itself)."""
        with contextlib.suppress(OSError):  # BlockingIOError: it is rung already
            self._bell_rung.send(b"\0")

    def _run_pump(self) -> None:
        try:
            self._pump_until_closed()
        except BaseException as exc:  # a defect here must not leave sync() waiting forever
            print(f"conformance proxy: the judge's pump failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            with self._lock:
                self._pump_done = True
                self._acknowledged.notify_all()

    def _pump_until_closed(self) -> None:
        received = bytearray()
        while True:
            with self._lock:
                if self._closing:
                    return
                sock, here = self._socket, self._in_process is not None
                if not here and sock is not None and not self._outgoing and self._unsent:
                    item = self._unsent.popleft()
                    payload = item if isinstance(item, bytes) else pickle.dumps(item, pickle.HIGHEST_PROTOCOL)
                    self._outgoing += _frame(payload)
                writing = bool(self._outgoing)
            if here:
                self._judge_here()
            watched = [self._bell] if sock is None else [self._bell, sock]
            readable, writable, _ = select.select(watched, [sock] if writing and sock is not None else [], [])
            if self._bell in readable:
                with contextlib.suppress(OSError):
                    self._bell.recv(4096)
            if sock is not None and sock in writable:
                with self._lock:
                    try:
                        sent = sock.send(self._outgoing)
                    except OSError:  # the child is gone: its end of file is read below
                        sent = 0
                    del self._outgoing[:sent]
            if sock is not None and sock in readable:
                try:
                    data = sock.recv(1 << 16)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    received.clear()
                    self._recover()
                    continue
                received += data
                for payload in _unframe(received):
                    self._acked(pickle.loads(payload))

    def _acked(self, ack: Ack) -> None:
        """The child (or this process) judged the next captures: the session is told before sync() returns."""
        with self._lock:
            done = [capture for _, capture in itertools.islice(self._unacked, len(ack.notes))]
        if self.on_judged is not None and done:
            self.on_judged(ack.notes, done)
        with self._lock:
            for _ in done:
                self._unacked.popleft()
            self.recorded += len(done)
            self.spool_size, self._budget_left = ack.spool_size, ack.budget_left
            self._acknowledged.notify_all()

    def _judge_here(self) -> None:
        """Judge in this process what is posted (once two children died)."""
        assert self._in_process is not None
        judging, outputs = self._in_process
        while True:
            with self._lock:
                items = [item for item in self._unsent if not isinstance(item, bytes)]
                self._unsent.clear()
            if not items:
                return
            notes = []
            for number, capture in items:
                try:
                    notes.append(outputs.record(judging.judge(number, capture)))
                except Exception as exc:  # the disk or the console failed us: say so, count it, go on
                    print(f"conformance proxy: cannot record exchange {number}: {exc}", file=sys.stderr)
                    notes.append(Note(None, None, client_visible=False, not_judged=True))
            self._acked(Ack(notes, outputs.size(), judging.budget.left))

    def _recover(self) -> None:
        """The child died: what it finished is in the spool; the next one is the one it held, failed; the rest
        go to its replacement (or are judged here)."""
        records, self.spool_size = read_spool(self.files.spool, self.spool_size)
        _truncate(self.files.spool, self.spool_size)  # a record it was writing when it died
        if records:
            self._acked(Ack([note for _, _, note, _ in records], self.spool_size, records[-1][1]))
        ended = self._ended()  # no socket from here until the replacement's: posts queue meanwhile
        with self._lock:
            held = self._unacked[0] if self._unacked else None
        if held is not None:
            number, capture = held
            self.redactor.add(*capture.credentials(self.redactor.public_headers))
            try:
                note = self._record_failure(number, capture, ended)
            except Exception as exc:  # the disk failed us: the exchange is counted as not judged
                print(f"conformance proxy: cannot record exchange {number}: {exc}", file=sys.stderr)
                note = Note(None, None, client_visible=False, not_judged=True)
            self._acked(Ack([note], self.spool_size, self._budget_left))
        with self._lock:  # the rest, from the start: what was framed for the dead child was never judged
            self._outgoing.clear()
            self._unsent = collections.deque([*self._unacked, *(i for i in self._unsent if isinstance(i, bytes))])
        self._replace()

    def _stop_child(self) -> None:
        with self._lock:
            process, sock = self._process, self._socket
            self._process = self._socket = None
        if sock is not None:
            with contextlib.suppress(OSError):  # a child that reads nothing more is killed below
                sock.settimeout(1.0)
                sock.sendall(_frame(_STOP))
            sock.close()
        if process is not None:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()

    def _judging_state(self) -> tuple[list[str], frozenset[str], int]:
        return list(self.redactor.secrets), self.redactor.public_headers, self._budget_left

    def _record_failure(self, number: int, capture: Capture, error: BaseException) -> Note:
        """The verdict on the exchange a dead child held, written here (no child writes meanwhile)."""
        judging = Judging(self.limits, self.profile, self.redactor, EvidenceBudget(left=self._budget_left))
        outputs = Outputs(self.files, self.redactor, self.recorded)
        try:
            note = outputs.record(judging.failed(number, capture, error))
            self.spool_size = outputs.size()
        finally:
            outputs.close()
        self._budget_left = judging.budget.left
        return note

    def _ended(self) -> JudgeProcessDied:
        """How the child ended (it is stopped and joined)."""
        process = self._process
        code = None
        if process is not None:
            process.join(timeout=5)
            code = process.exitcode
        self._stop_child()
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return JudgeProcessDied(f"the judging process ended ({how}) while judging it")

    def _replace(self) -> None:
        """A new child, the first time; then judging in this process from then on, as stderr says once."""
        if self._replacements:
            self._replacements -= 1
            try:
                self.start()
                return
            except Exception as exc:  # no process can be started: judged here, as after a second death
                print(f"conformance proxy: cannot start a judging process: {exc}", file=sys.stderr)
        print(
            "conformance proxy: the judging process died twice; judging goes on in the proxy's own process",
            file=sys.stderr,
        )
        judging = Judging(self.limits, self.profile, self.redactor, EvidenceBudget(left=self._budget_left))
        with self._lock:
            self._in_process = (judging, Outputs(self.files, self.redactor, self.recorded))


def _frame(payload: bytes) -> bytes:
    """`payload` framed as multiprocessing's Connection frames it (what the child reads with recv_bytes)."""
    size = len(payload)
    header = struct.pack("!i", size) if size <= 0x7FFFFFFF else struct.pack("!iQ", -1, size)
    return header + payload


def _unframe(received: bytearray) -> Iterator[bytes]:
    """The whole frames at the start of `received`, removed from it as they are taken."""
    while len(received) >= 4:
        (size,) = struct.unpack_from("!i", received)
        start = 4
        if size == -1:
            if len(received) < 12:
                return
            (size,) = struct.unpack_from("!Q", received, 4)
            start = 12
        if len(received) < start + size:
            return
        payload = bytes(received[start : start + size])
        del received[: start + size]
        yield payload


def _truncate(path: Path, size: int) -> None:
    with contextlib.suppress(FileNotFoundError), path.open("r+b") as handle:  # removed from under the session
        handle.truncate(size)


def _acknowledge(connection: Connection, ack: Ack) -> bool:
    """Send `ack`; False when the proxy is gone (it closed its end: stopping, having what it needed)."""
    try:
        connection.send_bytes(pickle.dumps(ack))
    except OSError:  # BrokenPipeError, ConnectionResetError
        return False
    return True


def _serve(
    connection: Connection,
    limits: Limits,
    profile: ProviderProfile | None,
    state: tuple[list[str], frozenset[str], int],
    files: SessionFiles,
    done: int,
) -> None:
    """The child: judges each capture it is sent, in order, until told to stop or the proxy is gone."""
    ignore_interrupts()
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    secrets, public_headers, budget_left = state
    redactor = Redactor(secrets, public_headers=public_headers)
    judging = Judging(limits, profile, redactor, EvidenceBudget(left=budget_left))
    outputs = Outputs(files, judging.redactor, done)
    notes: list[Note] = []
    waiting_since = 0.0
    try:
        while True:
            if notes:
                # Acknowledged lazily: when ACK_EVERY are waiting, the oldest waited ACK_DELAY, or none came since.
                wait = waiting_since + ACK_DELAY - time.monotonic()
                if len(notes) >= ACK_EVERY or wait <= 0 or not connection.poll(wait):
                    if not _acknowledge(connection, Ack(notes, outputs.size(), judging.budget.left)):
                        return
                    notes = []
                    continue
            try:
                message = connection.recv_bytes()
            except (EOFError, OSError):
                return
            if message == _STOP:
                return
            if message == _SYNC:
                if not _acknowledge(connection, Ack(notes, outputs.size(), judging.budget.left)):
                    return
                notes = []
                continue
            if not notes:
                waiting_since = time.monotonic()
            number, capture = pickle.loads(message)
            notes.append(outputs.record(judging.judge(number, capture)))
    finally:
        outputs.close()
