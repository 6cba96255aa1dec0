"""Plan -> execute -> results. The runner sends and records; conformance.judge gives the verdict."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from conformance import __version__
from conformance.cases import Case, CaseError, Step, resolve
from conformance.durations import slowest_first
from conformance.judge import case_result, judge, rejected_key, step_history, step_refused
from conformance.model import CaseResult, Exchange, Finding, Outcome, Request, RunReport, Severity
from conformance.redact import Redactor
from conformance.report.evidence import EvidenceBudget
from conformance.retry import RetryPolicy, describe_answer, is_transient
from conformance.target import Target, TargetError
from conformance.transport import Limits, Transport

ResultCallback = Callable[[CaseResult], None]
# Told the id of each case as it takes a slot and starts.
StartCallback = Callable[[str], None]
# Told a case's exchanges once its answers are all in, before it is judged.
SentCallback = Callable[[Case, list[Exchange]], None]


def build_request(target: Target, step: Step, history: list[dict[str, Any]]) -> Request:
    """The HTTP request a step sends to the target: default headers, credentials, resolved body."""
    spec = step.request
    headers = target.default_headers()
    if spec.auth:
        headers.update(target.auth_headers(spec.auth if isinstance(spec.auth, str) else None))
    for name, value in spec.headers.items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = str(value)
    body = resolve(spec.body, target.model, history) if spec.body is not None else None
    # A raw body is sent as written but for `$model`, so that only the flaw it is about differs.
    raw_body = spec.raw_body.replace("$model", target.model) if spec.raw_body is not None else None
    return Request(method=spec.method, url=target.url(spec.endpoint), headers=headers, body=body, raw_body=raw_body)


class Stop:
    """Asks a run to stop, from a signal handler or from the runner itself: the cases still sending are
    cancelled; those whose answers are all in are judged and kept with those that finished. `reason`
    is what the report records as `interrupted`."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._listeners: list[Callable[[], object]] = []

    def request(self, reason: str) -> None:
        """Stop (the first reason given is kept); every listener is called once."""
        if self.reason is not None:
            return
        self.reason = reason
        for listener in self._listeners:
            listener()

    def listen(self, listener: Callable[[], object]) -> None:
        """Call `listener` when a stop is requested (at once if one already was)."""
        self._listeners.append(listener)
        if self.reason is not None:
            listener()


# The run stops early when this many finished cases in a row, from the start, got their key rejected.
KEY_CHECK_CASES = 4
KEY_REJECTED = f"the target rejected the key on the first {KEY_CHECK_CASES} cases (401/403): check --api-key and --auth"
RETRY_CHECK = "runner.retry"


@dataclass
class _Progress:
    """What a case has done so far, kept outside its steps so that a failure loses none of it."""

    doing: str = "the case could not be prepared"
    started: float = field(default_factory=time.monotonic)  # from the moment the case has its slot
    exchanges: list[Exchange] = field(default_factory=list)
    tries: list[int] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)


def _one_sentence(exc: BaseException) -> str:
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


