"""What `conformance run` shows while cases are in flight: a live display on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from conformance.cli import main
from conformance.cli import progress as progress_module
from conformance.cli.heartbeat import Heartbeat
from conformance.cli.progress import LiveProgress, interactive, run_progress
from conformance.model import CaseResult, Outcome
from conformance.report.console import ConsoleReporter

CASES = "count_tokens.basic,errors.missing-max-tokens"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_only_a_terminal_that_is_not_dumb_gets_the_live_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    assert interactive(_Tty()) and not interactive(io.StringIO())
    monkeypatch.setenv("TERM", "dumb")
    assert not interactive(_Tty())
    closed = _Tty()
    closed.close()
    assert not interactive(closed)


def test_a_run_not_on_a_terminal_keeps_the_plain_heartbeat(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entered: list[object] = []
    start = Heartbeat.__enter__
    monkeypatch.setattr(Heartbeat, "__enter__", lambda self: entered.append(self) or start(self))
    assert main(["run", "-k", CASES, "--out", str(tmp_path / "o")]) == 0
    assert len(entered) == 1  # the run starts it: a hanging case gets its status line
    assert "\x1b" not in capsys.readouterr().out


def test_the_live_display_counts_outcomes_and_lists_the_cases_running(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    printed: list[str] = []
    screen = Console(file=io.StringIO(), width=120, color_system=None)  # no terminal: draws only when asked
    progress = LiveProgress(lambda result: printed.append(result.id), 3, screen)
    with progress:
        progress.case_started("a.one")
        progress.case_started("b.two")
        clock[0] = 103.0
        screen.print(progress.render())
        progress.case_done(CaseResult(id="b.two", feature="f", outcome=Outcome.FAILED))
        progress.case_started("c.three")
        clock[0] = 105.0
        screen.print(progress.render())
    before, after = screen.file.getvalue().split("1/3 cases")  # type: ignore[attr-defined]
    assert "0/3 cases  0 passed  0 failed  0 error  3s\n  running a.one  3s\n  running b.two  3s\n" in before
    assert after == "  0 passed  1 failed  0 error  5s\n  running a.one  5s\n  running c.three  2s\n"
    assert printed == ["b.two"]


def test_the_live_display_is_erased_when_the_run_ends_even_on_an_error() -> None:
    screen = Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)
    with pytest.raises(RuntimeError), LiveProgress(lambda result: None, 1, console=screen) as progress:
        progress.case_started("a.one")
        raise RuntimeError("boom")
    shown = screen.file.getvalue()  # type: ignore[attr-defined]
    assert "running a.one" in shown
    assert shown.endswith("\x1b[1A\x1b[2K")  # the cursor back up over the display's last line, erased
    assert "\x1b[?25l" not in shown.rsplit("\x1b[?25h", 1)[1]  # the cursor is shown at the end


def test_run_progress_picks_the_live_display_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(sys, "stdout", _Tty())
    assert isinstance(run_progress(ConsoleReporter(), []), LiveProgress)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert isinstance(run_progress(ConsoleReporter(), []), Heartbeat)


def test_a_run_on_a_terminal_shows_its_progress_then_the_usual_summary(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    process = subprocess.Popen(
        [sys.executable, "-m", "conformance", "run", "-k", CASES, "--out", str(tmp_path / "o")],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's other end closed: the run is over
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    shown = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode())  # colours off, cursor moves kept
    assert "0/2 cases  0 passed  0 failed  0 error" in shown and "running count_tokens.basic" in shown
    # Each case's line starts a line of its own: after a newline, or where the display was erased.
    assert len(re.findall(r"(?:\n|\x1b\[2K)\[\d/2\] PASSED", shown)) == len(re.findall(r"\[\d/2\] PASSED", shown)) == 2
    assert "Traceback" not in shown
    last = shown.rsplit("Summary", 1)[1]
    assert "cases" not in last.split("Reports:")[0].split("total")[0]  # the display erased, not left in the table
    assert "PASS" in last and "2 passed" in last


def test_the_runner_tells_each_case_as_it_starts_and_never_sends_more_than_the_concurrency() -> None:
    """Each case is told as it starts and before it is done; the target never has more requests of the
    run in flight than the concurrency (a case being judged holds no slot)."""
    import asyncio

    from conformance.cases import load_cases
    from conformance.reference import ReferenceServer, create_app
    from conformance.runner import run_suite
    from conformance.target import Target

    cases = [case for case in load_cases() if case.tier == "smoke"][:5]
    events: list[tuple[str, str]] = []
    in_flight = [0, 0]  # now, most
    app = create_app("progress-" + "k" * 8)

    async def counting(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return await app(scope, receive, send)
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        await asyncio.sleep(0.05)  # long enough for the requests of two slots to overlap
        try:
            return await app(scope, receive, send)
        finally:
            in_flight[0] -= 1

    with ReferenceServer(app=counting) as server:
        target = Target(base_url=server.base_url, api_key="progress-" + "k" * 8, reference=True)
        asyncio.run(
            run_suite(
                target,
                cases,
                concurrency=2,
                on_result=lambda result: events.append(("done", result.id)),
                on_start=lambda case_id: events.append(("start", case_id)),
            )
        )
    assert sorted(case_id for kind, case_id in events if kind == "start") == sorted(case.id for case in cases)
    assert all(events.index(("start", case.id)) < events.index(("done", case.id)) for case in cases)
    assert in_flight[1] == 2
