"""Provider profiles (specs/<provider>/profile.yaml), their contracts, and how a Target uses them."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from conformance import contract
from conformance.cases import EXPECT_KEYS, load_cases
from conformance.checks import CHECKS
from conformance.generate.schemas import canonical_request
from conformance.model import Finding
from conformance.specs.documents import load
from conformance.specs.fields import contract_fields
from conformance.specs.merge import canonical_path
from conformance.specs.profiles import (
    CANONICAL,
    CAPABILITIES,
    ProfileError,
    known_providers,
    load_profile,
    parse_profile,
)
from conformance.target import Target, TargetError

PROVIDERS = [
    "anthropic",
    "bifrost",
    "claude-code-router",
    "cortecs",
    "litellm",
    "llamacpp",
    "nordlys",
    "ollama",
    "openrouter",
    "portkey",
    "vllm",
]
CASE_IDS = [case.id for case in load_cases()]


def test_the_providers_are_known_the_canonical_one_first():
    assert known_providers() == PROVIDERS


@pytest.mark.parametrize("name", PROVIDERS)
def test_every_fact_has_a_source_with_a_url_and_a_date(name):
    profile = load_profile(name)
    facts = [profile.base_url, profile.base_path, profile.auth, profile.default_model, profile.unsupported]
    for fact in [*facts, profile.extensions]:
        assert fact.source.url.startswith("https://") and len(fact.source.date) == 10
    for deviation in profile.deviations:
        assert deviation.source.url.startswith("https://") and deviation.description


@pytest.mark.parametrize("name", PROVIDERS)
def test_every_contract_is_valid_openapi_and_its_references_resolve(name):
    path = load_profile(name).contract_path
    validate(load(path), base_uri=path.resolve().as_uri())
    fields = contract_fields(path)  # strict: an unresolvable $ref raises
    assert "endpoint.messages" in fields and "request" in fields


def test_the_merged_schema_is_valid_openapi():
    validate(load(canonical_path()))


@pytest.mark.parametrize("name", PROVIDERS)
def test_profile_and_contract_agree(name):
    """Auth style, base path, count_tokens and extension fields say the same in both files."""
    profile = load_profile(name)
    fields = contract_fields(profile.contract_path)
    auth = fields["auth"].values or set()
    assert profile.auth.value in auth or (auth == {"none"} and profile.auth.value == "none")
    assert next(iter(fields["endpoint.messages"].values or ())).endswith(profile.base_path.value + "/v1/messages")
    assert ("count_tokens" in profile.unsupported.value) == ("endpoint.count_tokens" not in fields)
    top = re.compile(r"^request\.(\w+)$")
    canonical = {m.group(1) for m in map(top.match, contract_fields(contract.contract_path())) if m}
    assert {m.group(1) for m in map(top.match, fields) if m} - canonical == set(profile.extensions.value)


@pytest.mark.parametrize("name", PROVIDERS)
def test_deviation_matchers_name_real_checks_clauses_and_cases(name):
    profile = load_profile(name)
    checks = set(CHECKS) | {f"expect.{key}" for key in EXPECT_KEYS}
    for deviation in profile.deviations:
        for matcher in deviation.match:
            if matcher.check:
                assert fnmatch.filter(sorted(checks), matcher.check), (deviation.id, matcher.check)
            if matcher.spec:
                assert fnmatch.filter(sorted(contract.clause_ids()), matcher.spec), (deviation.id, matcher.spec)
            if matcher.case and matcher.case.startswith("generated."):
                # Generated cases (`generated.<field>.<rule>.<hash>`) are made at run time: the field must exist.
                field = matcher.case.removeprefix("generated.").split(".")[0]
                assert field in canonical_request("messages").value["properties"], (deviation.id, matcher.case)
            elif matcher.case:
                assert fnmatch.filter(CASE_IDS, matcher.case), (deviation.id, matcher.case)


def test_the_documented_deviations_of_the_brief():
    cortecs = load_profile("cortecs")
    assert {"done-sentinel", "temperature-0-2", "top-k-unsupported", "cache-control-unsupported"} <= {
        d.id for d in cortecs.deviations
    }
    assert cortecs.auth.value == "bearer" and "count_tokens" in cortecs.unsupported.value
    assert cortecs.deviation("done-sentinel").explains(
        Finding("stream.done-sentinel", "event 9: `data: [DONE]`", "stream.no-done-sentinel"), "streaming.text"
    )
    openrouter = load_profile("openrouter")
    assert openrouter.base_path.value == "/api" and "count_tokens" in openrouter.unsupported.value
    assert openrouter.deviation("max-tokens-optional").explains(
        Finding("expect.status", "expected HTTP 400, got 200", "messages.request.required"), "errors.missing-max-tokens"
    )
    ollama = load_profile("ollama")
    assert {"count_tokens"} <= set(ollama.unsupported.value)
    assert {"no-tool-choice", "no-metadata", "no-stream-error-events"} <= {d.id for d in ollama.deviations}
    assert load_profile("nordlys").auth.value == "x-api-key"


def test_capabilities_are_all_those_the_provider_does_not_lack():
    assert load_profile(CANONICAL).capabilities is None
    capabilities = load_profile("openrouter").capabilities
    assert capabilities == CAPABILITIES - {"count_tokens"}


def test_a_case_capability_outside_the_vocabulary_is_impossible():
    """Providers that lack something claim a list: a case needing an unlisted name would be skipped silently."""
    assert {name for case in load_cases() for name in case.requires} <= CAPABILITIES


# --------------------------------------------------------------------------- malformed profiles


def _raw(**changes):
    raw = yaml.safe_load((Path(contract.specs_dir()) / "cortecs" / "profile.yaml").read_text(encoding="utf-8"))
    raw.update(changes)
    return raw


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"auth": {"value": "cookie", "source": "docs"}}, "auth must be one of"),
        ({"auth": {"value": "bearer", "source": "nowhere"}}, "'auth' must be"),
        ({"unsupported": {"value": ["teleportation"], "source": "docs"}}, "unknown capabilities"),
        ({"base_path": {"value": "api/", "source": "docs"}}, "base_path"),
        ({"sources": {"docs": {"url": "http://x", "date": "2026-01-01"}}}, "https url"),
        ({"sources": {"docs": {"url": "https://x", "date": "yesterday"}}}, "needs a date"),
        ({"deviations": [{"id": "x", "description": "y", "source": "docs", "match": [{"status": 1}]}]}, "matcher"),
        ({"deviations": [{"id": "x", "description": "y", "source": "docs"}] * 2}, "unique"),
    ],
)
def test_malformed_profiles_are_refused(changes, message, tmp_path):
    with pytest.raises(ProfileError, match=message):
        parse_profile(_raw(**changes), tmp_path / "cortecs")


# --------------------------------------------------------------------------- the target


def test_a_target_takes_auth_model_base_path_and_capabilities_from_its_profile():
    target = Target(base_url="https://openrouter.ai", provider="openrouter", api_key="k")
    assert target.url("messages") == "https://openrouter.ai/api/v1/messages"
    assert target.auth == "bearer" and target.auth_headers() == {"authorization": "Bearer k"}
    assert target.model == "anthropic/claude-sonnet-4"
    assert target.capabilities == CAPABILITIES - {"count_tokens"}
    assert target.profile.name == "openrouter"


def test_explicit_settings_win_over_the_profile():
    target = Target(
        base_url="https://gw.example/custom/", provider="openrouter", auth="x-api-key", model="m", capabilities=None
    )
    assert target.url("messages") == "https://gw.example/custom/v1/messages"  # a path of its own: kept
    assert (target.auth, target.model) == ("x-api-key", "m")
    assert Target(base_url="http://h", provider="cortecs", capabilities=frozenset({"tools"})).capabilities == {"tools"}


def test_the_reference_server_keeps_its_root_and_model():
    target = Target(base_url="http://127.0.0.1:9", provider="bifrost", reference=True)
    assert target.url("messages") == "http://127.0.0.1:9/v1/messages"
    assert target.model == "claude-haiku-4-5"
    assert Target(base_url="http://127.0.0.1:9", provider="bifrost").url("messages").endswith("/anthropic/v1/messages")


def test_auth_none_sends_no_credentials():
    target = Target(base_url="http://h", provider="ollama", api_key="k")
    assert target.auth == "none" and target.auth_headers() == {}
    assert target.auth_headers("bearer") == {"authorization": "Bearer k"}


def test_the_canonical_target_is_unchanged():
    target = Target(base_url="http://h/", api_key="k")
    assert (target.provider, target.auth, target.model, target.capabilities) == (
        "anthropic",
        "x-api-key",
        "claude-haiku-4-5",
        None,
    )
    assert target.auth_headers() == {"x-api-key": "k"}


def test_an_unknown_provider_is_a_target_error_naming_the_known_ones():
    with pytest.raises(TargetError, match=r"unknown provider 'acme'; known providers: anthropic, bifrost, claude-code"):
        Target(base_url="http://h", provider="acme")
    with pytest.raises(TargetError, match="unknown provider"):
        Target(base_url="http://h", provider="../anthropic")
