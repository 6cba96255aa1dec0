"""Record and replay: a run's exchanges kept as a cassette, judged again offline.

`conformance run --record DIR` writes DIR/cassette.json: the target, and for every case its id,
identity, a fingerprint of the requests it sends, the recorded verdict, and its exchanges as stored
in report.json (bounded, strict JSON, redacted: conformance.report.evidence) plus each response's
raw text (within the same bounds), which report.json leaves out for streams. `conformance recheck
DIR` loads the cases by id from the catalogue and judges the recorded exchanges with
conformance.judge, the code that judges live runs: no network, no cost, and a report that improved
checks can re-judge years later.

A recorded case that is no longer in the catalogue, or whose requests changed since, gets the
contract checks only (its expectations belong to requests that were not sent); the result carries
a note saying so. So does a case whose recorded evidence was cut by the report bounds: its verdict
judges what was kept, not the whole exchange.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance import __version__
from conformance.cases import Case
from conformance.checks import run_checks
from conformance.judge import apply_profile, case_result, decide, judge, usage_tokens
from conformance.model import CaseResult, Exchange, Finding, Outcome, RunReport, Severity, TargetInfo
from conformance.redact import Redactor
from conformance.report.evidence import EvidenceBudget, describe_cut, strict_json
from conformance.report.json_report import write_json_document

if TYPE_CHECKING:
    from conformance.specs.profiles import ProviderProfile

CASSETTE_VERSION = 1
CASSETTE_FILE = "cassette.json"
CONTRACT_ONLY_CHECK = "recheck.contract-only"
EVIDENCE_CUT_CHECK = "recheck.evidence-cut"


class CassetteError(ValueError):
    """A cassette that cannot be read, named in the message."""


def fingerprint(case: Case) -> str:
    """A digest of what the case sends: a recording answers a case only while this is unchanged."""
    steps = [
        [s.request.endpoint, s.request.method, s.request.headers, s.request.auth, s.request.body, s.request.raw_body]
        for s in case.steps
    ]
    text = json.dumps(steps, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def exchange_to_dict(exchange: Exchange) -> dict[str, Any]:
    """The exchange as report.json stores it, plus the raw response text (report.json's `exchange`
    of a bounded exchange: the text is already within the bounds)."""
    data = exchange.to_dict()
    response = exchange.response
    if response is not None and response.text:
        data["response"]["text"] = response.text
    return data


@dataclass
class RecordedCase:
    id: str
    feature: str
    tier: str
    spec: str
    title: str
    optional: bool
    fingerprint: str
    outcome: Outcome
    reason: str
    duration: float
    exchanges: list[Exchange] = field(default_factory=list)


@dataclass
class Cassette:
    target: TargetInfo
    started_at: str
    finished_at: str
    cases: list[RecordedCase]
    tool_version: str = ""
    planned_requests: int = 0
    planned_max_output_tokens: int = 0


def write_cassette(report: RunReport, cases: list[Case], directory: Path, redactor: Redactor | None = None) -> Path:
    """Write DIR/cassette.json for a finished run; `cases` are the cases the run was given.

    The exchanges keep what the report bounds keep, and every string passes through `redactor`.
    """
    by_id = {case.id: case for case in cases}
    entries = []
    for result in EvidenceBudget().report(report).results:
        case = by_id.get(result.id)
        entries.append(
            {
                "id": result.id,
                "feature": result.feature,
                "tier": result.tier,
                "spec": result.spec_ref,
                "title": result.title,
                "optional": case.optional if case else False,
                "fingerprint": fingerprint(case) if case else "",
                "outcome": result.outcome.value,
                "reason": result.reason,
                "duration": round(result.duration, 4),
                "exchanges": [exchange_to_dict(exchange) for exchange in result.exchanges],
            }
        )
    document = {
        "cassette_version": CASSETTE_VERSION,
        "tool": {"name": "conformance", "version": report.tool_version},
        "target": report.target.to_dict(),
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "plan": {"requests": report.planned_requests, "max_output_tokens": report.planned_max_output_tokens},
        "cases": entries,
    }
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return write_json_document(directory / CASSETTE_FILE, strict_json(document, redactor))


def load_cassette(location: str | os.PathLike[str]) -> Cassette:
    """Read a cassette from its directory (or its cassette.json)."""
    path = Path(location)
    if path.is_dir():
        path = path / CASSETTE_FILE
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CassetteError(f"cannot read cassette {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CassetteError(f"{path}: not a cassette (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or "cassette_version" not in data or not isinstance(data.get("cases"), list):
        raise CassetteError(f"{path}: not a cassette (no cassette_version or cases)")
    if not isinstance(data["cassette_version"], int) or data["cassette_version"] > CASSETTE_VERSION:
        raise CassetteError(
            f"{path}: cassette version {data['cassette_version']!r} is newer than this tool understands"
        )
    try:
        plan = data.get("plan") or {}
        return Cassette(
            target=TargetInfo.from_dict(data["target"]),
            started_at=data.get("started_at", ""),
            finished_at=data.get("finished_at", ""),
            cases=[_recorded(entry) for entry in data["cases"]],
            tool_version=(data.get("tool") or {}).get("version", ""),
            planned_requests=plan.get("requests", 0),
            planned_max_output_tokens=plan.get("max_output_tokens", 0),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CassetteError(f"{path}: malformed cassette ({type(exc).__name__}: {exc})") from None


def _recorded(entry: dict[str, Any]) -> RecordedCase:
    return RecordedCase(
        id=entry["id"],
        feature=entry.get("feature", ""),
        tier=entry.get("tier", "core"),
        spec=entry.get("spec", ""),
        title=entry.get("title", ""),
        optional=bool(entry.get("optional", False)),
        fingerprint=entry.get("fingerprint", ""),
        outcome=Outcome(entry["outcome"]),
        reason=entry.get("reason", ""),
        duration=entry.get("duration", 0.0),
        exchanges=[Exchange.from_dict(e) for e in entry.get("exchanges", [])],
    )


@dataclass
class Recheck:
    """A cassette judged again: the new report, and how it compares with the recording."""

    report: RunReport
    # (case id, recorded outcome, outcome now) for every case whose verdict changed.
    changed: list[tuple[str, Outcome, Outcome]] = field(default_factory=list)
    # Cases judged by the contract checks only, and why (not in the catalogue, requests changed).
    contract_only: dict[str, str] = field(default_factory=dict)


def recheck(cassette: Cassette, catalogue: list[Case], profile: ProviderProfile | None = None) -> Recheck:
    """Judge every recorded case again with today's checks and today's case expectations.

    `profile` is the recorded provider's profile, whose documented deviations turn failures into
    `deviation` as in a live run (None: judged against the canonical contract alone).
    """
    by_id = {case.id: case for case in catalogue}
    rechecked = Recheck(
        report=RunReport(
            target=cassette.target,
            started_at=cassette.started_at,
            finished_at=cassette.finished_at,
            tool_version=__version__,
            planned_requests=cassette.planned_requests,
            planned_max_output_tokens=cassette.planned_max_output_tokens,
        )
    )
    for recorded in cassette.cases:
        case = by_id.get(recorded.id)
        why = None
        if case is None:
            why = "the case is no longer in the catalogue"
        elif recorded.fingerprint and recorded.fingerprint != fingerprint(case):
            why = "the case's requests changed since the recording"
        result = _rejudge(recorded, case if why is None else None, why, profile)
        if why is not None:
            rechecked.contract_only[recorded.id] = why
        if result.outcome is not recorded.outcome:
            rechecked.changed.append((recorded.id, recorded.outcome, result.outcome))
        rechecked.report.results.append(result)
    rechecked.report.results.sort(key=lambda r: r.id)
    return rechecked


def _stand_in(recorded: RecordedCase) -> Case:
    """A case with the recorded identity and no steps: only its identity and `optional` are used."""
    return Case(
        id=recorded.id,
        feature=recorded.feature,
        spec=recorded.spec,
        tier=recorded.tier,
        steps=(),
        title=recorded.title,
        optional=recorded.optional,
    )


def _rejudge(recorded: RecordedCase, case: Case | None, why: str | None, profile: ProviderProfile | None) -> CaseResult:
    result = _judged_again(recorded, case, why, profile)
    cut = [sentence for exchange in recorded.exchanges for sentence in describe_cut(exchange.evidence_cut)]
    if cut and not _nothing_to_judge(recorded):
        message = f"the recording kept only part of the evidence ({'; '.join(cut)}): this verdict judges what was kept"
        result.findings.append(Finding(EVIDENCE_CUT_CHECK, message, severity=Severity.NOTE))
    return result


def _judged_again(
    recorded: RecordedCase, case: Case | None, why: str | None, profile: ProviderProfile | None
) -> CaseResult:
    exchanges = recorded.exchanges
    if case is not None and not _nothing_to_judge(recorded):
        return judge(case, exchanges, duration=recorded.duration, profile=profile)
    identity = case or _stand_in(recorded)
    input_tokens, output_tokens = usage_tokens(exchanges)
    if _nothing_to_judge(recorded):
        # Skipped before sending, or the suite could not build a request: the verdict stands.
        verdict, reason, findings = recorded.outcome, recorded.reason, []
    else:
        findings = [finding for exchange in exchanges if not exchange.error for finding in run_checks(exchange)]
        findings = apply_profile(findings, identity, exchanges, profile)
        verdict, reason = decide(identity, findings, exchanges)
        findings.append(
            Finding(CONTRACT_ONLY_CHECK, f"judged by the contract checks only: {why}", severity=Severity.NOTE)
        )
    return case_result(
        identity,
        verdict,
        reason,
        findings=findings,
        exchanges=exchanges,
        duration=recorded.duration,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


def _nothing_to_judge(recorded: RecordedCase) -> bool:
    """No answer was recorded, and not because the endpoint failed to give one."""
    exchanges = recorded.exchanges
    return not exchanges or (recorded.outcome is Outcome.ERROR and not any(exchange.error for exchange in exchanges))
