"""pytest plugin: `pytest --conformance [--base-url URL]` runs the case catalogue as test items.

Inert unless --conformance is given. Each case becomes one item, `conformance::<case id>`,
marked `conformance`, `tier_<tier>`, `feature_<feature>` and `profile_<profile>` (dashes become
underscores) for `-m` selection; `-k` matches case ids and those markers. `--profile NAME` keeps
only one client's cases. A name outside a closed vocabulary (tier, profile, capability, provider,
auth style, fail-on level) stops the session with a "did you mean". Without --base-url the embedded
reference server is started once per test process, so it works under pytest-xdist too (each worker
starts its own).

Verdicts map onto pytest outcomes: a case that fails the gate (`failed` and `error`; more with
--conformance-fail-on) fails its item with every finding in the message; `skipped` and
`unsupported` skip; `deviation` and `warning` pass. With `--baseline FILE` a case the baseline expects to
fail is marked xfail: it xfails while it fails as recorded, fails if it got worse, and XPASSes
once it is fixed.

Option names that other well-known plugins own (pytest-base-url's --base-url, pytest-profiling's
--profile) are only registered when those plugins are not installed; the `--conformance-*`
spelling always works.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import secrets
from pathlib import Path
from typing import Any

import pytest

from conformance.baseline import (
    BREAKS,
    DEFAULT_FAIL_ON,
    FAIL_ON_CHOICES,
    FIXED,
    KNOWN,
    Baseline,
    BaselineError,
    classify,
    failing_outcomes,
    load_baseline,
)
from conformance.cases import CAPABILITIES, TIERS, Case, CaseError, load_cases
from conformance.cli.common import UsageError, load_profile, names, positive
from conformance.consumers import Profile, ProfileError, load_profiles, select_cases
from conformance.model import CaseResult, Outcome
from conformance.report.junit import exchange_line, finding_line
from conformance.request_defaults import AUTH_STYLES, DEFAULT_MODEL
from conformance.retry import DEFAULT_RETRIES, RetryPolicy
from conformance.specs.profiles import known_providers
from conformance.target import Target, TargetError, parse_header
from conformance.vocabulary import UnknownName, check_names

# Option names another plugin may register: claiming them too would make pytest refuse to start.
_CLAIMED_BY = {"--base-url": "pytest_base_url", "--profile": "pytest_profiling"}
# Items are judged without the clients' impact, so `breaks` is no level here.
_FAIL_ON = tuple(choice for choice in FAIL_ON_CHOICES if choice != BREAKS)


def _names(*names: str) -> list[str]:
    return [name for name in names if name not in _CLAIMED_BY or importlib.util.find_spec(_CLAIMED_BY[name]) is None]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "Anthropic Messages API conformance")
    group.addoption("--conformance", action="store_true", help="collect the conformance cases as test items")
    group.addoption(
        *_names("--base-url", "--conformance-base-url"),
        dest="conformance_base_url",
        metavar="URL",
        help="endpoint under test, as ANTHROPIC_BASE_URL (default: the embedded reference server)",
    )
    group.addoption("--api-key", help="API key (default: $CONFORMANCE_API_KEY, then $ANTHROPIC_API_KEY)")
    group.addoption(
        "--auth", metavar=_one_of(AUTH_STYLES), help="how to send the key (default: the provider profile's)"
    )
    group.addoption("--model", help=f"model name to request (default: the provider profile's; {DEFAULT_MODEL})")
    group.addoption("--provider", default="anthropic", help="provider profile of the target")
    group.addoption(
        "--conformance-header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="extra header sent with every request (repeatable); its value is a secret, redacted everywhere, "
        "unless NAME is known harmless (anthropic-beta, content-type...) or named by --conformance-public-header",
    )
    group.addoption(
        "--conformance-public-header",
        action="append",
        default=[],
        type=str.lower,
        metavar="NAME",
        help="the value of this --conformance-header is not a secret (repeatable)",
    )
    group.addoption(
        "--conformance-retries",
        type=positive(int, zero=True),
        default=DEFAULT_RETRIES,
        metavar="N",
        help="send a request again up to N more times when the answer is transient (429, 529, 503 with "
        "retry-after, a reset, a timeout); 0 for none (default: %(default)s)",
    )
    group.addoption(
        "--conformance-tier",
        metavar=_one_of(TIERS),
        help="highest tier to collect (default: extended; with --profile, the cases the profile names)",
    )
    group.addoption(
        *_names("--profile", "--conformance-profile"),
        dest="conformance_profile",
        metavar="NAME",
        help="only the cases one client relies on: a consumer profile (e.g. claude-code) or a profile .yaml file",
    )
    group.addoption(
        "--conformance-capabilities",
        type=names,
        metavar="LIST",
        help="comma-separated capabilities the target claims; cases needing another are skipped (default: all)",
    )
    group.addoption("--conformance-cases", metavar="DIR", help="load cases from DIR (default: the built-in cases)")
    group.addoption(
        "--baseline",
        "--conformance-baseline",
        dest="conformance_baseline",
        metavar="FILE",
        help="baseline from `conformance baseline write`: cases it expects to fail are xfail",
    )
    group.addoption(
        "--conformance-fail-on",
        metavar=_one_of(_FAIL_ON),
        default=DEFAULT_FAIL_ON,
        help="least severe outcome that fails an item: failed (and error), deviation, unsupported or warning, "
        "each failing on everything worse too",
    )


def _one_of(choices: tuple[str, ...]) -> str:
    return "{" + ",".join(choices) + "}"


def _check_vocabularies(config: pytest.Config) -> None:
    """Every closed vocabulary among the options: a typo stops the session with a "did you mean", instead of
    a session that collects or runs nothing the user meant. Raises UnknownName."""
    option = config.getoption
    for kind, name, known in [
        ("tier", option("conformance_tier"), TIERS),
        ("auth style", option("auth"), AUTH_STYLES),
        ("fail-on level", option("conformance_fail_on"), _FAIL_ON),
        ("provider", option("provider"), known_providers()),
    ]:
        if name is not None:
            check_names(kind, [name], known)
    check_names("capability", config.getoption("conformance_capabilities") or (), CAPABILITIES)


def marker_name(kind: str, value: str) -> str:
    return f"{kind}_{value}".replace("-", "_").replace(".", "_")


_CASES = pytest.StashKey[list[Case]]()
_PROFILES = pytest.StashKey[list[Profile]]()
_BASELINE = pytest.StashKey[Baseline | None]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: a case of the conformance catalogue")
    if not config.getoption("conformance"):
        return
    option = config.getoption
    try:
        _check_vocabularies(config)
        profile = load_profile(option("conformance_profile")) if option("conformance_profile") else None
        cases = load_cases(Path(option("conformance_cases")) if option("conformance_cases") else None)
        profiles = list(load_profiles().values())
        chosen = select_cases(cases, option("conformance_tier"), profile=profile)
        baseline_path = option("conformance_baseline")
        config.stash[_BASELINE] = load_baseline(baseline_path) if baseline_path else None
    except (CaseError, ProfileError, BaselineError, UnknownName, UsageError) as exc:
        raise pytest.UsageError(str(exc)) from None
    markers = {marker_name("tier", c.tier) for c in cases} | {marker_name("feature", c.feature) for c in cases}
    markers |= {marker_name("profile", p.name) for p in profiles}
    for name in sorted(markers):
        config.addinivalue_line("markers", f"{name}: conformance cases of this tier, feature or consumer profile")
    config.stash[_CASES] = chosen
    config.stash[_PROFILES] = profiles
    config.stash[_DRIVER] = _Driver(config)
    config.add_cleanup(config.stash[_DRIVER].close)


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not config.getoption("conformance"):
        return []
    option = config.getoption
    target = _base_url(config) or "the embedded reference server"
    line = f"conformance: {len(config.stash[_CASES])} cases against {target} (provider {option('provider')}"
    line += f", model {option('model') or 'the provider default'})"
    if option("conformance_profile"):
        line += f", profile {option('conformance_profile')}"
    if option("conformance_baseline"):
        line += f", baseline {option('conformance_baseline')}"
    return [line]


def _base_url(config: pytest.Config) -> str | None:
    # pytest-base-url, when installed, owns --base-url (same meaning, dest base_url).
    return config.getoption("conformance_base_url") or config.getoption("base_url", default=None)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse a bad --base-url once, before any item runs (conftest files may have set it)."""
    if session.config.getoption("conformance"):
        session.config.stash[_DRIVER].target()


