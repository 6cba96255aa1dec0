"""The case catalogue loads, validates its own shape, selects and resolves references."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.cases import CaseError, load_cases, load_file, lookup, resolve, select, tiers_up_to


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
