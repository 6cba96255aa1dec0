"""Interrupts keep results: SIGINT or SIGTERM in the middle of `conformance run` (a subprocess against a
slow loopback target) cancels what is in flight, writes a valid partial report and exits 130 or 143;
--out never keeps an earlier run's report. A key the target rejects stops the run early."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conformance.cases import load_cases, select, tiers_up_to
from conformance.reference import ReferenceServer, create_app
from conformance.runner import KEY_CHECK_CASES

PROGRESS = re.compile(r"^\[\s*\d+/\d+\]")


class Slow:
    """The reference app, answering each request after `delay` seconds."""

    def __init__(self, app, delay: float) -> None:
        self.app = app
        self.delay = delay

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(self.delay)
        await self.app(scope, receive, send)


def start_run(base_url: str, key: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "conformance", "run", "--base-url", base_url, "--api-key", key]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [*command, "--out", str(out), "--tier", "core", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_cases(process: subprocess.Popen[str], count: int) -> list[str]:
    """Read the run's output until `count` cases have finished; the lines read."""
    lines: list[str] = []
    timer = threading.Timer(120, process.kill)  # a hang guard, not a timing
    timer.start()
    try:
        assert process.stdout is not None
        while sum(1 for line in lines if PROGRESS.match(line)) < count:
            line = process.stdout.readline()
            assert line, f"the run ended early: {''.join(lines)}"
            lines.append(line)
    finally:
        timer.cancel()
    return lines


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_writes_a_partial_report_and_exits_with_its_code(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"stale": true}')
    (out / "junit.xml").write_text("<stale/>")
    key = "interrupt-" + secrets.token_hex(16)
    planned = {case.id for case in select(load_cases(), tiers_up_to("core"))}
    with ReferenceServer(app=Slow(create_app(key), delay=0.3)) as server:
        process = start_run(server.base_url, key, out, "--concurrency", "2")
        try:
            wait_for_cases(process, 3)
            assert not (out / "report.json").exists(), "an earlier run's report was left in --out"
            process.send_signal(sig)
            stdout, stderr = process.communicate(timeout=60)
        finally:
            process.kill()
    assert process.returncode == code, stderr
    assert "Traceback" not in stdout + stderr
    assert f"INTERRUPTED ({sig.name})" in stdout
    report = json.loads((out / "report.json").read_text(), parse_constant=lambda name: pytest.fail(name))
    assert report["interrupted"] == sig.name
    finished = {result["id"] for result in report["results"]}
    assert len(finished) >= 3 and report["not_run"]
    assert finished | set(report["not_run"]) == planned and not finished & set(report["not_run"])
    assert sum(report["summary"][k] for k in ("passed", "failed", "deviation", "unsupported", "skipped", "error")) == (
        len(finished)
    )
    assert "<stale/>" not in (out / "junit.xml").read_text()


SECOND_SIGNAL = """
import os, signal, time
from conformance.interrupts import Interrupts
from conformance.runner import Stop

stop = Stop()
with Interrupts(stop):
    os.kill(os.getpid(), signal.SIGINT)
    print("stopping:", stop.reason, flush=True)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(60)
print("never printed", flush=True)
"""


def test_a_second_sigint_exits_at_once() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", SECOND_SIGNAL], capture_output=True, text=True, timeout=30, check=False
    )
    assert completed.returncode == 130
    assert completed.stdout == "stopping: SIGINT\n"
    assert completed.stderr == "conformance: SIGINT again: exiting at once\n"


def test_a_rejected_key_stops_the_run_early(tmp_path: Path) -> None:
    selection = ["--concurrency", "1", "-k", "text.*,streaming.*"]
    with ReferenceServer(api_key="right-" + secrets.token_hex(16)) as server:
        command = [sys.executable, "-m", "conformance", "run", "--base-url", server.base_url, "--out", str(tmp_path)]
        completed = subprocess.run(
            [*command, "--api-key", "wrong-" + secrets.token_hex(16), *selection],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert completed.returncode == 1, completed.stderr
    assert completed.stdout.count("the target rejected the key on the first") == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["interrupted"].startswith("the target rejected the key")
    # The fourth rejection stops the run as its answer comes, before another case can send; that case is judged.
    assert len(report["results"]) == KEY_CHECK_CASES and report["not_run"]
    for result in report["results"]:
        assert result["outcome"] == "error"
        assert result["reason"].startswith("the target rejected the key: 401 authentication_error")
