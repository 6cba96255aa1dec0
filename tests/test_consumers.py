"""Consumer profiles: named subsets of the catalogue, selected by rule so that new cases join them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.cases import load_cases
from conformance.consumers import (
    INCOMPLETE,
    NOT_READY,
    NOT_RUN,
    READY,
    Profile,
    ProfileError,
    get_profile,
    load_profile_file,
    load_profiles,
    profile_names,
    readiness,
    select_cases,
)
from conformance.model import Outcome


@dataclass(frozen=True)
class FakeCase:
    id: str
    feature: str
    tier: str = "core"


def test_the_built_in_profiles_exist_and_select_part_of_the_catalogue() -> None:
    profiles = load_profiles()
    assert {"anthropic-sdk", "claude-code"} <= set(profiles)
    cases = load_cases()
    for profile in profiles.values():
        chosen = profile.select(cases)
        assert chosen, f"{profile.name} selects no case"
        assert len(chosen) < len(cases), f"{profile.name} selects the whole catalogue"
        assert profile.title and profile.description


def test_claude_code_covers_what_claude_code_relies_on() -> None:
    claude_code = get_profile("claude-code")
    cases = load_cases()
    features = {case.feature for case in claude_code.select(cases)}
    assert {"streaming", "tools", "count_tokens"} <= features
    # Cases still being written join the profile by their id or feature alone.
    for new in (
        FakeCase("headers.beta-interleaved-thinking", "headers"),
        FakeCase("streaming.ping-keepalive", "streaming"),
        FakeCase("thinking.budget-respected", "thinking"),
        FakeCase("tools.parallel-calls", "tools"),
        FakeCase("count_tokens.with-images", "count_tokens"),
    ):
        assert claude_code.matches(new), new
    assert not claude_code.matches(FakeCase("text.temperature-in-range", "text"))


def test_anthropic_sdk_covers_shapes_streams_and_error_mapping() -> None:
    sdk = get_profile("anthropic-sdk")
    for case in (
        FakeCase("text.string-content", "text"),
        FakeCase("streaming.text", "streaming"),
        FakeCase("tools.streaming-tool-use", "tools"),
        FakeCase("content.thinking-stream", "thinking"),
        FakeCase("errors.missing-model", "errors"),
        FakeCase("headers.bad-key", "headers"),
        FakeCase("headers.bearer-auth", "headers"),
    ):
        assert sdk.matches(case), case
    assert not sdk.matches(FakeCase("count_tokens.grows-with-tools", "count_tokens"))


def test_rules_features_globs_tiers_and_exclusions() -> None:
    profile = Profile(
        name="mine",
        features=frozenset({"tools"}),
        ids=("headers.beta-*",),
        exclude=("tools.slow-*",),
        tiers=frozenset({"smoke", "core"}),
    )
    assert profile.matches(FakeCase("tools.choice-any", "tools"))
    assert profile.matches(FakeCase("headers.beta-one", "headers"))
    assert not profile.matches(FakeCase("headers.request-id", "headers"))
    assert not profile.matches(FakeCase("tools.slow-thing", "tools"))
    assert not profile.matches(FakeCase("tools.choice-any", "tools", tier="extended"))
    # A case named by id is in the profile whatever its tier.
    assert profile.matches(FakeCase("headers.beta-probe", "headers", tier="provider"))
    cases = [FakeCase("b", "tools"), FakeCase("a", "text"), FakeCase("c", "tools")]
    assert [case.id for case in profile.select(cases)] == ["b", "c"]


def test_a_profile_file_given_by_path(tmp_path: Path) -> None:
    path = tmp_path / "my-gateway.yaml"
    path.write_text("title: My gateway users\nfeatures: [streaming]\nids: ['errors.*']\ntiers: [smoke]\n")
    profile = get_profile(str(path))
    assert profile.name == "my-gateway" and profile.label == "My gateway users"
    assert profile.tiers == frozenset({"smoke"})
    assert profile.matches(FakeCase("errors.x", "errors", tier="smoke"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "must be a mapping"),
        ("features: [tools]\nbogus: 1\n", "unknown keys"),
        ("features: tools\n", "'features' must be a list"),
        ("features: [tools]\ntiers: [gold]\n", "tiers must be among"),
        ("title: nothing selected\n", "needs 'features' or 'ids'"),
        ("features: [unclosed\n", "cannot read"),
    ],
)
def test_malformed_profiles_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message) as info:
        load_profile_file(path)
    assert str(path) in str(info.value)


def test_an_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"unknown profile 'nope'.*claude-code"):
        get_profile("nope")
    with pytest.raises(ProfileError, match="no profile file"):
        get_profile("missing/profile.yaml")


def test_a_profile_is_named_as_its_file(tmp_path: Path) -> None:
    """So its name is known without parsing it (the command line lists them by file name)."""
    (tmp_path / "a.yaml").write_text("name: a\nfeatures: [tools]\n")
    assert profile_names(tmp_path) == list(load_profiles(tmp_path)) == ["a"]
    (tmp_path / "b.yaml").write_text("name: a\nfeatures: [text]\n")
    with pytest.raises(ProfileError, match="must be named as its file, 'b'"):
        load_profiles(tmp_path)
    assert profile_names() == list(load_profiles())


def test_readiness() -> None:
    assert readiness([Outcome.PASSED, Outcome.DEVIATION, Outcome.UNSUPPORTED]) == READY
    assert readiness([Outcome.PASSED, Outcome.FAILED]) == NOT_READY
    assert readiness([Outcome.PASSED, Outcome.ERROR], not_run=3) == NOT_READY
    assert readiness([Outcome.PASSED], not_run=1) == INCOMPLETE
    assert readiness([Outcome.PASSED, Outcome.SKIPPED]) == INCOMPLETE
    assert readiness([]) == NOT_RUN


def test_selection_with_a_profile_lets_the_profile_choose_the_tiers() -> None:
    cases = load_cases()
    claude_code = get_profile("claude-code")
    chosen = select_cases(cases, profile=claude_code)
    assert {case.id for case in chosen} == {case.id for case in claude_code.select(cases)}
    assert {case.tier for case in select_cases(cases)} <= {"smoke", "core", "extended"}
    assert {case.tier for case in select_cases(cases, "smoke", profile=claude_code)} == {"smoke"}
    assert [case.id for case in select_cases(cases, keyword="count_tokens.basic", profile=claude_code)] == [
        "count_tokens.basic"
    ]
    assert select_cases(cases, default_tier=None) == cases
