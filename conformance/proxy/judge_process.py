"""The proxy's judge, in a process of its own: the relay never waits on a judgement, nor for the
interpreter lock one holds.

The child keeps the session's judging state (limits, provider profile, the credentials learnt so
far, the evidence budget), so an exchange crosses the pipe once each way: the capture, pickled, goes
in; a Verdict comes back. The Verdict carries the bounded result twice: a summary without bodies,
for the console and the tally, and the whole result still pickled, which the proxy unpickles only
when it writes the reports. What the proxy's process does for an exchange is thereby a few copies
of bytes, whatever the exchange holds.

The child runs at a lower priority (NICENESS): on a machine whose cores are all busy, relaying
comes first and judging catches up once they are not; the session bounds how far it may fall behind.

Whatever fails in the child fails one exchange: the judge raising makes that exchange an `error` in
the child itself, and a child that dies (killed, out of memory) fails the exchange it held in the
proxy. A dead child is replaced once, with the state the proxy last heard of; when the replacement
dies too, the exchanges are judged in the proxy's own process from then on, as stderr says once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import sys
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from conformance.proxy.judging import ignore_interrupts, judge_capture, judge_failed, result_line
from conformance.proxy.recording import raw_exchange
from conformance.redact import Redactor
from conformance.report.evidence import EvidenceBudget

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
    """One judged exchange, as the proxy keeps it."""

    summary: CaseResult  # the bounded result without its exchanges (those that failed to reach the upstream kept)
    line: str  # its results.jsonl line
    blob: bytes  # the whole bounded result, pickled
    model: str | None
    max_tokens: int | None
    budget_left: int  # the session's evidence budget after this exchange

    def result(self) -> CaseResult:
        return pickle.loads(self.blob)


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
        blob = pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
        kept = [exchange for exchange in result.exchanges if exchange.error]
        summary = replace(result, exchanges=kept)
        return Verdict(summary, result_line(result, self.redactor), blob, model, max_tokens, self.budget.left)


class JudgeProcess:
    """`call(number, capture)` judges in the child; the caller's thread waits for it holding nothing.

    `redactor` is the proxy's: the child starts with the credentials it holds and learns each
    capture's as the proxy does.
    """

    def __init__(self, limits: Limits, profile: ProviderProfile | None, redactor: Redactor) -> None:
        self.limits = limits
        self.profile = profile
        self.redactor = redactor
        self._budget_left = EvidenceBudget().left
        self._process: multiprocessing.process.BaseProcess | None = None
        self._connection: Connection | None = None
        self._in_process: Judging | None = None
        self._replacements = 1

    def start(self) -> None:
        # Spawned, not forked: a fork would copy a process whose threads (the relay's loop, the session's
        # worker) hold locks mid-flight. It starts importing now, while the proxy starts listening.
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        state = (self.limits, self.profile, self.redactor.secrets, self.redactor.public_headers, self._budget_left)
        process = context.Process(target=_serve, args=(theirs, *state), name="conformance-proxy-judge", daemon=True)
        process.start()
        theirs.close()  # the child's end lives in the child only: its death is an end of file here
        self._process, self._connection = process, ours

    def call(self, number: int, capture: Capture) -> Verdict:
        """The verdict on one capture; when the child dies holding it, an `error` verdict saying so."""
        if self._in_process is not None:
            return self._in_process.judge(number, capture)
        connection = self._connection
        assert connection is not None, "call() before start()"
        try:
            connection.send_bytes(pickle.dumps((number, capture), pickle.HIGHEST_PROTOCOL))
            verdict: Verdict = pickle.loads(connection.recv_bytes())
        except (EOFError, OSError):
            died = self._died()
            # Judged here, from what the proxy knows: its credentials, the budget as the child last left it.
            return Judging(self.limits, self.profile, self.redactor, _budget(self._budget_left)).failed(
                number, capture, died
            )
        self._budget_left = verdict.budget_left
        return verdict

    def close(self) -> None:
        """Let the child finish the call under way, and stop it."""
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
            redactor = Redactor(list(self.redactor.secrets), public_headers=self.redactor.public_headers)
            self._in_process = Judging(self.limits, self.profile, redactor, _budget(self._budget_left))
        return JudgeProcessDied(f"the judging process ended ({how}) while judging it")


def _budget(left: int) -> EvidenceBudget:
    budget = EvidenceBudget()
    budget.left = left
    return budget


def _serve(
    connection: Connection,
    limits: Limits,
    profile: ProviderProfile | None,
    secrets: list[str],
    public_headers: frozenset[str],
    budget_left: int,
) -> None:
    """The child: judges each capture it is sent, until told to stop or the proxy is gone."""
    ignore_interrupts()
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    judging = Judging(limits, profile, Redactor(secrets, public_headers=public_headers), _budget(budget_left))
    while True:
        try:
            message = connection.recv_bytes()
        except (EOFError, OSError):
            return
        if message == _STOP:
            return
        number, capture = pickle.loads(message)
        connection.send_bytes(pickle.dumps(judging.judge(number, capture), pickle.HIGHEST_PROTOCOL))
