"""Baselines for CI gating, in the manner of wpt's expectation files.

A baseline records the cases a target is known not to pass today, with their outcome and why.
Gated against it, a run fails only on what got worse: a failing case that is not in the baseline,
or one whose outcome is worse than the recorded one. Cases that got better are listed as fixed
so that the baseline can be tightened.

`--fail-on` sets the least severe outcome that fails the gate: `failed` (the default; `error`
always fails), `deviation` (documented differences fail too), `unsupported` (clean refusals of
optional features fail too) or `warning` (everything but passed and skipped fails: also behaviour
the docs allow but the real API does otherwise, see docs/reference/verdicts.md). `breaks` gates on real
breakage only: a case fails when its recorded answers break a real client (its `impact`, from
`conformance impact` or `run --impact`; `--fail-on-impact CLIENT` names the clients that count).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.atomic import atomic_write_text
from conformance.impact import names as impact_names
from conformance.model import CaseResult, Outcome, RunReport
from conformance.redact import Redactor
from conformance.report.evidence import clip, strict_json
from conformance.report.json_report import headline

BASELINE_VERSION = 1
# From the least to the most strict: each fails on its outcome and everything worse; `breaks`, the
# least strict, on the cases that break a real client, whatever their outcome.
BREAKS = "breaks"
FAIL_ON_CHOICES = (BREAKS, "failed", "deviation", "unsupported", "warning")
DEFAULT_FAIL_ON = "failed"

# How bad an outcome is. failed and error weigh the same, but one turning into the other is still
# news (a failure that now errors may hide anything), so the gate compares outcomes, not only ranks.
RANK: dict[Outcome, int] = {
    Outcome.PASSED: 0,
    Outcome.SKIPPED: 0,
    Outcome.WARNING: 1,
    Outcome.UNSUPPORTED: 2,
    Outcome.DEVIATION: 3,
    Outcome.FAILED: 4,
    Outcome.ERROR: 4,
}

_HEADER = """\
# conformance baseline: the cases this target is known not to pass, and why.
# `conformance run --baseline FILE` exits 1 only on a failing case that is not listed here or that
# got worse than listed; cases that got better are reported as fixed: remove them, or rewrite this
# file with `conformance baseline write REPORT.json -o FILE`.
"""


class BaselineError(ValueError):
    """A baseline file that cannot be used, named in the message."""


def failing_outcomes(fail_on: str = DEFAULT_FAIL_ON) -> frozenset[Outcome]:
    """The outcomes that fail the gate: those at least as bad as `fail_on` (none for `breaks`, which
    reads the cases' impact instead: `breaks_a_client`)."""
    if fail_on not in FAIL_ON_CHOICES:
        raise ValueError(f"fail_on must be one of {FAIL_ON_CHOICES}, got {fail_on!r}")
    if fail_on == BREAKS:
        return frozenset()
    threshold = RANK[Outcome(fail_on)]
    return frozenset(outcome for outcome, rank in RANK.items() if rank >= threshold)


@dataclass(frozen=True)
class Expectation:
    """What the baseline accepts for one case."""

    outcome: Outcome
    reason: str = ""


@dataclass
class Baseline:
    expectations: dict[str, Expectation] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    recorded_at: str = ""

    @classmethod
    def from_results(cls, report: RunReport, fail_on: str = DEFAULT_FAIL_ON) -> Baseline:
        """Every case of the run that did not pass (skipped ones aside: they are not verdicts); warnings
        only for a gate that fails on them (`fail_on` "warning"), since no other gate needs them listed."""
        warnings_fail = Outcome.WARNING in failing_outcomes(fail_on)
        expectations = {
            result.id: Expectation(result.outcome, headline(result))
            for result in sorted(report.results, key=lambda r: r.id)
            if RANK[result.outcome] > 0 and (warnings_fail or result.outcome is not Outcome.WARNING)
        }
        target = report.target.to_dict()
        target.pop("reference", None)
        return cls(expectations=expectations, target=target, recorded_at=report.started_at)

    def to_yaml(self, redactor: Redactor | None = None) -> str:
        """The baseline file's text: strict (no lone surrogates, reasons within the report bounds), redacted."""
        document = {
            "version": BASELINE_VERSION,
            "target": self.target,
            "recorded_at": self.recorded_at,
            "cases": {
                case_id: {"outcome": e.outcome.value, "reason": clip(e.reason)}
                for case_id, e in self.expectations.items()
            },
        }
        import yaml  # here: a run gates on a baseline already loaded, and most runs have none

        return _HEADER + yaml.safe_dump(
            strict_json(document, redactor), sort_keys=False, allow_unicode=True, width=1000
        )


def write_baseline(baseline: Baseline, path: Path, redactor: Redactor | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, baseline.to_yaml(redactor))
    return path


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read a baseline file; BaselineError names the file and the problem."""
    import yaml  # here: importing the gate's names needs no YAML

    path = Path(path)
    # The C (libyaml) safe loader when available: several times faster on large files.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        raw: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise BaselineError(f"{path}: not a baseline (invalid YAML: {exc})") from None
    if isinstance(raw, dict) and "results" in raw and "cases" not in raw:
        raise BaselineError(
            f"{path}: a report, not a baseline: make one with `conformance baseline write {path} -o FILE`"
        )
    if not isinstance(raw, dict) or "cases" not in raw or not isinstance(raw["cases"] or {}, dict):
        raise BaselineError(f"{path}: not a baseline (expected a mapping with a 'cases' mapping)")
    version = raw.get("version", BASELINE_VERSION)
    if not isinstance(version, int) or version > BASELINE_VERSION:
        raise BaselineError(f"{path}: baseline version {version!r} is not understood by this tool")
    expectations: dict[str, Expectation] = {}
    for case_id, entry in (raw.get("cases") or {}).items():
        outcome = entry.get("outcome") if isinstance(entry, dict) else entry
        try:
            expected = Outcome(outcome)
        except ValueError:
            choices = ", ".join(o.value for o in Outcome)
            raise BaselineError(
                f"{path}: case {case_id!r}: outcome must be one of {choices}, got {outcome!r}"
            ) from None
        reason = entry.get("reason", "") if isinstance(entry, dict) else ""
        expectations[str(case_id)] = Expectation(expected, str(reason or ""))
    target = raw.get("target") if isinstance(raw.get("target"), dict) else {}
    return Baseline(expectations=expectations, target=target, recorded_at=str(raw.get("recorded_at") or ""))


@dataclass(frozen=True)
class Change:
    """One case whose outcome matters to the gate: what it is now, and what was expected."""

    id: str
    outcome: Outcome
    expected: Outcome | None
    reason: str = ""


def breaks_a_client(result: CaseResult, clients: Collection[str] = ()) -> bool:
    """The case's recorded answers break a real client (one of `clients`, when named)."""
    return any(
        entry.get("effect") == impact_names.BREAKS and (not clients or entry.get("client") in clients)
        for entry in result.impact
    )


@dataclass
class Gate:
    """The gate's verdict on a run, against a baseline (or against none: every failing case is new)."""

    fail_on: str = DEFAULT_FAIL_ON
    # With `breaks`: the clients whose breakage counts (empty: any client).
    impact_clients: tuple[str, ...] = ()
    regressions: list[Change] = field(default_factory=list)
    known: list[Change] = field(default_factory=list)
    fixed: list[Change] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.regressions


REGRESSION, KNOWN, FIXED, CLEAN = "regression", "known", "fixed", "clean"


def classify(outcome: Outcome, expected: Outcome | None, failing: frozenset[Outcome]) -> str:
    """Where one case stands against its baseline entry (None: not in the baseline).

    `fixed`: better than the baseline; `regression`: failing and not exactly as the baseline
    expects; `known`: failing as expected; `clean`: not failing and not in the baseline.
    """
    if expected is not None and RANK[outcome] < RANK[expected]:
        return FIXED
    if outcome not in failing:
        return CLEAN
    return KNOWN if outcome is expected else REGRESSION


def gate(
    results: Iterable[CaseResult],
    baseline: Baseline | None = None,
    fail_on: str = DEFAULT_FAIL_ON,
    impact_clients: Collection[str] = (),
) -> Gate:
    """Sort the results into new failures, known failures and fixed cases (with `breaks`, a case fails
    when it breaks one of `impact_clients`, or any client when none is named)."""
    failing = failing_outcomes(fail_on)
    expectations = baseline.expectations if baseline else {}
    verdict = Gate(fail_on=fail_on, impact_clients=tuple(sorted(impact_clients)))
    buckets = {REGRESSION: verdict.regressions, KNOWN: verdict.known, FIXED: verdict.fixed}
    seen: set[str] = set()
    for result in sorted(results, key=lambda r: r.id):
        seen.add(result.id)
        entry = expectations.get(result.id)
        expected = entry.outcome if entry else None
        if fail_on == BREAKS:
            failing = frozenset({result.outcome}) if breaks_a_client(result, impact_clients) else frozenset()
        bucket = buckets.get(classify(result.outcome, expected, failing))
        if bucket is not None:
            bucket.append(Change(result.id, result.outcome, expected, headline(result)))
    verdict.not_run = sorted(set(expectations) - seen)
    return verdict


def describe_gate(verdict: Gate, baseline_path: Path | None) -> list[str]:
    """The gate's verdict as plain lines for the terminal."""
    source = f"baseline {baseline_path}" if baseline_path else "no baseline"
    clients = "".join(f" --fail-on-impact {client}" for client in verdict.impact_clients)
    lines = [f"Gate ({source}, --fail-on {verdict.fail_on}{clients}):"]
    if verdict.regressions:
        lines.append(f"  {len(verdict.regressions)} new failing (not in the baseline, or worse than it):")
        for change in verdict.regressions:
            was = f"was {change.expected.value}" if change.expected else "not in the baseline"
            lines.append(f"    {change.outcome.value.upper():<11} {change.id} ({was})")
            if change.reason:
                lines.append(f"                {change.reason}")
    if verdict.fixed:
        lines.append(f"  {len(verdict.fixed)} fixed: better than the baseline, which can be tightened:")
        for change in verdict.fixed:
            expected = change.expected.value if change.expected else "?"
            lines.append(f"    {change.id}: {expected} -> {change.outcome.value}")
    if baseline_path is not None:
        lines.append(f"  {len(verdict.known)} failing as the baseline expects")
        if verdict.not_run:
            lines.append(f"  {len(verdict.not_run)} baselined cases were not run")
    if verdict.ok:
        lines.append("  PASS: nothing got worse" if baseline_path else "  PASS: no case fails the gate")
    else:
        lines.append(f"  FAIL: {len(verdict.regressions)} cases fail the gate")
    return lines
