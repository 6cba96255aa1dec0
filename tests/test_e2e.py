"""End to end, as a user runs it: `conformance run` against the reference server and against a
deliberately broken variant of it, through the real CLI entry point and real loopback HTTP."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.reference import ReferenceServer, create_app


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_run_against_the_reference_server_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--out", str(tmp_path)]) == 0
    data = report(tmp_path)
    assert len(data["results"]) >= 30
    assert data["summary"]["failed"] == 0 and data["summary"]["error"] == 0
    assert data["target"]["reference"] is True
    for name in ("junit.xml", "report.html"):
        assert (tmp_path / name).stat().st_size > 0
    assert "Traceback" not in capsys.readouterr().err


class BrokenVariant:
    """The reference app, broken the way real gateways break: `data: [DONE]` after message_stop,
    and OpenAI-shaped error bodies."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        if start["status"] >= 400:
            error = json.loads(body)["error"]
            body = json.dumps({"error": {"message": error["message"], "type": error["type"], "code": None}}).encode()
        elif dict(headers).get(b"content-type", b"").startswith(b"text/event-stream"):
            body += b"data: [DONE]\n\n"
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await send({"type": "http.response.body", "body": body})


def test_run_against_a_broken_variant_fails_with_the_expected_findings(tmp_path: Path) -> None:
    key = "broken-variant-key"
    with ReferenceServer(app=BrokenVariant(create_app(key))) as server:
        code = main(["run", "--base-url", server.base_url, "--api-key", key, "--out", str(tmp_path)])
    assert code == 1
    results = {result["id"]: result for result in report(tmp_path)["results"]}
    assert results["streaming.text"]["outcome"] == "failed"
    assert "stream.done-sentinel" in {f["check"] for f in results["streaming.text"]["findings"]}
    assert results["errors.missing-max-tokens"]["outcome"] == "failed"
    assert "errors.envelope" in {f["check"] for f in results["errors.missing-max-tokens"]["findings"]}
    assert results["text.string-content"]["outcome"] == "passed"


def test_unreachable_target_is_an_error_per_case_not_a_traceback(tmp_path: Path, capsys) -> None:
    argv = ["run", "--base-url", "http://127.0.0.1:9", "--out", str(tmp_path), "-k", "text.*", "--timeout", "5"]
    code = main([*argv, "--no-preflight"])
    assert code == 1
    data = report(tmp_path)
    assert data["results"] and all(result["outcome"] == "error" for result in data["results"])
    assert all("connection failed" in result["reason"] for result in data["results"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err


def test_api_key_never_reaches_a_report(tmp_path: Path) -> None:
    key = "test-key-" + secrets.token_hex(16)  # made per run: no key-like literal in the repository
    with ReferenceServer(api_key=key) as server:
        main(["run", "--base-url", server.base_url, "--api-key", key, "--out", str(tmp_path), "-k", "text.*"])
    for path in tmp_path.iterdir():
        assert key not in path.read_text()


@pytest.mark.parametrize("argv", [["run", "--concurrency", "0"], ["run", "--base-url", "ftp://x"], ["nope"]])
def test_usage_errors_exit_2(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        code = main(argv)
        raise SystemExit(code)
    assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
