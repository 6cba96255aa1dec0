"""Engine overhead: a full run behind a relay that adds 100 ms to every answer, against the ideal.

The target is the reference server behind a delay (`--latency` seconds before each request is
answered), served from this process; `conformance run` runs in a subprocess against it. The server
times every request from arrival to the last byte of its answer; with `--concurrency C`, no engine
can finish sooner than Σ those times / C, nor sooner than its longest case (steps run in order). The ratio of
the run's wall time (report.json's started_at to finished_at) to that ideal is the engine's
overhead: 1.00 is a perfect engine.

It runs twice against the same target: first with nothing timed, then with the slowest cases first
(as the first run timed them).

    python benchmarks/engine.py [--latency 0.1] [--concurrency 8] [--tier core]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conformance.reference import ReferenceServer, create_app  # noqa: E402

API_KEY = "benchmark-key"


class Delayed:
    """An ASGI app that waits `latency` seconds before the wrapped app answers, and times each request."""

    def __init__(self, app: Any, latency: float) -> None:
        self.app = app
        self.latency = latency
        self.durations: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        await asyncio.sleep(self.latency)
        try:
            await self.app(scope, receive, send)
        finally:
            self.durations.append(time.monotonic() - started)


def run_seconds(report: dict[str, Any]) -> float:
    started, finished = (datetime.fromisoformat(report[key]) for key in ("started_at", "finished_at"))
    return (finished - started).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to each answer (default: 0.1)")
    parser.add_argument("--concurrency", type=int, default=8, help="the run's --concurrency (default: 8)")
    parser.add_argument("--tier", default="extended", help="the run's --tier (default: %(default)s)")
    args = parser.parse_args()
    app = Delayed(create_app(API_KEY), args.latency)
    with ReferenceServer(app=app) as server, tempfile.TemporaryDirectory() as scratch:
        # The same target twice: the first run starts its cases in catalogue order (nothing timed yet), the
        # second the slowest first, as timed by the first (conformance.durations: per target, kept between runs).
        for label in ("first run", "second run"):
            app.durations.clear()
            out = Path(scratch) / label.replace(" ", "-")
            command = [
                sys.executable, "-m", "conformance", "run", "--base-url", server.base_url, "--api-key", API_KEY,
                "--tier", args.tier, "--concurrency", str(args.concurrency), "--out", str(out),
            ]  # fmt: skip
            began = time.monotonic()
            subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
            wall = time.monotonic() - began
            report = json.loads((out / "report.json").read_text(encoding="utf-8"))
            run = run_seconds(report)
            longest = max(report["results"], key=lambda result: result.get("duration", 0.0))
            ideal = max(sum(app.durations) / args.concurrency, longest.get("duration", 0.0))
            print(f"{label}: {len(report['results'])} cases, {len(app.durations)} requests, "
                  f"+{args.latency * 1000:.0f} ms each, concurrency {args.concurrency}")  # fmt: skip
            print(f"  Σ request time at the server      {sum(app.durations):8.2f} s")
            print(f"  longest case ({longest['id']})  {longest.get('duration', 0.0):8.2f} s")
            print(f"  ideal run (Σ / concurrency, or the longest case) {ideal:8.2f} s")
            print(f"  the run (report started→finished) {run:8.2f} s   ratio {run / ideal:.2f}")
            print(f"  the command (startup and reports) {wall:8.2f} s   fixed cost {wall - run:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
