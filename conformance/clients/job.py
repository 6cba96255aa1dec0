"""The clients job: install each client, start `conformance serve` and, per client, `conformance
proxy` in front of it (on loopback, free ports, stopped by process group), drive every scenario of
the client through the proxy, and judge the scenarios from the proxy's report."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conformance.clients import install
from conformance.clients.judging import (
    ClientRun,
    ScenarioOutcome,
    claude_code_problems,
    judge_client,
    script_problems,
)
from conformance.clients.scenarios import (
    DEFAULT_MODEL,
    NOTES_FILE,
    NOTES_TEXT,
    TAG_HEADER,
    Scenario,
    scenarios_of,
)
from conformance.clients.versions import CLAUDE_CODE, PYTHON_SDK, TYPESCRIPT_SDK, Client
from conformance.peers.process import LOOPBACK, LoopbackServer, ManagedProcess, PeerError, free_port, log_tail
from conformance.redact import REDACTED
from conformance.report import load_report

DEFAULT_OUT = Path("reports/clients")
# The reference answers at once; a client that takes longer than this is stuck.
CLIENT_TIMEOUT = 180.0
STARTUP_TIMEOUT = 30.0
# How long the proxy may take, once asked to stop, to judge what is queued and write its report.
PROXY_STOP_GRACE = 60.0
SCRIPTS = Path(__file__).parent
# Keeps Claude Code from calling anywhere but ANTHROPIC_BASE_URL, and from updating itself.
QUIET_CLAUDE_CODE = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
}


class ReferenceProcess(LoopbackServer):
    """`conformance serve` on a free loopback port, accepting only `api_key`."""

    startup_timeout = STARTUP_TIMEOUT

    def __init__(self, api_key: str, log_path: Path) -> None:
        port = free_port()
        argv = [sys.executable, "-m", "conformance", "serve", "--host", LOOPBACK, "--port", str(port)]
        super().__init__("conformance serve", [*argv, "--api-key", api_key], log_path, port)


class ProxyProcess(ManagedProcess):
    """`conformance proxy` on a free loopback port in front of `upstream`, writing to `out`.

    Ready once its port accepts connections: an HTTP probe would be relayed and recorded as traffic.
    """

    def __init__(self, upstream: str, out: Path, log_path: Path) -> None:
        self.port = free_port()
        argv = [sys.executable, "-m", "conformance", "proxy", "--upstream", upstream]
        argv += ["--listen", f"{LOOPBACK}:{self.port}", "--out", str(out)]
        super().__init__("conformance proxy", argv, log_path)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> ProxyProcess:
        super().start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise PeerError(f"{self.name} exited while starting:\n{log_tail(self.log_path)}")
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=1.0):
                    return self
            except OSError:
                time.sleep(0.2)
        raise PeerError(f"{self.name} did not listen on port {self.port} within {STARTUP_TIMEOUT:g} s")

    def stop(self, grace: float = PROXY_STOP_GRACE) -> None:
        """Stopped with SIGTERM, it judges what is still queued and writes its report a last time."""
        super().stop(grace)


@dataclass(frozen=True)
class InstalledClient:
    """A client ready to run: the version installed and the command line every scenario starts with."""

    client: Client
    version: str
    command: tuple[str, ...]

    def argv(self, scenario: Scenario) -> list[str]:
        if self.client is CLAUDE_CODE:
            model = [] if scenario.model == DEFAULT_MODEL else ["--model", scenario.model]
            return [*self.command, "-p", scenario.prompt, "--output-format", "json", *model, *scenario.arguments]
        return [*self.command, scenario.name, scenario.model]


def install_client(client: Client, version: str, workdir: Path, log_path: Path) -> InstalledClient:
    """Install `client` at `version` into `workdir` (once) and say how to run it."""
    scripts = {TYPESCRIPT_SDK.name: SCRIPTS / "sdk_typescript.mjs", PYTHON_SDK.name: SCRIPTS / "sdk_python.py"}
    return InstalledClient(client, version, install.client_command(client, version, workdir, log_path, scripts))


def run_scenario(installed: InstalledClient, scenario: Scenario, base_url: str, api_key: str, out: Path) -> ClientRun:
    """Run one scenario in a throwaway HOME and working directory, its output kept in
    out/<scenario>-<model>.log (with the key, should a client print it, replaced)."""
    log_path = out / f"{scenario.name}-{scenario.model}.log"
    with tempfile.TemporaryDirectory(prefix="conformance-client-") as scratch:
        home, work = Path(scratch, "home"), Path(scratch, "work")
        home.mkdir()
        work.mkdir()
        (work / NOTES_FILE).write_text(NOTES_TEXT)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": api_key,
            "ANTHROPIC_CUSTOM_HEADERS": f"{TAG_HEADER}: {scenario.tag}",
            **QUIET_CLAUDE_CODE,
        }
        with ManagedProcess(scenario.tag, installed.argv(scenario), log_path, env=env, cwd=work) as process:
            assert process.process is not None
            try:
                returncode: int | None = process.process.wait(timeout=CLIENT_TIMEOUT)
            except subprocess.TimeoutExpired:
                returncode = None  # stopped with its process group on leaving the block
    output = log_path.read_text(encoding="utf-8", errors="replace")
    if api_key in output:
        output = output.replace(api_key, REDACTED)
        log_path.write_text(output, encoding="utf-8")
    return ClientRun(returncode, output, CLIENT_TIMEOUT)


def run_client(installed: InstalledClient, reference_url: str, api_key: str, out: Path) -> list[ScenarioOutcome]:
    """Every scenario of one client through its own proxy (reports in out/<client>/), judged."""
    client_out = out / installed.client.name
    client_out.mkdir(parents=True, exist_ok=True)
    (client_out / "report.json").unlink(missing_ok=True)  # never judge a previous run's report
    runs: list[tuple[Scenario, list[str]]] = []
    with ProxyProcess(reference_url, client_out, client_out / "proxy.log") as proxy:
        for scenario in scenarios_of(installed.client.name):
            run = run_scenario(installed, scenario, proxy.base_url, api_key, client_out)
            problems = claude_code_problems(run) if installed.client is CLAUDE_CODE else script_problems(run)
            runs.append((scenario, problems))
    # The proxy writes its final report when stopped, after judging everything it relayed.
    try:
        report = load_report(client_out / "report.json")
    except (OSError, ValueError) as exc:
        raise PeerError(f"the proxy wrote no report for {installed.client.name}: {exc}") from None
    return judge_client(installed.client.name, installed.version, runs, report)


def run_job(
    clients: list[Client],
    versions: dict[str, str],
    out: Path,
    workdir: Path,
    progress: Callable[[str], None] = lambda line: None,
) -> list[ScenarioOutcome]:
    """Install every client, then drive each through its own proxy into one reference server;
    `progress` hears one line per step."""
    out, workdir = out.resolve(), workdir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    installed = []
    for client in clients:
        progress(f"installing {client.package} {versions[client.name]} into {workdir}")
        log_path = out / f"{client.name}-install.log"
        installed.append(install_client(client, versions[client.name], workdir, log_path))
    api_key = "clients-" + secrets.token_hex(16)
    outcomes: list[ScenarioOutcome] = []
    with ReferenceProcess(api_key, out / "serve.log") as reference:
        for each in installed:
            progress(f"running {each.client.name} {each.version} through the proxy (reports: {out / each.client.name})")
            outcomes += run_client(each, reference.base_url, api_key, out)
    return outcomes