class _Driver:
    """Runs the cases of this test process: one target, one event loop and one HTTP client for all
    items (a client per item would cost more than most cases). Nothing starts before the first
    item runs, so collecting starts no server; without a base URL the reference server is started.
    """

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._target: Target | None = None
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None

    def target(self, start_server: bool = False) -> Target | None:
        """The target; None when it is the reference server and `start_server` is false."""
        if self._target is not None:
            return self._target
        option = self._config.getoption
        base_url = _base_url(self._config)
        api_key = option("api_key") or os.environ.get("CONFORMANCE_API_KEY") or os.environ.get("ANTHROPIC_API_KEY")
        if base_url is None:
            if not start_server:
                return None
            from conformance.reference import ReferenceServer

            api_key = option("api_key") or "ref-" + secrets.token_hex(16)
            self._server = ReferenceServer(api_key=api_key)
            base_url = self._server.__enter__().base_url
        try:
            self._target = Target(
                base_url=base_url,
                api_key=api_key,
                auth=option("auth"),
                model=option("model"),
                provider=option("provider"),
                extra_headers=dict(parse_header(value) for value in option("conformance_header")),
                public_headers=frozenset(option("conformance_public_header")),
                reference=self._server is not None,
                capabilities=self._config.getoption("conformance_capabilities"),  # None: the provider's
            )
        except TargetError as exc:
            raise pytest.UsageError(str(exc)) from None
        return self._target

    def run(self, case: Case) -> CaseResult:
        if self._runner is None:
            from conformance.runner import Runner
            from conformance.transport import Transport

            target = self.target(start_server=True)
            assert target is not None
            self._loop = asyncio.new_event_loop()
            retry = RetryPolicy(retries=self._config.getoption("conformance_retries"))
            self._runner = Runner(target, Transport(redactor=target.redactor()), retry=retry)
        assert self._loop is not None
        return self._loop.run_until_complete(self._runner.run_case(case))

    def close(self) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(self._runner.transport.aclose())
            self._loop.close()
            self._loop = None
        if self._server is not None:
            self._server.__exit__(None, None, None)
            self._server = None


