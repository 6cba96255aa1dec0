"""pytest plugin: `pytest --conformance [--base-url URL]` runs the case catalogue as test items.

Inert unless --conformance is given. Each case becomes one item named `conformance::<case id>`,
marked `tier_<tier>` and `feature_<feature>` for `-m` selection; `-k` matches case ids. Without
--base-url the embedded reference server is started once per test process (so it works under
pytest-xdist too). A failed case fails its item with every finding in the message.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import Any

import pytest

from conformance.cases import TIERS, Case, load_cases, select, tiers_up_to
from conformance.model import CaseResult, Outcome
from conformance.target import AUTH_STYLES, DEFAULT_MODEL, Target


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "Anthropic Messages API conformance")
    group.addoption("--conformance", action="store_true", help="collect the conformance cases as test items")
    group.addoption("--base-url", help="endpoint under test (default: the embedded reference server)")
    group.addoption("--api-key", help="API key (default: $CONFORMANCE_API_KEY, then $ANTHROPIC_API_KEY)")
    group.addoption("--auth", choices=AUTH_STYLES, default="x-api-key", help="how to send the key")
    group.addoption("--model", default=DEFAULT_MODEL, help="model name to request")
    group.addoption("--provider", default="anthropic", help="provider profile of the target")
    group.addoption("--conformance-tier", choices=TIERS, default="extended", help="highest tier to collect")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: a case of the conformance catalogue")
    if not config.getoption("conformance"):
        return
    cases = load_cases()
    for name in sorted({f"tier_{c.tier}" for c in cases} | {f"feature_{c.feature}" for c in cases}):
        config.addinivalue_line("markers", f"{name}: conformance cases of this tier or feature")
    config.stash[_CASES] = select(cases, tiers_up_to(config.getoption("conformance_tier")))
    config.stash[_TARGET] = _TargetHolder(config)
    config.add_cleanup(config.stash[_TARGET].close)


_CASES = pytest.StashKey[list[Case]]()


class _TargetHolder:
    """Builds the target on first use; starts (and later stops) the reference server if needed."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._target: Target | None = None
        self._server: Any = None

    def get(self) -> Target:
        if self._target is None:
            option = self._config.getoption
            base_url = option("base_url")
            api_key = option("api_key") or os.environ.get("CONFORMANCE_API_KEY") or os.environ.get("ANTHROPIC_API_KEY")
            if base_url is None:
                from conformance.reference import ReferenceServer

                api_key = option("api_key") or "ref-" + secrets.token_hex(16)
                self._server = ReferenceServer(api_key=api_key)
                base_url = self._server.__enter__().base_url
            self._target = Target(
                base_url=base_url,
                api_key=api_key,
                auth=option("auth"),
                model=option("model"),
                provider=option("provider"),
                reference=self._server is not None,
            )
        return self._target

    def close(self) -> None:
        if self._server is not None:
            self._server.__exit__(None, None, None)
            self._server = None


_TARGET = pytest.StashKey[_TargetHolder]()


class ConformanceFailure(AssertionError):
    """A case that failed or errored; its message lists the findings."""


class ConformanceItem(pytest.Item):
    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.add_marker("conformance")
        self.add_marker(f"tier_{case.tier}")
        self.add_marker(f"feature_{case.feature}")

    def runtest(self) -> None:
        from conformance.runner import Runner
        from conformance.transport import Redactor, Transport

        target = self.config.stash[_TARGET].get()

        async def run() -> CaseResult:
            redactor = Redactor(secrets=[target.api_key] if target.api_key else [])
            async with Transport(redactor=redactor) as transport:
                return await Runner(target, transport).run_case(self.case)

        result = asyncio.run(run())
        if result.outcome is Outcome.SKIPPED:
            pytest.skip(result.reason)
        if result.outcome in (Outcome.FAILED, Outcome.ERROR):
            raise ConformanceFailure(describe(result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return self.case.source, None, f"conformance::{self.case.id}"


def describe(result: CaseResult) -> str:
    """A readable failure message: the verdict, then one line per finding with its clause."""
    lines = [f"{result.id}: {result.outcome.value} ({result.feature}, spec {result.spec_ref})"]
    if result.outcome is Outcome.ERROR:
        lines.append(f"  could not get an answer: {result.reason}")
    for finding in result.findings:
        clause = f" [{finding.spec_ref}]" if finding.spec_ref else ""
        lines.append(f"  - {finding.check}{clause}: {finding.message}")
    return "\n".join(lines)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("conformance"):
        return
    for case in config.stash[_CASES]:
        items.append(ConformanceItem.from_parent(session, name=f"conformance::{case.id}", case=case))