class Runner:
    """Runs cases against one target with bounded concurrency; steps of a case run in order.

    Every case ends in a result: an exception while building, sending, reading or judging one case
    is that case's `error`, never the run's end. Transient answers are sent again (`retry`); a run
    whose first cases all get their key rejected stops early through `stop`.
    """

    def __init__(
        self,
        target: Target,
        transport: Transport,
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        stop: Stop | None = None,
    ) -> None:
        self.target = target
        self.transport = transport
        self.redactor = transport.redactor
        self.retry = retry or RetryPolicy()
        self.stop = stop or Stop()
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._judging: set[asyncio.Task[Any]] = set()  # cases whose requests are all answered, being judged
        self._key_verdicts: list[bool] = []
        # Once judged, a result keeps only what its reports will keep: memory does not grow with what targets send.
        self.kept = EvidenceBudget()

    async def run(
        self, cases: Iterable[Case], on_result: ResultCallback | None = None, on_start: StartCallback | None = None
    ) -> list[CaseResult]:
        """The results of the cases that finished: all of them, unless the run was stopped."""
        finished: list[CaseResult] = []

        async def one(case: Case) -> None:
            result = self.kept.result(await self.run_case(case, self._slots, on_start, self._watch_key))
            finished.append(result)
            if on_result is not None:
                on_result(result)

        tasks = [asyncio.ensure_future(one(case)) for case in cases]
        self.stop.listen(lambda: [task.cancel() for task in tasks if task not in self._judging])
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        defect = next((o for o in outcomes if isinstance(o, BaseException) and not _cancelled(o)), None)
        if defect is not None:
            raise defect  # outside any one case (a reporter, say): the tool's own defect
        return finished

    def _watch_key(self, case: Case, exchanges: list[Exchange]) -> None:
        """Stop the run when its first cases to send anything all got their key rejected (told as each case's
        answers are in, before it is judged and before another case takes its slot)."""
        if not exchanges or len(self._key_verdicts) >= KEY_CHECK_CASES:
            return
        self._key_verdicts.append(any(rejected_key(case, exchange) for exchange in exchanges))
        if len(self._key_verdicts) == KEY_CHECK_CASES and all(self._key_verdicts):
            self.stop.request(KEY_REJECTED)

    async def run_case(
        self,
        case: Case,
        slot: asyncio.Semaphore | None = None,
        on_start: StartCallback | None = None,
        on_sent: SentCallback | None = None,
    ) -> CaseResult:
        """Send the case's steps in order and judge what came back; any exception is the case's `error`.

        `slot` is held while the case's requests are sent, not while it is judged: the next case sends
        meanwhile, and no more cases than the slots send at once. `on_start` hears of the case once it
        has its slot, `on_sent` once its answers are all in (before the next case can send)."""
        progress = _Progress()
        try:
            result = await self._run_case(case, progress, slot or contextlib.nullcontext(), on_start, on_sent)
        except Exception as exc:  # one case's trouble must never end the run
            result = case_result(
                case,
                Outcome.ERROR,
                f"{progress.doing}: {_one_sentence(exc)}",
                exchanges=progress.exchanges,
                duration=time.monotonic() - progress.started,
                attempts=max(progress.tries, default=1),
            )
        result.findings.extend(progress.notes)
        return self.redactor.result(result)

    async def _run_case(
        self,
        case: Case,
        progress: _Progress,
        slot: AbstractAsyncContextManager[Any],
        on_start: StartCallback | None,
        on_sent: SentCallback | None,
    ) -> CaseResult:
        async with slot:
            progress.started = time.monotonic()
            if on_start is not None:
                on_start(case.id)
            missing = case.requires - self.target.capabilities if self.target.capabilities is not None else set()
            if missing:
                return case_result(case, Outcome.SKIPPED, f"the target does not claim: {', '.join(sorted(missing))}")
            refused = await self._send_steps(case, progress)
            # Its answers are all in: from here a stop spares it.
            task = asyncio.current_task()
            if task is not None:
                self._judging.add(task)
        try:
            if on_sent is not None:
                on_sent(case, progress.exchanges)
            if refused is not None:
                return refused
            progress.doing = "the judge failed on this answer"
            # Judged on the judge's thread, and out of the slot: the event loop goes on reading the other cases'
            # answers meanwhile, so that their arrival times (inter-event gaps, silences) are the wire's, not
            # the judge's.
            judging = functools.partial(
                judge,
                case,
                progress.exchanges,
                duration=time.monotonic() - progress.started,
                profile=self.target.profile,
                tries=progress.tries,
            )
            return await asyncio.get_running_loop().run_in_executor(_judge_thread(), judging)
        finally:
            self._judging.discard(task)  # type: ignore[arg-type]

    async def _send_steps(self, case: Case, progress: _Progress) -> CaseResult | None:
        """Send the case's steps in order, until one gets no usable answer; the case's `error` when a step
        cannot be built."""
        for index, step in enumerate(case.steps):
            progress.doing = f"step {index} could not be built"
            history = step_history(progress.exchanges)
            try:
                request = build_request(self.target, step, history)
            except (CaseError, TargetError) as exc:
                return case_result(
                    case, Outcome.ERROR, f"step {index} could not be built: {exc}", exchanges=progress.exchanges
                )
            progress.doing = f"sending step {index} failed"
            exchange = await self._send(request, step, index, history, progress)
            progress.exchanges.append(exchange)
            if exchange.error or step_refused(step, exchange):
                break  # later steps build on this answer, which is not what they need
        return None

    async def _send(
        self, request: Request, step: Step, index: int, history: list[dict[str, Any]], progress: _Progress
    ) -> Exchange:
        """Send a step's request, again while the answer is transient (at most `retry.retries` more times)."""
        answers: list[str] = []
        while True:
            exchange = await self.transport.send(request, step=index)
            answers.append(_answer(exchange))
            if len(answers) > self.retry.retries or not is_transient(exchange, step.expect.get("status", 200)):
                break
            await asyncio.sleep(self.retry.wait(len(answers), exchange.response))
            # Built afresh: the transport redacted the one it recorded in place.
            request = build_request(self.target, step, history)
        progress.tries.append(len(answers))
        if len(answers) > 1:
            sent = f"step {index} was sent {len(answers)} times: {', '.join(answers)}"
            progress.notes.append(Finding(RETRY_CHECK, sent, severity=Severity.NOTE))
        return exchange


