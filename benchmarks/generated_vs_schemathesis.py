"""Generated cases against plain `schemathesis run`, side by side, on the same local target.

For each target (the reference server, and gateways built on it with one defect each, from
tests/generated_variants.py), runs `conformance`'s generated cases (Python API) and then
`schemathesis run` (its command line, in a subprocess) on the same contract and URL, and prints
requests per second (counted at the server, wall clock including generation) and what each found:
failing cases and the distinct checks they fail for ours, test cases with failures and unique
failures (its JSON report) for schemathesis.

    python benchmarks/generated_vs_schemathesis.py [--generated 100] [--examples 20] [--max-time 30]
        [--targets reference,temperature,role,openai-errors]

Not a test: it prints figures. schemathesis also flags valid-looking requests the server rightly
refuses (ST202 "Schema-valid request rejected"): its full-contract positive data holds tool_use
ids, signatures and models that no real server accepts, so its count on the reference server is
its false-positive floor.
"""

from __future__ import annotations

import argparse
import asyncio
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
from conformance.generate.options import Budget, GenerationOptions  # noqa: E402
from conformance.generate.plan import make_plan  # noqa: E402
from conformance.generate.session import run_plan  # noqa: E402
from conformance.model import Outcome  # noqa: E402
from conformance.reference import ReferenceServer, create_app  # noqa: E402
from conformance.target import Target  # noqa: E402
from tests.generated_variants import DEFECTS, variant_app  # noqa: E402

API_KEY = "benchmark-key"
SEED = 1


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
    failures: int  # failing cases (ours) or test cases with failures (schemathesis)
    defects: int  # distinct kinds: failing checks (ours) or unique failures (schemathesis)
    detail: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def ours(base_url: str, counter: Counted, count: int) -> Figures:
    before, started = counter.requests, time.monotonic()
    plan = make_plan([], GenerationOptions(count=count, seed=SEED), Budget())
    target = Target(base_url=base_url, api_key=API_KEY, reference=True)
    with tempfile.TemporaryDirectory() as out:
        report = asyncio.run(run_plan(target, plan, out_dir=Path(out)))
    failed = [result for result in report.results if result.outcome is Outcome.FAILED]
    kinds = sorted({finding.check for result in failed for finding in result.findings if not finding.deviation})
    features = sorted({result.feature for result in failed})
    detail = f"{', '.join(kinds)} in {', '.join(features[:3])}" if failed else ""
    return Figures(counter.requests - before, time.monotonic() - started, len(failed), len(kinds), detail)


def plain_schemathesis(base_url: str, counter: Counted, examples: int, max_time: int) -> Figures:
    before, started = counter.requests, time.monotonic()
    with tempfile.TemporaryDirectory() as reports:
        command = [
            sys.executable, "-m", "schemathesis.cli", "run", str(contract_path()), "--url", base_url,
            "-H", f"x-api-key: {API_KEY}", "-H", "anthropic-version: 2023-06-01",
            "--max-examples", str(examples), "--max-time", str(max_time), "--seed", str(SEED),
            "--report", "json", "--report-dir", reports,
        ]  # fmt: skip
        # In the temporary directory: schemathesis keeps a cache (.schemathesis/) where it runs.
        subprocess.run(command, capture_output=True, text=True, check=False, cwd=reports)
        found = next(Path(reports).glob("*.json"), None)
        data = json.loads(found.read_text()) if found else {}
    failures = data.get("failures") or []
    detail = ", ".join(f"{failure['code']} {failure['title']}" for failure in failures[:3])
    cases = data.get("test_cases") or {}
    elapsed = time.monotonic() - started
    return Figures(
        counter.requests - before, elapsed, cases.get("with_failures", 0), cases.get("unique_failures", 0), detail
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generated", type=int, default=100, help="generated cases of our run (default: 100)")
    parser.add_argument("--examples", type=int, default=20, help="schemathesis --max-examples (default: 20)")
    parser.add_argument("--max-time", type=int, default=30, help="schemathesis --max-time in seconds (default: 30)")
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
            rows.append((name, "conformance --generated", ours(server.base_url, app, args.generated)))
            plain = plain_schemathesis(server.base_url, app, args.examples, args.max_time)
            rows.append((name, "schemathesis run", plain))
    print(f"{'target':<14} {'run':<24} {'requests':>9} {'seconds':>8} {'req/s':>7} {'failing':>8} {'kinds':>6}  found")
    for name, run, figures in rows:
        print(
            f"{name:<14} {run:<24} {figures.requests:>9,} {figures.seconds:>8.1f} {figures.rate:>7.1f} "
            f"{figures.failures:>8} {figures.defects:>6}  {figures.detail}"
        )


if __name__ == "__main__":
    main()
