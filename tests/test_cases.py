"""The case catalogue loads, validates its own shape, selects and resolves references."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.cases import (
    CAPABILITIES,
    EXPECT_KEYS,
    TIERS,
    CaseError,
    default_capabilities,
    load_cases,
    load_file,
    lookup,
    resolve,
    select,
    tiers_up_to,
)


def test_builtin_catalogue_loads_with_unique_ids() -> None:
    cases = load_cases()
    assert len(cases) >= 30
    assert len({case.id for case in cases}) == len(cases)
    smoke = select(cases, tiers_up_to("smoke"))
    assert smoke and sum(case.requests for case in smoke) <= 10


def test_every_case_traces_to_a_known_clause() -> None:
    from conformance.contract import clause_ids

    known = clause_ids()
    unknown = {case.id: case.spec for case in load_cases() if case.spec not in known}
    assert not unknown


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cases.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("cases: 3", "a 'cases' list"),
        ("cases:\n  - {id: a, feature: f}", "'spec' is required"),
        ("cases:\n  - {id: a, feature: f, spec: s, tier: huge, request: {body: {}}}", "tier must be"),
        ("cases:\n  - {id: a, feature: f, spec: s, colour: red, request: {body: {}}}", "unknown keys"),
        ("cases:\n  - {id: a, feature: f, spec: s, request: {body: {}}, expect: {color: 1}}", "unknown expect keys"),
        ("cases:\n  - {id: a, feature: f, spec: s, request: {body: {}, auth: maybe}}", "auth must be"),
        ("cases: [", "not valid YAML"),
    ],
)
def test_broken_case_files_are_refused_with_a_clear_message(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(CaseError, match=error):
        load_file(write(tmp_path, text))


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "cases:\n  - {id: a, feature: f, spec: s, request: {body: {}}}\n")
    (tmp_path / "more.yaml").write_text("cases:\n  - {id: a, feature: f, spec: s, request: {body: {}}}\n")
    with pytest.raises(CaseError, match="also defined"):
        load_cases(tmp_path)


def test_file_defaults_apply_to_cases(tmp_path: Path) -> None:
    [case] = load_file(
        write(tmp_path, "feature: tools\ntier: smoke\ncases:\n  - {id: a, spec: s, request: {body: {}}}\n")
    )
    assert (case.feature, case.tier) == ("tools", "smoke")


def test_selection_by_keyword_glob_and_negation() -> None:
    cases = load_cases()
    assert all(case.feature == "errors" for case in select(cases, keyword="errors.*"))
    assert all(case.feature != "errors" for case in select(cases, keyword="not errors"))
    both = select(cases, keyword="text.string-content,streaming.text")
    assert sorted(case.id for case in both) == ["streaming.text", "text.string-content"]


def test_resolve_fills_model_and_references() -> None:
    history = [{"message": {"content": [{"type": "tool_use", "id": "toolu_1"}]}, "response": None}]
    body = {"model": "$model", "id": {"$from": "steps[0].message.content[0].id"}, "n": [1, "$model"]}
    assert resolve(body, "m", history) == {"model": "m", "id": "toolu_1", "n": [1, "m"]}


@pytest.mark.parametrize("path", ["steps[1].message", "steps[0].nope", "other", "steps[0]..x"])
def test_lookup_reports_bad_paths(path: str) -> None:
    with pytest.raises(CaseError):
        lookup([{"message": {}}], path)


def test_cost_of_a_case_is_the_sum_of_max_tokens() -> None:
    round_trip = next(case for case in load_cases() if case.id == "tools.round-trip")
    assert round_trip.requests == 2
    assert round_trip.max_output_tokens == 300


def test_the_catalogue_is_complete_enough() -> None:
    cases = load_cases()
    assert len(cases) >= 120
    assert {case.tier for case in cases} == set(TIERS)


def test_the_provider_tier_is_selected_only_by_name() -> None:
    assert "provider" not in tiers_up_to("extended")
    assert tiers_up_to("provider") == TIERS
    cases = load_cases()
    assert not [case for case in select(cases, tiers_up_to("extended")) if case.tier == "provider"]


def test_every_capability_and_expect_key_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "how-to" / "cases.md").read_text(encoding="utf-8")
    missing = [name for name in [*CAPABILITIES, *EXPECT_KEYS] if f"`{name}`" not in doc]
    assert not missing
    used = {name for case in load_cases() for name in case.requires}
    assert used <= set(CAPABILITIES)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "cases:\n  - {id: a, feature: f, spec: s, requires: [telepathy], request: {body: {}}}",
            "unknown capabilities",
        ),
        (
            "cases:\n  - {id: a, feature: f, spec: s, request: {body: {}}, expect: {text: X}}",
            "depend on what the model",
        ),
        ("colour: red\ncases: []", "unknown top-level keys"),
        ("cases:\n  - {id: a, feature: f, spec: s, request: {body: {$shared: nope}}}", "unknown shared fragment"),
        (
            "cases:\n  - {id: a, feature: f, spec: s, steps: [{request: {}, expect: {same_content_as_step: 0}}]}",
            "index of an earlier step",
        ),
        (
            "cases:\n  - {id: a, feature: f, spec: s, request: {body: {}}, expect: {min_events: {ping: x}}}",
            "min_events",
        ),
        ("cases:\n  - {id: a, feature: f, spec: s, request: {body: {}}, expect: {max_event_gap: 0}}", "max_event_gap"),
    ],
)
def test_catalogue_rules_are_enforced_when_loading(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(CaseError, match=error):
        load_file(write(tmp_path, text))


def test_model_dependent_expectations_are_fine_with_an_answer_capability(tmp_path: Path) -> None:
    for capability in ("instruction-following", "fault-injection", "magic-strings"):
        text = f"cases:\n  - {{id: a, feature: f, spec: s, requires: [{capability}], request: {{body: {{}}}}, "
        [case] = load_file(write(tmp_path, text + "expect: {text: X}}\n"))
        assert capability in case.requires


def test_file_requires_and_optional_apply_to_every_case(tmp_path: Path) -> None:
    case_text = "  - {id: a, feature: f, spec: s, requires: [tools], request: {body: {}}}\n"
    text = "requires: [vision]\noptional: true\ncases:\n" + case_text
    [case] = load_file(write(tmp_path, text))
    assert case.requires == {"vision", "tools"}
    assert case.optional


def test_shared_fragments_are_inserted_and_can_be_extended(tmp_path: Path) -> None:
    (tmp_path / "_shared.yaml").write_text("tool: {name: t, input_schema: {type: object}}\n")
    body = "{tools: [{$shared: tool}, {$shared: tool, strict: true}]}"
    text = f"cases:\n  - {{id: a, feature: f, spec: s, request: {{body: {body}}}}}\n"
    write(tmp_path, text)
    [case] = load_cases(tmp_path)
    first, second = case.steps[0].request.body["tools"]
    assert first == {"name": "t", "input_schema": {"type": "object"}}
    assert second == {**first, "strict": True}


def test_lookup_takes_negative_indexes() -> None:
    history = [{"message": {"content": [{"type": "thinking"}, {"type": "tool_use", "id": "toolu_9"}]}}]
    assert lookup(history, "steps[0].message.content[-1].id") == "toolu_9"


def test_only_the_reference_server_is_taken_to_inject_faults() -> None:
    assert default_capabilities(reference=True) is None
    claimed = default_capabilities(reference=False)
    assert claimed is not None and "fault-injection" not in claimed and "instruction-following" in claimed


def test_a_raw_body_gets_the_targets_model() -> None:
    from conformance.runner import build_request
    from conformance.target import Target

    case = next(case for case in load_cases() if case.id == "errors.nan-in-body")
    target = Target(base_url="http://127.0.0.1:9", api_key="k" * 16, model="tiny-model")
    request = build_request(target, case.steps[0], [])
    assert request.raw_body is not None and '"model": "tiny-model"' in request.raw_body
    assert "NaN" in request.raw_body
