"""Provider profiles (specs/<provider>/profile.yaml): how to call a provider and what its docs declare.

A profile says where the API sits (base URL and the path prefix before /v1/messages), how it
authenticates, which model to ask for by default, which capabilities the provider does not
claim, which request fields it adds, and the deviations from Anthropic's contract that its own
documentation declares. Every fact names its source (a URL and the date it was read).

A deviation carries matchers that say which findings it explains; `conformance.judge` marks
those findings as deviations, so a case that fails only in documented ways is a `deviation`.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from conformance.cases import CAPABILITIES as CASE_CAPABILITIES
from conformance.model import Finding
from conformance.paths import specs_dir
from conformance.request_defaults import AUTH_STYLES, CANONICAL
from conformance.specs.documents import SpecError, load

PROFILE_FILE = "profile.yaml"
CONTRACT_FILE = "openapi.yaml"
# The capabilities cases may require (`requires:`); a profile lists those its provider's docs lack.
CAPABILITIES = frozenset(CASE_CAPABILITIES)
_MATCH_KEYS = frozenset({"check", "spec", "message", "case"})


@dataclass(frozen=True)
class Source:
    """Where a fact comes from: a URL and the date it was read (or the date of the version read)."""

    url: str
    date: str
    note: str = ""

    def to_dict(self) -> dict[str, str]:
        data = {"url": self.url, "date": self.date}
        if self.note:
            data["note"] = self.note
        return data


@dataclass(frozen=True)
class Matcher:
    """Which findings a deviation explains. Every given part must match; globs for check, spec
    and case, a regular expression searched in the message."""

    check: str | None = None
    spec: str | None = None
    message: str | None = None
    case: str | None = None

    def matches(self, finding: Finding, case_id: str) -> bool:
        if self.check is not None and not fnmatch.fnmatchcase(finding.check, self.check):
            return False
        if self.spec is not None and not fnmatch.fnmatchcase(finding.spec_ref, self.spec):
            return False
        if self.case is not None and not fnmatch.fnmatchcase(case_id, self.case):
            return False
        return self.message is None or re.search(self.message, finding.message) is not None

    def to_dict(self) -> dict[str, str]:
        return {key: value for key, value in vars(self).items() if value is not None}


@dataclass(frozen=True)
class Deviation:
    """A difference from Anthropic's contract that the provider's docs declare."""

    id: str
    description: str
    source: Source
    field: str = ""  # the row of the spec diff matrix it concerns, if one does
    match: tuple[Matcher, ...] = ()

    @property
    def label(self) -> str:
        """What a finding's `deviation` says: `<id>: <description>`."""
        return f"{self.id}: {self.description}"

    def explains(self, finding: Finding, case_id: str) -> bool:
        return any(matcher.matches(finding, case_id) for matcher in self.match)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "description": self.description, "source": self.source.to_dict()}
        if self.field:
            data["field"] = self.field
        if self.match:
            data["match"] = [matcher.to_dict() for matcher in self.match]
        return data


@dataclass(frozen=True)
class Fact:
    value: Any
    source: Source


@dataclass(frozen=True)
class ProviderProfile:
    """One provider's profile. `capabilities` is what a Target claims (None: everything)."""

    name: str
    title: str
    directory: Path
    base_url: Fact
    base_path: Fact
    auth: Fact
    default_model: Fact
    unsupported: Fact
    extensions: Fact
    deviations: tuple[Deviation, ...] = ()
    sources: dict[str, Source] = field(default_factory=dict)

    @property
    def contract_path(self) -> Path:
        return self.directory / CONTRACT_FILE

    @property
    def capabilities(self) -> frozenset[str] | None:
        missing = frozenset(self.unsupported.value)
        return CAPABILITIES - missing if missing else None

    def deviation(self, deviation_id: str) -> Deviation:
        for deviation in self.deviations:
            if deviation.id == deviation_id:
                return deviation
        raise KeyError(f"{self.name} declares no deviation {deviation_id!r}")

    def summary(self) -> dict[str, Any]:
        """The profile as plain data (for reports and the diff matrix)."""
        return {
            "name": self.name,
            "title": self.title,
            "base_url": self.base_url.value,
            "base_path": self.base_path.value,
            "auth": self.auth.value,
            "default_model": self.default_model.value,
            "unsupported": sorted(self.unsupported.value),
            "extensions": list(self.extensions.value),
            "deviations": [deviation.to_dict() for deviation in self.deviations],
            "sources": {name: source.to_dict() for name, source in sorted(self.sources.items())},
        }


class ProfileError(SpecError):
    """A profile that is missing, malformed, or names an unknown source, capability or auth style."""


