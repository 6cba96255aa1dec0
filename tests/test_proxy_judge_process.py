"""The proxy judges in a process of its own: the relay never waits on the judge. Whatever goes wrong
there (the judge raising, the process killed) makes that one exchange an `error`, the next ones are
judged, and closing the session leaves no process behind.

The judging process is observed through a stand-in provider profile: the judge asks its deviation
about every failure, and the deviation answers from inside that process (it notes its pid, raises,
or takes its time), as told for each exchange.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.model import CaseResult, Finding, Outcome
from conformance.proxy import ProxySession
from conformance.proxy.recording import Capture

UPSTREAM = "http://127.0.0.1:9"
# The answer lacks every field but `type`: failures, which the judge asks the profile's deviations about.
FAILING = json.dumps({"type": "message"}).encode()
JUDGED_IN_TIME = 60.0


@dataclass(frozen=True)
class Trap:
    """A deviation that explains nothing, and on being asked about exchange `proxy.NNNN` does what
    `acts` says: "note" (write the pid of the process judging it to `marks/proxy.NNNN`), "raise",
    "pause" (one second) or "hang" (until killed), noting the pid first in every case."""

    acts: dict[str, str]
    marks: Path
    label: str = "trap"

    def explains(self, finding: Finding, case_id: str) -> bool:
        act = self.acts.get(case_id)
        if act is None:
            return False
        (self.marks / case_id).write_text(str(os.getpid()))
        if act == "raise":
            raise RuntimeError(f"trapped in process {os.getpid()}")
        if act in ("pause", "hang"):
            time.sleep(1.0 if act == "pause" else JUDGED_IN_TIME)
        return False


@dataclass(frozen=True)
class TrapProfile:
    """What the judge reads of a provider profile: its deviations."""

    deviations: tuple[Trap, ...]


def capture() -> Capture:
    key = "test-key-" + secrets.token_hex(16)
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]})
    headers = [(b"x-api-key", key.encode()), (b"anthropic-version", b"2023-06-01")]
    headers.append((b"content-type", b"application/json"))
    taken = Capture("POST", UPSTREAM + "/v1/messages", headers, limit=1 << 20)
    taken.take_request(body.encode())
    taken.status, taken.response_headers = 200, [(b"content-type", b"application/json"), (b"request-id", b"req_01")]
    taken.take(FAILING, 0.01)
    return taken


def session(tmp_path: Path, **acts: str) -> tuple[ProxySession, Path]:
    """A started session whose profile traps the exchanges named in `acts` (proxy_0001="hang"...)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    trap = Trap({name.replace("_", "."): act for name, act in acts.items()}, marks)
    return ProxySession(UPSTREAM, tmp_path / "out", profile=TrapProfile((trap,))).start(), marks  # type: ignore[arg-type]


def pid_judging(marks: Path, case_id: str) -> int:
    """The pid of the process that judges `case_id`, once it has started on it."""
    mark = marks / case_id
    deadline = time.monotonic() + JUDGED_IN_TIME
    while not (mark.exists() and mark.read_text()):
        assert time.monotonic() < deadline, f"{case_id} was never judged"
        time.sleep(0.05)
    return int(mark.read_text())


def judged(result: CaseResult) -> bool:
    """Judged by the contract checks (the stand-in answer fails them), not failed by the judge."""
    return result.outcome is Outcome.FAILED and not result.reason.startswith("the judge failed")


def gone(pid: int) -> bool:
    if pid in {child.pid for child in multiprocessing.active_children()}:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_exchanges_are_judged_in_another_process_which_close_stops(tmp_path: Path) -> None:
    proxy, marks = session(tmp_path, proxy_0001="note")
    proxy.submit(capture())
    child = pid_judging(marks, "proxy.0001")
    # Scheduled below the proxy: when the cores are busy, relaying comes first.
    assert os.getpriority(os.PRIO_PROCESS, child) > os.getpriority(os.PRIO_PROCESS, 0)
    report, _ = proxy.close()
    assert child != os.getpid()
    assert [judged(result) for result in report.results] == [True]
    assert gone(child)


def test_the_judge_raising_in_its_process_fails_that_exchange_and_the_next_ones_are_judged(tmp_path: Path) -> None:
    proxy, marks = session(tmp_path, proxy_0001="raise", proxy_0003="note")
    for _ in range(3):
        proxy.submit(capture())
    report, paths = proxy.close()
    first, *rest = report.results
    child = pid_judging(marks, "proxy.0001")
    assert child != os.getpid()
    assert (first.outcome, first.reason) == (
        Outcome.ERROR,
        f"the judge failed on this exchange: RuntimeError: trapped in process {child}",
    )
    assert [judged(result) for result in rest] == [True, True]
    assert pid_judging(marks, "proxy.0003") == child  # the same process went on
    lines = [json.loads(line) for line in paths["results"].read_text().splitlines()]
    assert [(line["id"], line["outcome"]) for line in lines] == [
        ("proxy.0001", "error"),
        ("proxy.0002", "failed"),
        ("proxy.0003", "failed"),
    ]