@functools.cache
def _judge_thread() -> ThreadPoolExecutor:
    """The one thread that judges, one case at a time. Judging holds the interpreter lock, so more threads
    would judge no faster; and the checks import some libraries when first needed (jsonschema, a provider's
    contract), which two threads importing at once can see half-initialised."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="conformance-judge")


def _answer(exchange: Exchange) -> str:
    return describe_answer(exchange.response) if exchange.response is not None else exchange.error or "no answer"


def _cancelled(outcome: BaseException) -> bool:
    return isinstance(outcome, asyncio.CancelledError)


def target_transport(target: Target, limits: Limits | None = None, redactor: Redactor | None = None) -> Transport:
    """A transport for the target that keeps its secrets (see Target.secrets) out of everything it records."""
    return Transport(limits=limits, redactor=redactor or target.redactor())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


async def run_suite(
    target: Target,
    cases: list[Case],
    limits: Limits | None = None,
    concurrency: int = 4,
    on_result: ResultCallback | None = None,
    *,
    retry: RetryPolicy | None = None,
    stop: Stop | None = None,
    redactor: Redactor | None = None,
    on_start: StartCallback | None = None,
    durations: dict[str, float] | None = None,
) -> RunReport:
    """Run the cases against the target and return the whole report (in case-id order).

    With `durations` (how long each case took last time: conformance.durations), the slowest start first.

    A stopped run (`stop`, or the key rejected) reports what finished, why it stopped
    (`interrupted`) and the ids of the cases that did not finish (`not_run`, in plan order).
    """
    started_at = now_iso()
    stop = stop or Stop()
    async with target_transport(target, limits, redactor) as transport:
        order = slowest_first(cases, durations) if durations is not None else cases
        results = await Runner(target, transport, concurrency, retry, stop).run(order, on_result, on_start)
    finished = {result.id for result in results}
    return RunReport(
        target=target.info(),
        started_at=started_at,
        finished_at=now_iso(),
        results=sorted(results, key=lambda result: result.id),
        tool_version=__version__,
        planned_requests=sum(case.requests for case in cases),
        planned_max_output_tokens=sum(case.max_output_tokens for case in cases),
        interrupted=stop.reason,
        not_run=[case.id for case in cases if case.id not in finished] if stop.reason else [],
    )