def known_providers(directory: Path | None = None) -> list[str]:
    """The providers with a profile under specs/ (sorted; the canonical one first)."""
    base = directory or specs_dir()
    names = sorted(path.parent.name for path in base.glob(f"*/{PROFILE_FILE}"))
    return sorted(names, key=lambda name: (name != CANONICAL, name))


@functools.cache
def _load_profile(path: Path, mtime_ns: int) -> ProviderProfile:
    return parse_profile(load(path), path.parent)


def load_profile(name: str, directory: Path | None = None) -> ProviderProfile:
    """The profile of provider `name`. Raises ProfileError naming the known providers."""
    base = directory or specs_dir()
    path = base / name / PROFILE_FILE
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name) or not path.is_file():
        known = ", ".join(known_providers(base)) or "none"
        raise ProfileError(f"unknown provider {name!r}; known providers: {known}")
    return _load_profile(path.resolve(), path.stat().st_mtime_ns)


def parse_profile(data: Any, directory: Path) -> ProviderProfile:
    """Build a profile from its parsed YAML (validating it)."""
    where = f"{directory.name}/{PROFILE_FILE}"
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: a profile is a mapping")
    sources = {key: _source(where, key, value) for key, value in (data.get("sources") or {}).items()}
    if not sources:
        raise ProfileError(f"{where}: 'sources' must name at least one source")

    def fact(key: str, default: Any = None) -> Fact:
        raw = data.get(key)
        if raw is None:
            if default is None:
                raise ProfileError(f"{where}: '{key}' is required")
            return Fact(default, Source("", ""))
        if not isinstance(raw, dict) or "value" not in raw or raw.get("source") not in sources:
            raise ProfileError(f"{where}: '{key}' must be {{value, source}} with a source from 'sources'")
        return Fact(raw["value"], sources[raw["source"]])

    profile = ProviderProfile(
        name=str(data.get("name", directory.name)),
        title=str(data.get("title", directory.name)),
        directory=directory,
        base_url=fact("base_url"),
        base_path=fact("base_path"),
        auth=fact("auth"),
        default_model=fact("default_model"),
        unsupported=fact("unsupported", []),
        extensions=fact("extensions", []),
        deviations=tuple(_deviation(where, raw, sources) for raw in data.get("deviations") or []),
        sources=sources,
    )
    _validate(where, profile)
    return profile


def _source(where: str, key: str, value: Any) -> Source:
    if not isinstance(value, dict) or not str(value.get("url", "")).startswith("https://"):
        raise ProfileError(f"{where}: source {key!r} needs an https url")
    day = str(value.get("date", ""))
    try:
        date.fromisoformat(day)
    except ValueError:
        raise ProfileError(f"{where}: source {key!r} needs a date (YYYY-MM-DD), got {day!r}") from None
    return Source(url=value["url"], date=day, note=str(value.get("note", "")).strip())


def _deviation(where: str, raw: Any, sources: dict[str, Source]) -> Deviation:
    if not isinstance(raw, dict) or not raw.get("id") or not raw.get("description"):
        raise ProfileError(f"{where}: each deviation needs an id and a description")
    if raw.get("source") not in sources:
        raise ProfileError(f"{where}: deviation {raw['id']!r} names no known source")
    matchers = []
    for item in raw.get("match") or []:
        if not isinstance(item, dict) or not item or set(item) - _MATCH_KEYS:
            raise ProfileError(f"{where}: deviation {raw['id']!r}: a matcher uses only {sorted(_MATCH_KEYS)}")
        if "message" in item:
            re.compile(item["message"])
        matchers.append(Matcher(**{key: str(value) for key, value in item.items()}))
    return Deviation(
        id=str(raw["id"]),
        description=" ".join(str(raw["description"]).split()),
        source=sources[raw["source"]],
        field=str(raw.get("field", "")),
        match=tuple(matchers),
    )


def _validate(where: str, profile: ProviderProfile) -> None:
    if profile.auth.value not in AUTH_STYLES:
        raise ProfileError(f"{where}: auth must be one of {', '.join(AUTH_STYLES)}, got {profile.auth.value!r}")
    unknown = set(profile.unsupported.value) - CAPABILITIES
    if unknown:
        raise ProfileError(f"{where}: unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}")
    base_path = profile.base_path.value
    if not isinstance(base_path, str) or (base_path and (not base_path.startswith("/") or base_path.endswith("/"))):
        raise ProfileError(f"{where}: base_path is '' or a path like /api (no trailing slash), got {base_path!r}")
    ids = [deviation.id for deviation in profile.deviations]
    if len(ids) != len(set(ids)):
        raise ProfileError(f"{where}: deviation ids must be unique")
