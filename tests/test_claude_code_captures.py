"""The reference server accepts every request the real Claude Code 2.1.197 sent, as captured in
../shared/reference/clients/ (skipped where that folder is absent): the structures the
claude-code case set imitates are the real ones, not our reading of them."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from conformance.reference import ReferenceServer

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "clients" / "claude-code-2.1.197"
KEY = "capture-test-key-0123456789"
# Headers of the capture that are the connection's, or redacted: the test sends its own.
NOT_REPLAYED = {"host", "content-length", "x-api-key", "authorization", "connection", "accept-encoding"}


def captures() -> list[Path]:
    return sorted(CAPTURES.glob("*.json")) if CAPTURES.is_dir() else []


pytestmark = pytest.mark.skipif(not captures(), reason=f"no Claude Code captures at {CAPTURES}")


@pytest.fixture(scope="module")
def server() -> str:
    with ReferenceServer(api_key=KEY) as reference:
        yield reference.base_url


def replay(server: str, capture: dict, drop: frozenset[str] = frozenset()) -> httpx.Response:
    headers = {k: v for k, v in capture["headers"].items() if k.lower() not in NOT_REPLAYED | drop}
    headers["x-api-key"] = KEY
    return httpx.request(capture["method"], server + capture["path"], headers=headers, json=capture["body"], timeout=30)


@pytest.mark.parametrize("path", captures(), ids=lambda path: path.stem)
def test_every_captured_request_is_accepted(server: str, path: Path) -> None:
    capture = json.loads(path.read_text())
    answer = replay(server, capture)
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["content-type"].startswith("text/event-stream")


def test_the_system_role_is_accepted_without_its_beta(server: str) -> None:
    """The GA `role: system` message needs no beta header (the official SDK's types since 2.0.0)."""
    with_system_role = [
        capture
        for capture in (json.loads(path.read_text()) for path in captures())
        if any(message.get("role") == "system" for message in capture["body"]["messages"])
    ]
    assert with_system_role, "no capture carries a role: system message"
    answer = replay(server, with_system_role[0], drop=frozenset({"anthropic-beta"}))
    assert answer.status_code == 200, answer.text[:500]
