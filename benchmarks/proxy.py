"""`conformance proxy` against direct, under the same load: what the proxy adds.

Five processes: the reference server (`conformance serve`, the upstream), the proxy (`conformance
proxy`, judging every exchange), the same proxy recording nothing (`--max-exchanges 1`: what relaying
alone costs), a TCP pipe (benchmarks/tcp_pipe.py: bytes copied both ways on Python's event loop,
nothing else: the floor of any Python relay) and this one, the client. The same load is sent straight
to the upstream, through the proxy, through the relay alone and through the pipe:

- sequential JSON: one small non-streamed request at a time;
- concurrent long streams: `--streams` streamed answers of about 3,400 events each,
  `--concurrency` at a time, each read to its last byte.

Each load runs in rounds, the four sides one after the other in each (the order turning), so that
a machine whose speed drifts (a shared host) moves all alike. Printed: the median throughput
(requests/s) direct and proxied, the ratio to direct of each round and their median for the proxy,
the relay alone and the pipe, p50 and p99 latency of all rounds and what each adds, the CPU each server spends per
request, and how long after the last exchange the proxy's report is complete: every exchange
judged in results.jsonl, then report.json and every file written once the proxy is asked to stop.

    python benchmarks/proxy.py [--requests 300] [--streams 100] [--concurrency 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.peers.process import LOOPBACK, free_port  # noqa: E402

API_KEY = "bench-key"
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
JSON_BODY = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
STREAM_BODY = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 8192,
    "stream": True,
    "messages": [{"role": "user", "content": "Count from 1 to 2000"}],
}


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


@contextmanager
def started(argv: list[str], port: int, module: bool = True) -> Iterator[subprocess.Popen[bytes]]:
    """A `conformance` subprocess (or, `module` false, a script) listening on `port`, stopped (SIGINT, then
    by its PID) on the way out."""
    command = [sys.executable, *(["-m", "conformance"] if module else []), *argv]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, process)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


SIDES = ["direct", "proxied", "relay", "pipe"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def sequential_json(base_url: str, requests: int) -> tuple[float, list[float]]:
    """Seconds for all requests and the latency of each."""
    async with httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=60) as client:
        await client.post("/v1/messages", json=JSON_BODY)  # warm: a connection open, imports done
        latencies = []
        began = time.perf_counter()
        for _ in range(requests):
            start = time.perf_counter()
            response = await client.post("/v1/messages", json=JSON_BODY)
            response.raise_for_status()
            latencies.append(time.perf_counter() - start)
        return time.perf_counter() - began, latencies


async def concurrent_streams(base_url: str, streams: int, concurrency: int) -> tuple[float, list[float]]:
    """Seconds for all streams and the time to the last byte of each."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=120, limits=limits) as client:
        slots = asyncio.Semaphore(concurrency)
        latencies: list[float] = []

        async def one() -> None:
            async with slots:
                start = time.perf_counter()
                async with client.stream("POST", "/v1/messages", json=STREAM_BODY) as response:
                    response.raise_for_status()
                    async for _ in response.aiter_raw():
                        pass
                latencies.append(time.perf_counter() - start)

        await one()  # warm
        latencies.clear()
        began = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(streams)))
        return time.perf_counter() - began, latencies


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """User and system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def judged_lines(out: Path) -> int:
    path = out / "results.jsonl"
    return path.read_text(encoding="utf-8").count("\n") if path.exists() else 0


def watch(out: Path, lines: int, since: float, judged: list[float]) -> None:
    """Appends to `judged` how long after `since` results.jsonl had `lines` lines (gives up after 120 s)."""
    while judged_lines(out) < lines and time.perf_counter() - since < 120:
        time.sleep(0.01)
    judged.append(time.perf_counter() - since)


def loads(args: argparse.Namespace) -> dict[str, Callable[[str], Awaitable[tuple[float, list[float]]]]]:
    """Each load, as a function of the base URL it is sent to: (seconds, latency of each request)."""
    return {
        "sequential JSON": lambda base_url: sequential_json(base_url, args.requests),
        "concurrent long streams": lambda base_url: concurrent_streams(base_url, args.streams, args.concurrency),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=300, help="sequential JSON requests a round (default: %(default)s)"
    )
    parser.add_argument("--streams", type=int, default=100, help="long streams a round (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=50, help="streams at a time (default: %(default)s)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds of each load, each side once a round (default: %(default)s)"
    )
    args = parser.parse_args()
    upstream_port, proxy_port, relay_port, pipe_port = free_port(), free_port(), free_port(), free_port()
    upstream = f"http://{LOOPBACK}:{upstream_port}"
    ports = {"proxied": proxy_port, "relay": relay_port, "pipe": pipe_port}
    urls = {"direct": upstream, **{side: f"http://{LOOPBACK}:{port}" for side, port in ports.items()}}
    serve_argv = ["serve", "--port", str(upstream_port), "--api-key", API_KEY]
    # Every proxied exchange is judged and kept (the warm-up requests too): none is left past --max-exchanges.
    proxied = args.rounds * (args.requests + 1 + args.streams + 1)
    proxy_argv = ["proxy", "--upstream", upstream, "--listen", f"{LOOPBACK}:{proxy_port}"]
    proxy_argv += ["--max-exchanges", str(proxied), "--out"]
    # The same proxy, recording the first exchange only: relaying, with no capture kept or judged.
    relay_argv = ["proxy", "--upstream", upstream, "--listen", f"{LOOPBACK}:{relay_port}", "--max-exchanges", "1"]
    pipe_argv = [str(ROOT / "benchmarks" / "tcp_pipe.py"), str(upstream_port), str(pipe_port)]
    results: dict[str, dict[str, list]] = {}
    with (
        tempfile.TemporaryDirectory() as scratch,
        started(serve_argv, upstream_port) as server,
        started([*relay_argv, "--out", str(Path(scratch) / "relay")], relay_port),
        started(pipe_argv, pipe_port, module=False),
    ):
        out = Path(scratch) / "proxy"
        with started([*proxy_argv, str(out)], proxy_port) as proxy:
            sent = 0
            judged: list[float] = []
            watcher = threading.Thread()
            for name, load in loads(args).items():
                found = results[name] = {"rates": [], "cpu": [], **{side: [] for side in SIDES}}
                for round_ in range(args.rounds):
                    # The sides one after the other, the order turning: a machine whose speed drifts (a shared
                    # host) moves all alike, and each round gives its own ratios.
                    order = SIDES[round_ % len(SIDES) :] + SIDES[: round_ % len(SIDES)]
                    rates = {}
                    for side in order:
                        before = {label: cpu_seconds(p) for label, p in (("upstream", server), ("proxy", proxy))}
                        seconds, latencies = asyncio.run(load(urls[side]))
                        rates[side] = len(latencies) / seconds
                        found[side].extend(latencies)
                        if side == "proxied":
                            last_exchange = time.perf_counter()
                            sent += len(latencies) + 1  # the warm-up request too
                            if sent == proxied:  # the last proxied exchange: watch for its line from now on
                                watcher = threading.Thread(target=watch, args=(out, sent, last_exchange, judged))
                                watcher.start()
                            spent = {
                                label: cpu_seconds(p) - before[label]
                                for label, p in (("upstream", server), ("proxy", proxy))
                            }
                            found["cpu"].append({label: cpu / len(latencies) for label, cpu in spent.items()})
                    found["rates"].append(rates)
            watcher.join()
            all_judged = judged[0]
            stop = time.perf_counter()
            proxy.send_signal(signal.SIGINT)
            report_json = out / "report.json"
            while not report_json.exists() and proxy.poll() is None:
                time.sleep(0.01)
            json_written = time.perf_counter() - stop
            proxy.wait(timeout=120)
            all_written = time.perf_counter() - stop
            report = json.loads(report_json.read_text(encoding="utf-8"))
    processes = "upstream, proxy, relay alone, pipe and client are five processes"
    print(f"{os.cpu_count()} cores; {processes}; {args.rounds} rounds a load")
    median = statistics.median
    for name, found in results.items():
        print(f"{name}: {len(found['direct']) // args.rounds} requests a round")
        rate = {side: median(rates[side] for rates in found["rates"]) for side in SIDES}
        print(f"  throughput   direct {rate['direct']:8.1f}/s   proxied {rate['proxied']:8.1f}/s   (medians)")
        labels = {"proxied": "proxied / direct", "relay": "relay alone / direct", "pipe": "TCP pipe / direct"}
        for side, label in labels.items():
            ratios = [rates[side] / rates["direct"] for rates in found["rates"]]
            by_round = ", ".join(f"{ratio:.2f}" for ratio in ratios)
            print(f"  {label:20s} median {median(ratios):.2f}   by round: {by_round}")
        for label, share in (("p50", 0.5), ("p99", 0.99)):
            plain = percentile(found["direct"], share) * 1000
            added = {side: percentile(found[side], share) * 1000 - plain for side in labels}
            print(
                f"  {label} latency  direct {plain:8.1f} ms  added: proxied {added['proxied']:+.1f} ms,"
                f" relay alone {added['relay']:+.1f} ms, TCP pipe {added['pipe']:+.1f} ms"
            )
        upstream_cpu = median(cpu["upstream"] for cpu in found["cpu"]) * 1000
        proxy_cpu = median(cpu["proxy"] for cpu in found["cpu"]) * 1000
        cpu = f"upstream {upstream_cpu:.2f} ms, proxy {proxy_cpu:.2f} ms"
        print(f"  CPU per request: {cpu} (the proxy's own process: relaying; judging is in its child)")
    print(f"report: every exchange judged in results.jsonl {all_judged:.2f} s after the last one")
    print(f"        report.json written {json_written:.2f} s after the stop, every file {all_written:.2f} s")
    print(f"        ({len(report['results'])} exchanges)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
