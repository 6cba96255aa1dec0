"""Generated cases: against the reference server (no failure), against gateways with the defects they
are meant to find (each caught), reproducible from a seed, within a budget, exported as cases that
run again on their own."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from conformance.cases import load_cases
from conformance.cli import main
from conformance.contract import contract_path
from conformance.generate import schemas, strategy
from conformance.generate.build import build
from conformance.generate.options import Budget, BudgetError, GenerationOptions
from conformance.generate.plan import Plan, fit, generate, pick
from conformance.generate.session import run_plan
from conformance.model import CaseResult, Outcome, RunReport
from conformance.reference import ReferenceServer, create_app
from conformance.report import load_report, write_reports
from conformance.target import Target
from tests.generated_variants import variant_app

SEED = 11
API_KEY = "generated-variant-key"
# The fields the variants break ("": the body as a whole, where max_tokens goes missing); the plan
# draws from these operations only, to stay fast.
FIELDS = ("", "temperature", "messages")


@pytest.fixture(scope="module")
def plan() -> Plan:
    options = GenerationOptions(count=30, seed=SEED)  # 8 negative cases per field, from 16 draws each
    document, operations = schemas.negative_document()
    focused = [op for op in operations if op.endpoint == "messages" and op.field in FIELDS]
    negative = pick(document, focused, strategy.NEGATIVE, 24, options)
    document, operations = schemas.positive_document(contract_path(), options.max_tokens)
    positive = pick(document, operations, strategy.POSITIVE, 6, options)
    return Plan(cases=[], generated=negative + positive, options=options)


def run(app, plan: Plan, out_dir: Path, provider: str = "anthropic") -> RunReport:
    with ReferenceServer(app=app) as server:
        target = Target(base_url=server.base_url, api_key=API_KEY, provider=provider, reference=True)
        return asyncio.run(run_plan(target, plan, out_dir=out_dir))


def failing(report: RunReport, prefix: str) -> list[CaseResult]:
    return [r for r in report.results if r.outcome is Outcome.FAILED and r.feature.startswith(prefix)]


def checks(result: CaseResult) -> set[str]:
    return {finding.check for finding in result.findings}


def test_the_plan_covers_the_fields_both_modes_and_streaming(plan: Plan) -> None:
    features = {g.case.feature for g in plan.generated}
    assert any(feature.startswith("generated.temperature.") for feature in features)
    assert any(feature.startswith("generated.messages.") for feature in features)
    assert "generated.stream.positive" in features and "generated.request.positive" in features
    assert all(g.case.generated and g.case.max_output_tokens <= 16 for g in plan.generated)


def test_the_reference_server_passes_every_generated_case(plan: Plan, tmp_path: Path) -> None:
    report = run(create_app(API_KEY), plan, tmp_path)
    assert report.summary()["failed"] == 0 and report.summary()["error"] == 0
    generated = report.generated_summary()
    assert generated is not None and generated["cases"] == len(plan.generated) == generated["passed"]
    assert report.generation is not None and report.generation["failures"] == []
    streamed = [r for r in report.results if r.feature == "generated.stream.positive"]
    assert streamed and all(r.exchanges[0].response.is_stream for r in streamed)


@pytest.mark.parametrize(
    ("defect", "feature", "check"),
    [
        ("temperature", "generated.temperature.", "expect.status"),
        ("role", "generated.messages.", "expect.status"),
        ("openai-errors", "generated.", "errors.envelope"),
    ],
)
def test_each_defect_is_caught(plan: Plan, tmp_path: Path, defect: str, feature: str, check: str) -> None:
    report = run(variant_app(defect, API_KEY), plan, tmp_path)
    caught = failing(report, feature)
    assert caught and all(check in checks(result) for result in caught)
    if defect == "role":
        assert any("got 500" in finding.message for result in caught for finding in result.findings)
    assert not failing(report, "generated.request.positive")  # a valid request is still fine


def test_a_documented_leniency_is_a_deviation(plan: Plan, tmp_path: Path) -> None:
    # The draw schemathesis makes for "max_tokens missing", built by hand so the test needs no luck.
    document, operations = schemas.negative_document()
    body = next(op for op in operations if op.endpoint == "messages" and not op.field)
    drawn = strategy.Drawn(body, strategy.NEGATIVE, {"model": "m", "messages": []}, path=(), keywords=("required",))
    missing = build(drawn, schemas.Validity(document), 16)
    assert missing is not None and missing.case.feature == "generated.max_tokens.missing"
    lenient = Plan(cases=[], generated=[missing], options=plan.options)
    canonical = run(variant_app("optional-max-tokens", API_KEY), lenient, tmp_path / "anthropic")
    assert {r.outcome for r in canonical.results} == {Outcome.FAILED}
    openrouter = run(variant_app("optional-max-tokens", API_KEY), lenient, tmp_path / "openrouter", "openrouter")
    assert {r.outcome for r in openrouter.results} == {Outcome.DEVIATION}
    assert "max-tokens-optional" in openrouter.results[0].reason


# Valid optional fields added to every negative draw: whatever schemathesis drew, a failure then
# has parts the shrinker can remove and still fail the same way.
PADDING = {"temperature": 0.5, "stop_sequences": ["NEVER-SEEN"], "metadata": {"user_id": "padding"}}


def padded(plan: Plan) -> Plan:
    generated = [
        g
        if g.positive or not isinstance(g.case.steps[0].request.body, dict)
        else g.with_request({**PADDING, **g.case.steps[0].request.body})
        for g in plan.generated
    ]
    return Plan(cases=plan.cases, generated=generated, options=plan.options)


def test_a_failure_is_shrunk_and_exported_as_a_case_that_reproduces_it(plan: Plan, tmp_path: Path) -> None:
    out = tmp_path / "out"
    app = variant_app("role", API_KEY)
    plan = padded(plan)
    report = run(app, plan, out)
    exported = report.generation["failures"]
    assert exported and report.generation["shrink"]["requests"] >= 1
    directory = out / "generated-failures"
    cases = load_cases(directory)
    assert len(cases) == len(exported) and not any(case.generated for case in cases)
    originals = {g.case.id: g.case for g in plan.generated}
    sizes = []
    for entry in exported:
        original = json.dumps(originals[entry["id"]].steps[0].request.body)
        shrunk = next(case for case in cases if case.id == entry["shrunk"])
        sizes.append((len(json.dumps(shrunk.steps[0].request.body)), len(original)))
        script = Path(entry["curl"]).read_text()
        assert "$ANTHROPIC_API_KEY" in script and API_KEY not in script
    assert all(small <= large for small, large in sizes) and any(small < large for small, large in sizes)
    with ReferenceServer(app=app) as server:
        again = ["run", "--cases", str(directory), "--base-url", server.base_url, "--api-key", API_KEY]
        assert main([*again, "--out", str(tmp_path / "again")]) == 1
    with ReferenceServer(api_key=API_KEY) as server:
        fixed = ["run", "--cases", str(directory), "--base-url", server.base_url, "--api-key", API_KEY]
        assert main([*fixed, "--out", str(tmp_path / "fixed")]) == 0


def test_the_same_seed_generates_the_same_cases() -> None:
    def bodies(seed: int) -> list[tuple[str, str]]:
        cases = generate(GenerationOptions(count=6, seed=seed))
        return [(g.case.id, json.dumps(g.case.steps[0].request.body, sort_keys=True)) for g in cases]

    first = bodies(5)
    assert len(first) == 6
    assert bodies(5) == first
    assert bodies(6) != first


def test_budget_keeps_the_hand_written_cases_and_trims_the_generated(plan: Plan) -> None:
    hand = [case for case in load_cases() if case.id.startswith("text.")][:3]
    requests = sum(case.requests for case in hand)
    kept, dropped = fit(hand, plan.generated, Budget(max_requests=requests + 4))
    assert len(kept) == 4 and dropped == len(plan.generated) - 4
    tokens = sum(case.max_output_tokens for case in hand)
    kept, _ = fit(hand, plan.generated, Budget(max_output_tokens=tokens + 16))
    assert sum(g.case.max_output_tokens for g in kept) <= 16
    with pytest.raises(BudgetError):
        fit(hand, plan.generated, Budget(max_requests=requests - 1))


def test_a_selection_above_the_budget_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-k", "text.*", "--max-requests", "1", "--out", str(tmp_path)]) == 2
    assert "more than the budget" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_sends_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "-k", "text.*", "--generated", "6", "--seed", "5", "--dry-run", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Plan (nothing sent)" in out and "seed 5" in out and "worst-case output tokens" in out
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize(("extra", "positive"), [([], 0), (["--generated-positive"], 2)])
def test_positive_generation_needs_an_opt_in_off_loopback(
    extra: list[str], positive: int, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--base-url", "https://gateway.example", "-k", "generated", "--generated", "8", "--seed", "5"]
    assert main([*argv, "--dry-run", *extra]) == 0
    out = capsys.readouterr().out
    assert f"{positive} positive" in out
    assert ("positive generation off" in out) == (positive == 0)


def test_generated_results_are_counted_apart_in_every_report(plan: Plan, tmp_path: Path) -> None:
    report = run(create_app(API_KEY), Plan(cases=[], generated=plan.generated[:3], options=plan.options), tmp_path)
    paths = write_reports(report, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["summary"]["generated"]["cases"] == 3 and data["generation"]["seed"] == SEED
    assert all(result["generated"] for result in data["results"])
    assert load_report(paths["json"]).generated_summary() == report.generated_summary()
    assert 'name="generated_cases" value="3"' in paths["junit"].read_text()
    assert "Generated cases" in paths["html"].read_text()


def test_a_report_without_generated_cases_keeps_its_shape(tmp_path: Path) -> None:
    old = {"schema_version": 1, "target": {"base_url": "http://x"}, "results": [{"id": "a", "outcome": "passed"}]}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(old))
    report = load_report(path)
    assert report.generation is None and report.generated_summary() is None
    assert not report.results[0].generated
    data = report.to_dict()
    assert "generated" not in data["summary"] and "generation" not in data and "generated" not in data["results"][0]