_DRIVER = pytest.StashKey[_Driver]()


class ConformanceFailure(AssertionError):
    """A case that fails the gate; its message lists the findings."""


class KnownFailure(ConformanceFailure):
    """A case that fails as its baseline entry expects: what the xfail marker accepts."""


class ConformanceItem(pytest.Item):
    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.add_marker("conformance")
        self.add_marker(marker_name("tier", case.tier))
        self.add_marker(marker_name("feature", case.feature))
        for profile in self.config.stash[_PROFILES]:
            if profile.matches(case):
                self.add_marker(marker_name("profile", profile.name))
        self.failing = failing_outcomes(self.config.getoption("conformance_fail_on"))
        baseline = self.config.stash[_BASELINE]
        self.expected = baseline.expectations.get(case.id) if baseline else None
        if self.expected is not None and self.expected.outcome in self.failing:
            reason = f"baseline: {self.expected.outcome.value}" + (
                f": {self.expected.reason}" if self.expected.reason else ""
            )
            self.add_marker(pytest.mark.xfail(reason=reason, raises=KnownFailure, strict=False))

    def runtest(self) -> None:
        result = self.config.stash[_DRIVER].run(self.case)
        self.user_properties.append(("conformance_outcome", result.outcome.value))
        standing = classify(result.outcome, self.expected.outcome if self.expected else None, self.failing)
        if standing == KNOWN:
            raise KnownFailure(describe(result))
        if standing != FIXED and result.outcome in self.failing:
            raise ConformanceFailure(describe(result, self.expected.outcome if self.expected else None))
        if result.outcome is Outcome.SKIPPED:
            pytest.skip(result.reason)
        if result.outcome is Outcome.UNSUPPORTED:
            pytest.skip(f"unsupported: {result.reason}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return self.case.source, None, f"conformance::{self.case.id}"


def describe(result: CaseResult, baselined: Outcome | None = None) -> str:
    """A readable failure message: the verdict and case, one line per finding with its clause, the exchanges."""
    lines = [f"{result.id}: {result.outcome.value} ({result.feature}, spec {result.spec_ref})"]
    if baselined is not None:
        lines.append(f"  worse than the baseline, which expects: {baselined.value}")
    if result.title:
        lines.append(f"  case: {result.title}")
    if result.outcome is Outcome.ERROR:
        lines.append(f"  could not get an answer: {result.reason}")
    lines += [f"  - {finding_line(finding)}" for finding in result.findings]
    lines += [f"  {exchange_line(exchange)}" for exchange in result.exchanges]
    return "\n".join(lines)


class ConformanceCatalogue(pytest.Collector):
    """The selected cases, collected under the session next to the project's own tests."""

    def collect(self) -> list[pytest.Item]:
        return [ConformanceItem.from_parent(self, name=case.id, case=case) for case in self.config.stash[_CASES]]


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """Add the catalogue to the session's top-level collectors, whatever paths pytest was given."""
    report = yield
    if isinstance(collector, pytest.Session) and collector.config.getoption("conformance") and report.passed:
        # An explicit node id: the catalogue is no file, so its items are `conformance::<case id>`.
        report.result.append(ConformanceCatalogue.from_parent(collector, name="conformance", nodeid="conformance"))
    return report