def test_a_killed_judging_process_fails_the_exchange_it_held_and_a_new_one_judges_the_next(tmp_path: Path) -> None:
    proxy, marks = session(tmp_path, proxy_0002="hang", proxy_0003="note")
    for _ in range(3):
        proxy.submit(capture())
    killed = pid_judging(marks, "proxy.0002")
    os.kill(killed, signal.SIGKILL)
    report, _ = proxy.close()
    first, second, third = report.results
    assert judged(first) and judged(third)
    assert report.planned_max_output_tokens == 2 * 16  # what the judged ones asked for, the spooled one's too
    assert second.outcome is Outcome.ERROR
    assert second.reason.startswith("the judge failed on this exchange: JudgeProcessDied: ")
    replacement = pid_judging(marks, "proxy.0003")
    assert replacement not in (killed, os.getpid())
    assert gone(killed) and gone(replacement)


def test_after_two_judging_processes_died_the_proxy_judges_in_its_own_and_says_so_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy, marks = session(tmp_path, proxy_0001="hang", proxy_0002="hang", proxy_0003="note", proxy_0004="note")
    for _ in range(4):
        proxy.submit(capture())
    for case_id in ("proxy.0001", "proxy.0002"):
        os.kill(pid_judging(marks, case_id), signal.SIGKILL)
    report, _ = proxy.close()
    assert [result.outcome is Outcome.ERROR for result in report.results] == [True, True, False, False]
    assert [judged(result) for result in report.results[2:]] == [True, True]
    assert pid_judging(marks, "proxy.0003") == pid_judging(marks, "proxy.0004") == os.getpid()
    assert capsys.readouterr().err.count("the judging process died twice") == 1


def test_ctrl_c_reaches_the_proxy_not_its_judging_process(tmp_path: Path) -> None:
    """The proxy stops on Ctrl+C by itself and has what is queued judged: the judging process ignores it."""
    proxy, marks = session(tmp_path, proxy_0001="pause")
    proxy.submit(capture())
    os.kill(pid_judging(marks, "proxy.0001"), signal.SIGINT)
    report, _ = proxy.close()
    assert [judged(result) for result in report.results] == [True]


def test_the_spool_is_read_to_its_last_whole_record_and_removed_once_the_reports_are_written(tmp_path: Path) -> None:
    """A verdict the judging process was writing when it died is not half-read: reading stops where the
    last whole one ends. On stop the reports hold every verdict and the spool is gone."""
    import pickle

    from conformance.proxy.defaults import SPOOL_FILE
    from conformance.proxy.judge_process import read_spool

    spool = tmp_path / "spool"
    one, two = ("one", 1, "m", 16), ("two", 2, None, None)
    first, second = pickle.dumps(one), pickle.dumps(two)
    spool.write_bytes(first + second + pickle.dumps(("three", 3, None, None))[:-4])
    assert read_spool(spool) == ([one, two], len(first) + len(second))
    assert read_spool(spool, start=len(first)) == ([two], len(first) + len(second))
    assert read_spool(tmp_path / "gone", start=7) == ([], 7)

    proxy, _ = session(tmp_path)
    for _ in range(2):
        proxy.submit(capture())
    report, paths = proxy.close()
    assert [judged(result) for result in report.results] == [True, True]
    assert len(paths["results"].read_text().splitlines()) == 2
    assert not (tmp_path / "out" / SPOOL_FILE).exists()


def test_a_judge_killed_while_others_wait_keeps_what_it_finished_fails_what_it_held_and_hands_on_the_rest(
    tmp_path: Path,
) -> None:
    """Three posted at once, the judging process killed on the second: the first is read back from the spool,
    the second is an error, the third is judged by the replacement; each has one line, in order."""
    from conformance.proxy.judge_process import JudgeProcess, SessionFiles, read_spool
    from conformance.redact import Redactor
    from conformance.transport import Limits

    marks = tmp_path / "marks"
    marks.mkdir()
    trap = Trap({"proxy.0002": "hang", "proxy.0003": "note"}, marks)
    files = SessionFiles(tmp_path / "spool", tmp_path / "results.jsonl")
    notes: list[object] = []
    judge = JudgeProcess(Limits(), TrapProfile((trap,)), Redactor(), files, on_judged=lambda n, _: notes.extend(n))  # type: ignore[arg-type]
    judge.start()
    try:
        for number in (1, 2, 3):
            judge.post(number, capture())
        os.kill(pid_judging(marks, "proxy.0002"), signal.SIGKILL)
        judge.sync()
    finally:
        judge.close()
    assert len(notes) == 3
    results = [CaseResult.from_dict(json.loads(text)) for text, *_ in read_spool(files.spool)[0]]
    assert [(result.id, judged(result)) for result in results] == [
        ("proxy.0001", True),
        ("proxy.0002", False),
        ("proxy.0003", True),
    ]
    assert results[1].reason.startswith("the judge failed on this exchange: JudgeProcessDied: ")
    lines = [json.loads(line)["id"] for line in files.lines.read_text().splitlines()]
    assert lines == ["proxy.0001", "proxy.0002", "proxy.0003"]


