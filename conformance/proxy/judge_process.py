"""The proxy's judge, in a process of its own: the relay never waits on a judgement, nor for the
interpreter lock one holds.

The child keeps the session's judging state (limits, provider profile, the credentials learnt so
far, the evidence budget) and writes what each verdict gives as it is made: the whole result to a
spool file (read back when the reports are written), its line to results.jsonl, its line on the
console. Captures cross the pipe in batches (those that came meanwhile, in one message), and a
batch is answered by one small acknowledgement: what the proxy's process does for an exchange is
thereby a copy of bytes, whatever the exchange holds, and its interpreter stays the relay's.

The child runs at a lower priority (NICENESS): on a machine whose cores are all busy, relaying
comes first and judging catches up once they are not; the session bounds how far it may fall behind.

Whatever fails in the child fails one exchange: the judge raising makes that exchange an `error` in
the child itself, and a child that dies (killed, out of memory) fails the exchange it held (the
spool tells which: the ones before it are there). A dead child is replaced once, with the state the
proxy last heard of; when the replacement dies too, the exchanges are judged in the proxy's own
process from then on, as stderr says once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

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
from conformance.report.evidence import RUN_BUDGET_CHARS, EvidenceBudget

if TYPE_CHECKING:
    from conformance.model import CaseResult
    from conformance.proxy.recording import Capture
    from conformance.specs.profiles import ProviderProfile
    from conformance.transport import Limits

# How much lower than the proxy's the judging process is scheduled (see the module's docstring).
NICENESS = 10
_STOP = b""


class JudgeProcessDied(Exception):
    """The judging process ended while it held an exchange."""


@dataclass
class Verdict:
    """One judged exchange: its bounded, redacted result and what the session notes of it."""

    result: CaseResult
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
        record = (verdict.result, verdict.budget_left, verdict.model, verdict.max_tokens)
        pickle.dump(record, self.spool, pickle.HIGHEST_PROTOCOL)
        self.spool.flush()  # whole on disk before the next one is judged: a child that dies loses none
        self.lines.write(verdict.line + "\n")
        self.lines.flush()
        if self.reporter is not None:
            self.reporter.case_done(verdict.result)
        return Note.of(verdict.result, verdict.model, verdict.max_tokens)

    def size(self) -> int:
        return self.spool.tell()

    def close(self) -> None:
        self.spool.close()
        self.lines.close()


SpoolRecord = tuple["CaseResult", int, "str | None", "int | None"]  # result, budget left, model, max_tokens


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
        return Verdict(result, result_line(result, self.redactor), model, max_tokens, self.budget.left)


class JudgeProcess:
    """`judge_all(first, captures)` judges in the child; the caller's thread waits for it holding nothing.

    `redactor` is the proxy's: the child starts with the credentials it holds and learns each
    capture's as the proxy does. `files` say where verdicts go.
    """

    def __init__(
        self, limits: Limits, profile: ProviderProfile | None, redactor: Redactor, files: SessionFiles
    ) -> None:
        self.limits = limits
        self.profile = profile
        self.redactor = redactor
        self.files = files
        self.spool_size = 0  # where the last acknowledged verdict ends in the spool
        self.recorded = 0  # verdicts written so far
        self._budget_left = RUN_BUDGET_CHARS
        self._process: multiprocessing.process.BaseProcess | None = None
        self._connection: Connection | None = None
        self._in_process: tuple[Judging, Outputs] | None = None
        self._replacements = 1

    def start(self) -> None:
        # Spawned, not forked: a fork would copy a process whose threads (the relay's loop, the session's
        # worker) hold locks mid-flight. It starts importing now, while the proxy starts listening.
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        state = (self.limits, self.profile, self._judging_state(), self.files, self.recorded)
        process = context.Process(target=_serve, args=(theirs, *state), name="conformance-proxy-judge", daemon=True)
        process.start()
        theirs.close()  # the child's end lives in the child only: its death is an end of file here
        self._process, self._connection = process, ours

    def judge_all(self, first: int, captures: list[Capture]) -> list[Note]:
        """Judge `captures` (numbered from `first`), in order: a note for each. They cross to the child in one
        message, answered by one; when the child dies holding one, that one's verdict is an `error` saying
        so, and the rest go to its replacement."""
        numbered = list(enumerate(captures, first))
        notes: list[Note] = []
        while numbered:
            if self._in_process is not None:
                judging, outputs = self._in_process
                notes += [outputs.record(judging.judge(number, capture)) for number, capture in numbered]
                self.recorded += len(numbered)
                self.spool_size, self._budget_left = outputs.size(), judging.budget.left
                break
            connection = self._connection
            assert connection is not None, "judge_all() before start()"
            try:
                connection.send_bytes(pickle.dumps(numbered, pickle.HIGHEST_PROTOCOL))
                ack: Ack = pickle.loads(connection.recv_bytes())
            except (EOFError, OSError):
                # What the child finished of the batch is in the spool; the next one is the one it held.
                records, self.spool_size = read_spool(self.files.spool, self.spool_size)
                _truncate(self.files.spool, self.spool_size)  # a record it was writing when it died
                notes += [Note.of(result, model, max_tokens) for result, _, model, max_tokens in records]
                self.recorded += len(records)
                if records:
                    self._budget_left = records[-1][1]
                numbered = numbered[len(records) :]
                died = self._died()
                if numbered:
                    number, capture = numbered.pop(0)
                    notes.append(self._record_failure(number, capture, died))
                continue
            notes += ack.notes
            self.recorded += len(ack.notes)
            self.spool_size, self._budget_left = ack.spool_size, ack.budget_left
            numbered = []
        return notes

    def close(self) -> None:
        """Let the child finish the batch under way, and stop it."""
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.send_bytes(_STOP)
            connection.close()
        if process is not None:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        if self._in_process is not None:
            self._in_process[1].close()

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
        self.recorded += 1
        self._budget_left = judging.budget.left
        return note

    def _died(self) -> JudgeProcessDied:
        """Says how the child ended; replaces it once, then judges in this process from then on."""
        process = self._process
        code = None
        if process is not None:
            process.join(timeout=5)
            code = process.exitcode
        self.close()
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        if self._replacements:
            self._replacements -= 1
            self.start()
        else:
            print(
                "conformance proxy: the judging process died twice; judging goes on in the proxy's own process",
                file=sys.stderr,
            )
            judging = Judging(self.limits, self.profile, self.redactor, EvidenceBudget(left=self._budget_left))
            self._in_process = (judging, Outputs(self.files, self.redactor, self.recorded))
        return JudgeProcessDied(f"the judging process ended ({how}) while judging it")


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(size)


def _serve(
    connection: Connection,
    limits: Limits,
    profile: ProviderProfile | None,
    state: tuple[list[str], frozenset[str], int],
    files: SessionFiles,
    done: int,
) -> None:
    """The child: judges each batch it is sent, until told to stop or the proxy is gone."""
    ignore_interrupts()
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    secrets, public_headers, budget_left = state
    redactor = Redactor(secrets, public_headers=public_headers)
    judging = Judging(limits, profile, redactor, EvidenceBudget(left=budget_left))
    outputs = Outputs(files, judging.redactor, done)
    try:
        while True:
            try:
                message = connection.recv_bytes()
            except (EOFError, OSError):
                return
            if message == _STOP:
                return
            notes = [outputs.record(judging.judge(number, capture)) for number, capture in pickle.loads(message)]
            connection.send_bytes(pickle.dumps(Ack(notes, outputs.size(), judging.budget.left)))
    finally:
        outputs.close()
