"""The clients, each installed on demand (pinned, into the clients cache with the clients job's
installers) and each made to perform many replayed calls: the SDKs in one process per client
(replay_python.py, replay_typescript.mjs), Claude Code as `claude -p` per call, two at a time,
with its retries and turns bounded."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.clients import install
from conformance.clients.job import QUIET_CLAUDE_CODE
from conformance.clients.versions import CLAUDE_CODE, PYTHON_SDK, TYPESCRIPT_SDK, Client
from conformance.impact.calls import Call
from conformance.impact.oracle import Observed
from conformance.peers.process import ManagedProcess
from conformance.report.evidence import one_line

SCRIPTS = Path(__file__).parent
# Per call: the SDK scripts' own timeout is 10 s; a process gets this much per call on top of its start.
SECONDS_PER_CALL = 12.0
START_SECONDS = 30.0
# Claude Code per call: a bound on the whole `claude -p` (its retries are off, one turn).
CLAUDE_CODE_TIMEOUT = 60.0
CLAUDE_CODE_PARALLEL = 2
CLAUDE_CODE_PROMPT = "Reply with exactly: PONG"
# Claude Code makes one attempt per request and one turn per run (the replay answers the same every
# time), and no non-streamed retry of a failed stream (the replay holds no answer to one).
BOUNDED_CLAUDE_CODE = {
    **QUIET_CLAUDE_CODE,
    "CLAUDE_CODE_MAX_RETRIES": "0",
    "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1",
    "API_TIMEOUT_MS": "20000",
}

UrlFor = Callable[[str], str]


@dataclass(frozen=True)
class Runner:
    """An installed client and how it performs a batch of calls."""

    client: Client
    command: tuple[str, ...]

    def run(self, calls: Sequence[Call], url_for: UrlFor, scratch: Path) -> dict[str, Observed]:
        if self.client is CLAUDE_CODE:
            return _run_claude_code(self.command, calls, url_for, scratch)
        return _run_script(self.command, calls, url_for, scratch / f"{self.client.name}.log")


def install_runner(client: Client, version: str, workdir: Path, log_path: Path) -> Runner:
    """Install `client` at `version` into `workdir` (once); PeerError says why it could not be."""
    scripts = {TYPESCRIPT_SDK.name: SCRIPTS / "replay_typescript.mjs", PYTHON_SDK.name: SCRIPTS / "replay_python.py"}
    return Runner(client, install.client_command(client, version, workdir, log_path, scripts))


def parse_lines(output: str) -> dict[str, Observed]:
    """The scripts' JSON lines, by call key."""
    observed: dict[str, Observed] = {}
    for line in output.splitlines():
        try:
            data: Any = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "key" in data:
            status = data.get("status")
            observed[str(data["key"])] = Observed(
                message=data.get("message") if isinstance(data.get("message"), dict) else None,
                error=data.get("error"),
                status=status if isinstance(status, int) else None,
            )
    return observed


def _run_script(command: Sequence[str], calls: Sequence[Call], url_for: UrlFor, log_path: Path) -> dict[str, Observed]:
    jobs_path = log_path.with_suffix(".calls.json")
    jobs_path.write_text(json.dumps([call.job(url_for(call.key)) for call in calls]), encoding="utf-8")
    timeout = START_SECONDS + SECONDS_PER_CALL * len(calls)
    with ManagedProcess(log_path.stem, [*command, str(jobs_path)], log_path) as process:
        assert process.process is not None
        with contextlib.suppress(subprocess.TimeoutExpired):  # stopped with its group on leaving the block
            process.process.wait(timeout=timeout)
    observed = parse_lines(log_path.read_text(encoding="utf-8", errors="replace"))
    # A call with no line: the process hung on it (or died before it) within the bound.
    return {call.key: observed.get(call.key, Observed(timed_out=True)) for call in calls}


def claude_code_observation(returncode: int | None, output: str) -> Observed:
    """What `claude -p --output-format json` made of the answer: its result text, stop_reason and usage,
    or its error (the result text of an error run)."""
    if returncode is None:
        return Observed(timed_out=True)
    start = output.find("{")
    try:
        data: Any = json.loads(output[start:]) if start >= 0 else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Observed(error=one_line(output.strip() or f"exit code {returncode}, no output"))
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    if data.get("terminal_reason") == "api_error" or (data.get("is_error") and data.get("subtype") == "success"):
        return Observed(error=one_line(str(data.get("result") or data.get("errors") or "is_error")))
    return Observed(
        message={
            "text": data.get("result") or "",
            "tools": [],
            "stop_reason": data.get("stop_reason"),
            "usage": {"input_tokens": usage.get("input_tokens"), "output_tokens": usage.get("output_tokens")},
        }
    )


def _run_claude_code(
    command: Sequence[str], calls: Sequence[Call], url_for: UrlFor, scratch: Path
) -> dict[str, Observed]:
    def one(call: Call) -> Observed:
        log_path = scratch / f"claude-code-{call.key}.log"
        with tempfile.TemporaryDirectory(prefix="conformance-impact-") as temporary:
            env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": temporary,
                "ANTHROPIC_BASE_URL": url_for(call.key),
                "ANTHROPIC_API_KEY": "replay",
                **BOUNDED_CLAUDE_CODE,
            }
            argv = [*command, "-p", CLAUDE_CODE_PROMPT, "--output-format", "json", "--max-turns", "1"]
            with ManagedProcess(f"claude-code {call.key}", argv, log_path, env=env, cwd=Path(temporary)) as process:
                assert process.process is not None
                try:
                    returncode: int | None = process.process.wait(timeout=CLAUDE_CODE_TIMEOUT)
                except subprocess.TimeoutExpired:
                    returncode = None
        return claude_code_observation(returncode, log_path.read_text(encoding="utf-8", errors="replace"))

    with ThreadPoolExecutor(CLAUDE_CODE_PARALLEL) as pool:
        return dict(zip([call.key for call in calls], pool.map(one, calls), strict=True))
