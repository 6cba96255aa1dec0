"""No answer can crash a run, leak a key, exhaust memory or lose results.

Every misbehaviour of tests/hostile_targets.py is played against `conformance run` in a
subprocess, and the run must end with 0 or 1, no traceback, a strict-JSON report explaining every
case that did not pass, within bounds of time, memory and report size, and without a trace of
the run's API key anywhere it wrote. Interrupts, stale reports, a flaky target, extra secret
headers and `conformance proxy` in front of a hostile upstream are covered the same way.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.reference import ReferenceServer
from conformance.request_defaults import DEFAULT_MODEL
from tests.hostile import HostileServer
from tests.hostile_targets import (
    BY_NAME,
    CATALOGUE,
    MAX_SILENCE,
    MIB,
    Misbehaviour,
    Played,
    answers,
    gzip_bomb,
    new_canary,
    play_all,
    problems,
    run_argv,
    run_measured,
    running,
    strict_json,
)

# Cases the reference server passes, for the runs in front of it (about 100 requests).
REFERENCE_SELECTION = ("--tier", "core", "-k", "streaming*,errors*,text*,count_tokens*")
SLOW_CASES = ("--tier", "core", "-k", "text*,streaming*")
WAIT = 30.0


@pytest.fixture(scope="module")
def canary() -> str:
    return new_canary()


@pytest.fixture(scope="module")
def reference(canary: str) -> Iterator[ReferenceServer]:
    with ReferenceServer(api_key=canary) as server:
        yield server


@pytest.fixture(scope="module")
def hostile(reference: ReferenceServer) -> Iterator[HostileServer]:
    with HostileServer(answers(reference.base_url)) as server:
        yield server


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if not running(process) or time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def outcomes(report: dict[str, Any]) -> list[str]:
    """The outcomes of the report, `id=outcome`, for assertion messages."""
    return [f"{result['id']}={result['outcome']}" for result in report["results"]]


# --- the catalogue and its pieces ---------------------------------------------------------------


def test_the_catalogue_names_at_least_30_misbehaviours_and_some_legal_streams() -> None:
    assert len(CATALOGUE) >= 30
    assert len(BY_NAME) == len(CATALOGUE)
    assert {m.name for m in CATALOGUE if m.legal} >= {"legal-cr-line-ends", "legal-crlf-line-ends", "legal-bom"}


def test_the_gzip_bomb_is_one_valid_gzip_member_a_thousand_times_smaller() -> None:
    small = gzip_bomb(4 * MIB)
    assert gzip.decompress(small) == bytes(4 * MIB)  # CRC and length in the trailer agree
    assert len(gzip_bomb(64 * MIB)) < 64 * MIB // 500


def test_problems_names_every_bound_a_run_broke(tmp_path: Path) -> None:
    key = new_canary()
    out, console = tmp_path / "out", tmp_path / "console"
    out.mkdir()
    console.mkdir()
    (console / "stdout.txt").write_text("Traceback (most recent call last):\n  boom\n")
    (console / "stderr.txt").write_text("")
    (out / "junit.xml").write_text(f"<x>{key[:20]}</x><y>{key}</y>")
    result = {"id": "a.case", "outcome": "failed", "reason": "", "findings": [], "exchanges": []}
    (out / "report.json").write_text(json.dumps({"results": [result], "usage": float("nan")}))
    played = Played(exit_code=3, wall=1.0, peak_rss_mb=900.0, out=out, console=console)
    found = problems(played, [key])
    assert [line.split(" ")[0] for line in found] == ["exit", "a", "peak", "secret", "report.json"], found
    (out / "report.json").write_text(json.dumps({"results": [result]}))
    assert problems(Played(0, 1.0, 10.0, out, console), [])[-1] == "a.case is failed without a finding or reason"
    assert played.hits(key) == [str(out / "junit.xml")]


def test_the_hostile_server_plays_each_answer_under_its_own_path(hostile: HostileServer, canary: str) -> None:
    headers = {"x-api-key": canary, "anthropic-version": "2023-06-01"}
    body = {"model": DEFAULT_MODEL, "max_tokens": 16, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    answer = httpx.post(hostile.url("key-in-header-name") + "/v1/messages", json=body, headers=headers)
    assert answer.headers[canary] == "seen" and "message_stop" in answer.text
    relayed = httpx.post(hostile.url("reference") + "/v1/messages", json=body, headers=headers)
    assert relayed.status_code == 200 and "message_stop" in relayed.text
    with pytest.raises(httpx.TransportError):
        httpx.post(hostile.url("reset-mid-headers") + "/v1/messages", json=body, headers=headers)


# --- every misbehaviour against `conformance run` ---------------------------------------------------


BATTERY_TEST = "test_a_run_survives"


@pytest.fixture(scope="session")
def battery(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every selected misbehaviour played once per session, several runs at a time.

    Under pytest-xdist the first worker to get here plays them all (behind a file lock in the
    session's shared temporary directory) and the others read what it recorded.
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    index = shared / "hostile-battery" / "played.json"
    with (shared / "hostile-battery.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not index.exists():
            chosen = {
                item.callspec.params["misbehaviour"].name
                for item in request.session.items
                if item.originalname == BATTERY_TEST and hasattr(item, "callspec")
            }
            key = new_canary()
            with ReferenceServer(api_key=key) as reference, HostileServer(answers(reference.base_url)) as server:
                played = play_all([m for m in CATALOGUE if m.name in chosen], server.url, key, index.parent)
                requests = {name: server.received(name) for name in played}
            record = {
                "canary": key,
                "played": {name: run.to_dict() for name, run in played.items()},
                "requests": requests,
            }
            index.write_text(json.dumps(record), encoding="utf-8")
    return json.loads(index.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "misbehaviour", [pytest.param(m, id=m.name, marks=[pytest.mark.slow] if m.slow else []) for m in CATALOGUE]
)
def test_a_run_survives(misbehaviour: Misbehaviour, battery: dict[str, Any]) -> None:
    played = Played.from_dict(battery["played"][misbehaviour.name])
    found = problems(played, [battery["canary"]], must_pass=misbehaviour.legal)
    assert not found, "; ".join(found)


@pytest.mark.parametrize("name", ["redirect-loop", "redirect-other-host"])
def test_no_redirect_is_followed(name: str, battery: dict[str, Any]) -> None:
    if name not in battery["played"]:
        pytest.skip(f"{name} was not played in this session")
    played = Played.from_dict(battery["played"][name])
    report = strict_json(played.report.read_text(encoding="utf-8"))
    statuses = [(e.get("response") or {}).get("status") for r in report["results"] for e in r["exchanges"]]
    assert statuses and set(statuses) == {307}, statuses
    # One request per case, and the run's pre-flight probe of the Messages endpoint.
    assert battery["requests"][name] == len(BY_NAME[name].cases) + 1


# --- interrupts and stale reports -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code", "name"), [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")])
def test_an_interrupted_run_writes_a_partial_report(
    signum: int, code: int, name: str, hostile: HostileServer, canary: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = run_argv(hostile.url("slow"), canary, out, "--concurrency", "1", *SLOW_CASES)
    before = hostile.received("slow")

    def interrupt(process: subprocess.Popen[bytes]) -> None:
        # The pre-flight probe, then one case at a time of at most two requests each: by the sixth
        # request two cases have finished.
        wait_until(lambda: hostile.received("slow") >= before + 6, process, "the sixth request")
        process.send_signal(signum)

    played = run_measured(argv, out, tmp_path / "console", during=interrupt)
    assert played.exit_code == code, played.stderr[-2000:]
    found = problems(played, [canary], exit_codes=(code,))
    assert not found, "; ".join(found)
    report = strict_json(played.report.read_text(encoding="utf-8"))
    assert report.get("interrupted") == name
    assert len(report["results"]) >= 2 and {r["outcome"] for r in report["results"]} == {"passed"}
    assert report.get("not_run"), "the cases that never ran are listed"


def test_a_stale_report_is_never_left_in_out(hostile: HostileServer, canary: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale = out / "report.json"
    stale.write_text(json.dumps({"schema_version": 1, "target": {"base_url": "stale"}, "results": []}))
    argv = run_argv(hostile.url("slow"), canary, out, "--concurrency", "1", *SLOW_CASES)
    before = hostile.received("slow")

    def kill_once_sending(process: subprocess.Popen[bytes]) -> None:
        wait_until(lambda: hostile.received("slow") > before, process, "the first request")
        process.kill()  # no chance to write anything

    played = run_measured(argv, out, tmp_path / "console", during=kill_once_sending)
    assert played.exit_code == -signal.SIGKILL
    assert not stale.exists() or "stale" not in stale.read_text(encoding="utf-8")


# --- transient trouble -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_flaky_target_fails_the_same_cases_as_a_clean_one(
    hostile: HostileServer, reference: ReferenceServer, canary: str, tmp_path: Path
) -> None:
    failed: dict[str, set[str]] = {}
    retried: dict[str, list[str]] = {}
    for name, url in (("clean", reference.base_url), ("flaky", hostile.url("flaky"))):
        out = tmp_path / name / "out"
        argv = run_argv(url, canary, out, "--concurrency", "2", "--retries", "3", *REFERENCE_SELECTION)
        played = run_measured(argv, out, tmp_path / name / "console")
        found = problems(played, [canary])
        assert not found, f"{name}: " + "; ".join(found)
        report = strict_json(played.report.read_text(encoding="utf-8"))
        failed[name] = {r["id"] for r in report["results"] if r["outcome"] in ("failed", "error")}
        retried[name] = [r["id"] for r in report["results"] if r.get("attempts", 1) > 1]
    assert hostile.answered("flaky") >= 50  # so about ten answers were faults
    assert retried["flaky"], "the faults were retried"
    assert failed["flaky"] == failed["clean"]


# --- secrets in extra headers ------------------------------------------------------------------------


def test_an_extra_header_value_is_a_secret(hostile: HostileServer, canary: str, tmp_path: Path) -> None:
    portkey = new_canary()
    out = tmp_path / "out"
    cases = ("streaming.structure", "count_tokens.basic")
    extra = ("--header", f"x-portkey-api-key:{portkey}")
    argv = run_argv(hostile.url("echo-request-headers"), canary, out, *extra, cases=cases)
    played = run_measured(argv, out, tmp_path / "console")
    found = problems(played, [canary, portkey])
    assert not found, "; ".join(found)


def test_a_public_header_value_is_reported(hostile: HostileServer, canary: str, tmp_path: Path) -> None:
    trace = new_canary()
    out = tmp_path / "out"
    extra = ("--header", f"x-trace-id:{trace}", "--public-header", "x-trace-id")
    argv = run_argv(hostile.url("echo-request-headers"), canary, out, *extra, cases=["count_tokens.basic"])
    played = run_measured(argv, out, tmp_path / "console")
    found = problems(played, [canary])
    assert not found, "; ".join(found)
    assert played.hits(trace), "a public header is shown as sent"


# --- conformance proxy in front of a hostile upstream --------------------------------------------------

PROXIED = [
    # (misbehaviour, whether its exchange cannot be judged a pass: the proxy must exit 1)
    ("reset-mid-stream", True),
    ("garbage-not-http", True),
    ("gzip-bomb", True),
    ("silence-after-headers", True),
    ("json-nested-100000", True),
    ("key-in-header-name", False),
    ("key-in-split-deltas", False),
    ("key-in-error-message", True),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _exchange(client: httpx.Client, url: str, body: dict[str, Any]) -> bytes:
    """Send a request through the proxy and read at most 1 MB of the answer, whatever happens."""
    received = bytearray()
    try:
        with client.stream("POST", url, json=body) as response:
            for chunk in response.iter_raw():
                received.extend(chunk)
                if len(received) > MIB:
                    break
    except httpx.HTTPError:
        pass
    return bytes(received)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "unjudgeable"), PROXIED, ids=[name for name, _ in PROXIED])
def test_the_proxy_relays_survives_and_judges_the_next_exchange(
    name: str, unjudgeable: bool, hostile: HostileServer, canary: str, tmp_path: Path
) -> None:
    port = _free_port()
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "conformance", "proxy", "--listen", f"127.0.0.1:{port}", "--out", str(out)]
    argv += ["--upstream", hostile.url(f"once-{name}"), "--max-silence", f"{MAX_SILENCE:g}"]
    body = {"model": DEFAULT_MODEL, "max_tokens": 16, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    headers = {"x-api-key": canary, "anthropic-version": "2023-06-01"}
    answered: list[bytes] = []

    def use(process: subprocess.Popen[bytes]) -> None:
        wait_until(lambda: _listening(port), process, "the proxy to listen")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
            answered.append(_exchange(client, "/v1/messages", body))
            answered.append(_exchange(client, "/v1/messages", body))
        process.send_signal(signal.SIGINT)

    played = run_measured(argv, out, tmp_path / "console", during=use)
    assert b"event: message_stop" in answered[1], "the exchange after the hostile one is relayed whole"
    found = problems(played, [canary], exit_codes=(1,) if unjudgeable else (0, 1))
    assert not found, "; ".join(found)
    report = strict_json(played.report.read_text(encoding="utf-8"))
    verdicts = [r["outcome"] for r in report["results"]]
    assert len(verdicts) == 2 and verdicts[1] == "passed", outcomes(report)
