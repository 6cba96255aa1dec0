"""report.html: every exchange as curl, control characters made visible, a linked case clear of the filter bar."""

from __future__ import annotations

import html
import re
import secrets
import shutil
import subprocess

import pytest

from conformance.curl import curl_lines
from conformance.model import CaseResult, Exchange, Outcome, Request, RunReport, TargetInfo
from conformance.reference import ReferenceServer
from conformance.report.html import render_html
from tests.exchanges import message_exchange

KEY = "test-key-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository


def report_of(*results: CaseResult) -> RunReport:
    target = TargetInfo(base_url="http://gw.test", provider="anthropic", model="claude-haiku-4-5")
    return RunReport(
        target=target, started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:00:01Z", results=list(results)
    )


def result_with(exchange: Exchange) -> CaseResult:
    return CaseResult(id="text.nul", feature="text", outcome=Outcome.FAILED, exchanges=[exchange])


def test_every_exchange_has_its_curl_with_the_key_as_a_variable() -> None:
    exchange = message_exchange()
    exchange.request.headers["x-api-key"] = "[REDACTED]"
    page = html.unescape(render_html(report_of(result_with(exchange))))
    command = re.search(r"Copy as curl.*?<pre class=\"code\">(.*?)</pre>", page, re.S)
    assert command is not None
    assert '-H "x-api-key: $ANTHROPIC_API_KEY"' in command.group(1) and "[REDACTED]" not in command.group(1)
    assert f"curl -sS -N -X POST {exchange.request.url}" in command.group(1)


def test_a_nul_body_is_visible() -> None:
    page = render_html(report_of(result_with(message_exchange(text="\x00"))))
    assert '<pre class="code body">\u2400</pre>' in page


def test_a_linked_case_is_scrolled_clear_of_the_sticky_filters() -> None:
    page = render_html(report_of(result_with(message_exchange())))
    assert re.search(r"details\.case \{ scroll-margin-top: \d+px; \}", page)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_command_sends_the_request_the_server_accepts() -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi ' % \\ é"}]}
    with ReferenceServer(api_key=KEY) as server:
        sent = Request(
            "POST",
            server.base_url + "/v1/messages",
            {"anthropic-version": "2023-06-01", "content-type": "application/json", "x-api-key": "x"},
            body,
        )
        script = "\n".join(curl_lines(sent, "x-api-key"))
        done = subprocess.run(
            ["sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=30,
            env={"ANTHROPIC_API_KEY": KEY, "PATH": "/usr/bin:/bin"},
        )
    assert '"type":"message"' in done.stdout.replace(" ", ""), done.stdout + done.stderr
