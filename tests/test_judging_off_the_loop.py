"""A run judges each case off the event loop that reads the answers, once per stream.

Reading never waits for a judgement: the runner hands each finished case to a worker thread, so the
loop goes on reading (and timing) the other cases' answers. And a judgement folds each stream once,
whoever reads it: the checks, the case's expectations, the token count.
"""

from __future__ import annotations

import asyncio
import threading

from conformance import judge as judging
from conformance import runner
from conformance.cases import load_cases
from conformance.checks import common
from conformance.model import Outcome
from conformance.reference import ReferenceServer
from conformance.runner import run_suite
from conformance.target import Target

CASES = {case.id: case for case in load_cases()}
STREAMED = "streaming.text"
API_KEY = "judging-test-key"
FOLD = common.accumulate


def run_streamed_case(server: ReferenceServer):
    target = Target(base_url=server.base_url, api_key=API_KEY, reference=True)
    return asyncio.run(run_suite(target, [CASES[STREAMED]]))


def test_cases_are_judged_on_a_worker_thread_not_on_the_loop(monkeypatch):
    judged_on: list[threading.Thread] = []

    def recording_judge(*args, **kwargs):
        judged_on.append(threading.current_thread())
        return judging.judge(*args, **kwargs)

    monkeypatch.setattr(runner, "judge", recording_judge)
    with ReferenceServer() as server:
        report = run_streamed_case(server)
    assert [result.outcome for result in report.results] == [Outcome.PASSED]
    assert judged_on and threading.main_thread() not in judged_on


def test_a_case_is_judged_with_each_stream_folded_once(monkeypatch):
    with ReferenceServer() as server:
        report = run_streamed_case(server)
    exchanges = report.results[0].exchanges
    streams = [exchange.response.events for exchange in exchanges if exchange.response.events is not None]
    assert streams
    folds = []
    spy = lambda events: folds.append(events) or FOLD(events)  # noqa: E731
    monkeypatch.setattr(common, "accumulate", spy)
    result = judging.judge(CASES[STREAMED], exchanges)
    assert result.outcome is Outcome.PASSED
    assert [id(events) for events in folds] == [id(events) for events in streams]
