"""Generated cases against plain `schemathesis run`: same target, same number of requests, both out of process.

For each target (the reference server, and gateways built on it with one defect each, from
tests/generated_variants.py) served from this process, both tools run as subprocesses on the same
contract and URL, after one warm-up run each (disk caches, compiled bytecode, schemathesis's
cache): `schemathesis run` (its fuzzing phase, `--max-examples` per operation, no time bound: with one,
fuzzing repeats until the time is spent; going on after a failure, with no example database, so that
each run starts from the same knowledge), then
`conformance run -k generated` given exactly the number of requests schemathesis sent
(`--max-requests`). Requests are counted at the server.

Both are reported in one unit: faults, the distinct kinds of failure a tool reports (ours: the
checks its failing cases fail, deviations left out; schemathesis: its unique failures), per 100
requests. On the reference server every fault is a false positive: schemathesis flags
valid-looking requests the server rightly refuses (ST202 "Schema-valid request rejected"), as its
full-contract positive data holds tool_use ids, signatures and models that no server accepts.

    python benchmarks/generated_vs_schemathesis.py [--examples 20]
        [--targets reference,temperature,role,openai-errors]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.generated_variants: the defective gateways

from conformance.contract import contract_path  # noqa: E402
from conformance.reference import ReferenceServer, create_app  # noqa: E402
from tests.generated_variants import DEFECTS, variant_app  # noqa: E402

API_KEY = "benchmark-key"
SEED = 1
WARM_UP_EXAMPLES = 2


class Counted:
    """An ASGI app that counts the HTTP requests reaching it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests += 1
        await self.app(scope, receive, send)


@dataclass
class Figures:
    requests: int
    seconds: float
    faults: list[str]  # distinct kinds of failure, in the tool's own names

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def per_100(self) -> float:
        return 100 * len(self.faults) / self.requests if self.requests else 0.0


def timed(counter: Counted, command: list[str], cwd: str) -> tuple[int, float]:
    """Requests the server got and wall seconds of one subprocess run."""
    before, started = counter.requests, time.monotonic()
    subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)
    return counter.requests - before, time.monotonic() - started


def schemathesis(base_url: str, counter: Counted, examples: int) -> Figures:
    with tempfile.TemporaryDirectory() as reports:
        command = [
            sys.executable, "-m", "schemathesis.cli", "run", str(contract_path()), "--url", base_url,
            "-H", f"x-api-key: {API_KEY}", "-H", "anthropic-version: 2023-06-01",
            "--phases", "fuzzing", "--max-examples", str(examples), "--continue-on-failure", "--seed", str(SEED),
            "--generation-database", "none",
            "--report", "json", "--report-dir", reports,
        ]  # fmt: skip
        # Run in the temporary directory: schemathesis keeps a cache (.schemathesis/) where it runs.
        requests, seconds = timed(counter, command, reports)
        found = next(Path(reports).glob("*.json"), None)
        data = json.loads(found.read_text()) if found else {}
    faults = sorted({f"{failure['code']} {failure['title']}" for failure in data.get("failures") or []})
    return Figures(requests, seconds, faults)


def ours(base_url: str, counter: Counted, requests: int) -> Figures:
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable, "-m", "conformance", "run", "--base-url", base_url, "--api-key", API_KEY,
            "-k", "generated", "--generated", str(requests), "--max-requests", str(requests), "--seed", str(SEED),
            "--generated-positive", "--out", out,
        ]  # fmt: skip
        sent, seconds = timed(counter, command, str(ROOT))  # `-m conformance` from this checkout
        report = json.loads((Path(out) / "report.json").read_text(encoding="utf-8"))
    faults = sorted(
        {
            finding["check"]
            for result in report["results"]
            if result["outcome"] == "failed"
            for finding in result["findings"]
            if finding["severity"] == "failure" and not finding.get("deviation")
        }
    )
    return Figures(sent, seconds, faults)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=20, help="schemathesis --max-examples (default: 20)")
    parser.add_argument(
        "--targets",
        default="reference,temperature,role,openai-errors",
        help=f"comma-separated, of reference and {', '.join(DEFECTS)} (default: %(default)s)",
    )
    args = parser.parse_args()
    rows = []
    for name in args.targets.split(","):
        app = Counted(create_app(API_KEY) if name == "reference" else variant_app(name, API_KEY))
        with ReferenceServer(app=app) as server:
            schemathesis(server.base_url, app, WARM_UP_EXAMPLES)
            ours(server.base_url, app, WARM_UP_EXAMPLES)
            plain = schemathesis(server.base_url, app, args.examples)
            rows.append((name, "schemathesis run", plain))
            rows.append((name, "conformance -k generated", ours(server.base_url, app, plain.requests)))
    header = f"{'target':<14} {'tool':<25} {'requests':>9} {'seconds':>8} {'req/s':>7} {'faults':>7} {'/100 req':>9}"
    print(f"{header}  found")
    for name, tool, figures in rows:
        print(
            f"{name:<14} {tool:<25} {figures.requests:>9,} {figures.seconds:>8.1f} {figures.rate:>7.1f} "
            f"{len(figures.faults):>7} {figures.per_100:>9.1f}  {', '.join(figures.faults)[:100]}"
        )


if __name__ == "__main__":
    main()
