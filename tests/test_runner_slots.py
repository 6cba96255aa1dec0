"""A case holds one of the run's slots while it sends its requests, not while it is judged: with one
slot, the next case sends while the one before is judged, and no two cases send at once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from conformance import runner
from conformance.cases import load_cases
from conformance.reference import ReferenceServer
from conformance.target import Target

CASES = {case.id: case for case in load_cases()}
FIRST, SECOND = "count_tokens.basic", "errors.missing-max-tokens"
KEY = "slots-" + "k" * 12


def test_the_next_case_sends_while_the_one_before_is_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    second_started = threading.Event()
    seen_while_judging: list[bool] = []
    judge = runner.judge

    def slow_judge(case: Any, *args: Any, **kwargs: Any) -> Any:
        if case.id == FIRST:  # judged only once the second case has had the slot (or 10 s have passed)
            seen_while_judging.append(second_started.wait(10))
        return judge(case, *args, **kwargs)

    def on_start(case_id: str) -> None:
        if case_id == SECOND:
            second_started.set()

    monkeypatch.setattr(runner, "judge", slow_judge)
    with ReferenceServer(api_key=KEY) as server:
        target = Target(base_url=server.base_url, api_key=KEY, reference=True)
        cases = [CASES[FIRST], CASES[SECOND]]
        report = asyncio.run(runner.run_suite(target, cases, concurrency=1, on_start=on_start))
    assert seen_while_judging == [True]
    assert [result.outcome.value for result in report.results] == ["passed", "passed"]


def test_a_cases_duration_runs_from_the_moment_it_has_its_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    """With one slot, the second case waits while the first sends slowly: that wait is not its duration."""
    send = runner.Runner._send

    async def slow_first(self: runner.Runner, request: Any, *args: Any) -> Any:
        if request.url.endswith("/count_tokens"):  # the first case's request
            await asyncio.sleep(1.0)
        return await send(self, request, *args)

    monkeypatch.setattr(runner.Runner, "_send", slow_first)
    with ReferenceServer(api_key=KEY) as server:
        target = Target(base_url=server.base_url, api_key=KEY, reference=True)
        report = asyncio.run(runner.run_suite(target, [CASES[FIRST], CASES[SECOND]], concurrency=1))
    durations = {result.id: result.duration for result in report.results}
    assert durations[FIRST] >= 1.0 and durations[SECOND] < 1.0, durations


def test_a_stop_spares_a_case_being_judged_and_cancels_the_one_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    second_started = threading.Event()
    judge = runner.judge
    stop = runner.Stop()

    def slow_judge(case: Any, *args: Any, **kwargs: Any) -> Any:
        if case.id == FIRST:
            second_started.wait(10)  # judged while the second case sends, and the run is stopped
        return judge(case, *args, **kwargs)

    def on_start(case_id: str) -> None:
        if case_id == SECOND:
            second_started.set()
            stop.request("stopped by the test")

    monkeypatch.setattr(runner, "judge", slow_judge)
    with ReferenceServer(api_key=KEY) as server:
        target = Target(base_url=server.base_url, api_key=KEY, reference=True)
        cases = [CASES[FIRST], CASES[SECOND]]
        report = asyncio.run(runner.run_suite(target, cases, concurrency=1, on_start=on_start, stop=stop))
    assert [(result.id, result.outcome.value) for result in report.results] == [(FIRST, "passed")]
    assert report.interrupted == "stopped by the test" and report.not_run == [SECOND]


def test_cases_are_judged_one_at_a_time_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Judging holds the interpreter lock (more threads would judge no faster), and the checks import some
    libraries on first need: two judges importing at once could see them half-initialised."""
    judge = runner.judge
    lock = threading.Lock()
    judging, most, threads = [0], [0], set()

    def counting_judge(*args: Any, **kwargs: Any) -> Any:
        with lock:
            judging[0] += 1
            most[0] = max(most[0], judging[0])
            threads.add(threading.current_thread().name)
        try:
            threading.Event().wait(0.05)  # long enough for the judging of cases sent together to overlap
            return judge(*args, **kwargs)
        finally:
            with lock:
                judging[0] -= 1

    monkeypatch.setattr(runner, "judge", counting_judge)
    cases = [case for case in load_cases() if case.tier == "smoke"][:6]
    with ReferenceServer(api_key=KEY) as server:
        target = Target(base_url=server.base_url, api_key=KEY, reference=True)
        report = asyncio.run(runner.run_suite(target, cases, concurrency=4))
    assert len(report.results) == len(cases)
    assert most == [1] and len(threads) == 1 and threads.pop().startswith("conformance-judge")