def test_a_capture_larger_than_the_socket_takes_at_once_is_sent_whole_and_those_after_it_in_order(
    tmp_path: Path,
) -> None:
    """Posting never blocks: what the socket does not take at once is written by the judge's own thread, and
    the captures posted meanwhile wait behind it, in order."""
    proxy, _ = session(tmp_path)
    ours, theirs = socket.socketpair()  # what the judge's socket takes at once, about
    with ours, theirs:
        at_once = ours.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    big = capture()
    big.limit = 8 * at_once
    big.take(b" " * big.limit, 0.02)  # trailing whitespace: the same (failing) JSON answer
    for taken in (capture(), big, capture(), capture()):
        proxy.submit(taken)
    report, _ = proxy.close()
    assert [(result.id, judged(result)) for result in report.results] == [
        (f"proxy.000{number}", True) for number in range(1, 5)
    ]


def test_report_json_is_what_writing_its_results_whole_would_write_and_learns_keys_sent_later(
    tmp_path: Path,
) -> None:
    """report.json is assembled from each result as the judge made it strict: the same document as the
    results written whole (bounds and redaction being idempotent), and a key the client sends only in a later
    exchange is redacted from the earlier ones that quoted it."""
    from conformance.model import RunReport
    from conformance.redact import REDACTED, Redactor
    from conformance.report.evidence import report_document

    later_key = "test-key-" + secrets.token_hex(16)
    quoting = capture()
    quoting.request_body[:] = json.dumps({"model": "m", "max_tokens": 16, "messages": [later_key]}).encode()
    sending = capture()
    sending.request_headers = [(b"x-api-key", later_key.encode()), *sending.request_headers[1:]]
    proxy, _ = session(tmp_path)
    for taken in (quoting, capture(), sending):
        proxy.submit(taken)
    _, paths = proxy.close()
    text = paths["json"].read_text(encoding="utf-8")
    assert later_key not in text and REDACTED in json.dumps(json.loads(text)["results"][0])
    document = json.loads(text)
    assert report_document(RunReport.from_dict(document), Redactor()) == document


def test_sync_waits_for_what_was_posted_before_it_not_for_traffic_that_keeps_coming(tmp_path: Path) -> None:
    """Writing the reports on request (SIGUSR1, --flush-every) waits for the exchanges judged so far, though
    the client never pauses and some exchange is always waiting for its verdict."""
    import threading

    from conformance.proxy.judge_process import JudgeProcess, SessionFiles
    from conformance.redact import Redactor
    from conformance.transport import Limits

    files = SessionFiles(tmp_path / "spool", tmp_path / "results.jsonl")
    judged_before: list[int] = []
    judge = JudgeProcess(Limits(), None, Redactor(), files)
    judge.start()
    stop, posted = threading.Event(), [0]

    def traffic() -> None:
        while not stop.is_set():
            posted[0] += 1
            judge.post(posted[0], capture())
            time.sleep(0.001)

    client = threading.Thread(target=traffic)
    syncing = threading.Thread(target=lambda: (judge.sync(), judged_before.append(posted[0])))
    try:
        client.start()
        while posted[0] < 50:
            time.sleep(0.01)
        syncing.start()
        syncing.join(JUDGED_IN_TIME)
        assert not syncing.is_alive() and judged_before
        assert judge.recorded >= 50
    finally:
        stop.set()
        client.join()
        judge.close()
    assert judge.recorded == posted[0]


def test_a_judging_process_whose_proxy_has_gone_ends_quietly(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """An acknowledgement the proxy no longer reads (it asked, then stopped) ends the judging process with no
    traceback on the proxy's stderr."""
    from conformance.proxy.judge_process import _SYNC, SessionFiles, _serve
    from conformance.report.evidence import RUN_BUDGET_CHARS
    from conformance.transport import Limits

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    files = SessionFiles(tmp_path / "spool", tmp_path / "results.jsonl")
    state = ([], frozenset(), RUN_BUDGET_CHARS)
    process = context.Process(target=_serve, args=(theirs, Limits(), None, state, files, 0))
    process.start()
    theirs.close()
    ours.send_bytes(_SYNC)
    ours.close()
    process.join(JUDGED_IN_TIME)
    assert process.exitcode == 0
    assert "Traceback" not in capfd.readouterr().err
