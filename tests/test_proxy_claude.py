"""Opt-in: the real Claude Code CLI through the proxy to the reference server. Runs only when
`claude` (npm @anthropic-ai/claude-code) is on PATH; see docs/how-to/proxy.md."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from conformance.model import Outcome
from conformance.reference import create_app
from tests.proxying import upstream_and_proxy

CLAUDE = shutil.which("claude")
KEY = "test-key-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository

pytestmark = pytest.mark.skipif(
    CLAUDE is None, reason="the claude CLI is not on PATH (npm i -g @anthropic-ai/claude-code)"
)


def test_claude_code_through_the_proxy_passes_every_check(tmp_path: Path) -> None:
    assert CLAUDE is not None
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "ANTHROPIC_API_KEY": KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    with upstream_and_proxy(create_app(KEY), tmp_path / "out") as (_, proxy):
        env["ANTHROPIC_BASE_URL"] = proxy.base_url
        done = subprocess.run(
            [CLAUDE, "-p", "Reply with exactly: hello from the proxy"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    report = proxy.report
    judged = [result for result in report.results if result.outcome is not Outcome.SKIPPED]
    assert judged, "Claude Code sent no Messages request through the proxy"
    assert all(result.outcome is Outcome.PASSED for result in judged), [(r.id, r.reason) for r in judged]
    assert KEY not in (tmp_path / "out" / "cassette.json").read_text()
