"""Consumer profiles: the subset of the catalogue one client relies on.

A profile answers "can I deploy this gateway for <client>'s users?". It is data (profiles/*.yaml)
and selects cases by rule, never by a frozen list, so cases added later join the profiles they
belong to: a case is in a profile when its feature is one of the profile's `features` or its id
matches one of the `ids` globs, its tier is one of `tiers` (default: those a default run covers,
smoke to extended), and its id matches
none of the `exclude` globs.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from conformance.cases import TIERS, Case, select, tiers_up_to
from conformance.model import CaseResult, Outcome

# What a profile covers unless it lists its tiers: what a default run covers (`provider` probes are
# opt-in everywhere).
DEFAULT_TIERS = frozenset(tiers_up_to("extended"))
PROFILE_KEYS = frozenset({"name", "title", "description", "features", "ids", "exclude", "tiers", "clients"})


class ProfileError(ValueError):
    """A profile that cannot be used (unknown name, malformed file), named in the message."""


class Identified(Protocol):
    """What a profile looks at: a Case and a CaseResult both have these."""

    @property
    def id(self) -> str: ...

    @property
    def feature(self) -> str: ...

    @property
    def tier(self) -> str: ...


T = TypeVar("T", bound=Identified)


@dataclass(frozen=True)
class Profile:
    name: str
    title: str = ""
    description: str = ""
    features: frozenset[str] = frozenset()
    ids: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    tiers: frozenset[str] = DEFAULT_TIERS
    source: str = ""
    # The real clients (conformance.impact names) whose breakage the profile's readiness counts.
    clients: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.title or self.name

    def matches(self, case: Identified) -> bool:
        if _any_glob(case.id, self.exclude):
            return False
        return (case.feature in self.features and case.tier in self.tiers) or _any_glob(case.id, self.ids)

    def select(self, cases: Iterable[T]) -> list[T]:
        """The cases (or results) of this profile, in their original order."""
        return [case for case in cases if self.matches(case)]


def _any_glob(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def select_cases(
    cases: Iterable[Case],
    tier: str | None = None,
    keyword: str | None = None,
    profile: Profile | None = None,
    default_tier: str | None = "extended",
) -> list[Case]:
    """The cases a `--tier` / `-k` / `--profile` selection runs.

    An explicit tier applies to everything; without one, a profile chooses its own cases (tiers
    included), and a plain run takes the tiers up to `default_tier` (None: all).
    """
    if tier is not None:
        tiers: tuple[str, ...] | None = tiers_up_to(tier)
    elif profile is None and default_tier is not None:
        tiers = tiers_up_to(default_tier)
    else:
        tiers = None
    chosen = select(cases, tiers, keyword)
    return profile.select(chosen) if profile is not None else chosen


def default_profiles_dir() -> Path:
    """profiles/ of the checkout, or the copy packaged into an installed wheel."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "profiles"
    return checkout if checkout.is_dir() else here / "_data" / "profiles"


def profile_names(directory: Path | None = None) -> list[str]:
    """The names of the profiles in profiles/ (sorted), read from the file names alone: no file is parsed."""
    directory = directory or default_profiles_dir()
    return sorted(path.stem for path in directory.glob("*.yaml")) if directory.is_dir() else []


def load_profiles(directory: Path | None = None) -> dict[str, Profile]:
    """Every profiles/*.yaml, keyed by name (sorted); a profile there is named as its file (`profile_names`)."""
    directory = directory or default_profiles_dir()
    if not directory.is_dir():
        return {}
    profiles: dict[str, Profile] = {}
    for path in sorted(directory.glob("*.yaml")):
        profile = load_profile_file(path)
        if profile.name != path.stem:
            raise ProfileError(f"{path}: profile {profile.name!r} must be named as its file, {path.stem!r}")
        profiles[profile.name] = profile
    return dict(sorted(profiles.items()))


def get_profile(name_or_path: str, directory: Path | None = None) -> Profile:
    """A built-in profile by name, or a profile file by path (a gateway may write its own)."""
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise ProfileError(f"no profile file at {path}")
        return load_profile_file(path)
    profiles = load_profiles(directory)
    if name_or_path not in profiles:
        known = ", ".join(profiles) or "none"
        raise ProfileError(f"unknown profile {name_or_path!r} (known: {known}; or give a path to a .yaml file)")
    return profiles[name_or_path]


def load_profile_file(path: Path) -> Profile:
    import yaml  # only when a profile is read: declaring the command line imports this module

    # The C (libyaml) safe loader when available: several times faster on large files.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        raw: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: cannot read the profile: {exc}") from exc
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: a profile must be a mapping")
    unknown = set(raw) - PROFILE_KEYS
    if unknown:
        raise ProfileError(f"{path}: unknown keys {sorted(unknown)}")
    tiers = _strings(path, raw, "tiers") or DEFAULT_TIERS
    bad_tiers = set(tiers) - set(TIERS)
    if bad_tiers:
        raise ProfileError(f"{path}: tiers must be among {TIERS}, got {sorted(bad_tiers)}")
    profile = Profile(
        name=str(raw.get("name") or path.stem),
        title=str(raw.get("title") or ""),
        description=" ".join(str(raw.get("description") or "").split()),
        features=frozenset(_strings(path, raw, "features")),
        ids=_strings(path, raw, "ids"),
        exclude=_strings(path, raw, "exclude"),
        tiers=frozenset(tiers),
        source=str(path),
        clients=_strings(path, raw, "clients"),
    )
    if not profile.features and not profile.ids:
        raise ProfileError(f"{path}: a profile needs 'features' or 'ids' to select any case")
    return profile


def _strings(path: Path, raw: dict[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ProfileError(f"{path}: '{key}' must be a list of strings")
    return tuple(value)


READY, NOT_READY, INCOMPLETE, NOT_RUN = "ready", "not ready", "incomplete", "not run"
READY_WITH_WARNINGS = "ready with warnings"


def readiness(outcomes: Iterable[Outcome], not_run: int = 0) -> str:
    """Can this client be deployed on the target, going by its profile's outcomes?

    `not ready` when a case failed or errored; `incomplete` when nothing failed but some of the
    profile's cases were skipped or not run; `not run` when none were run; otherwise `ready`
    (deviations and clean refusals of optional features included: they are documented or clean),
    `ready with warnings` when some case warned (within the contract, but the client may feel it).
    """
    outcomes = list(outcomes)
    if any(outcome in (Outcome.FAILED, Outcome.ERROR) for outcome in outcomes):
        return NOT_READY
    if not outcomes:
        return NOT_RUN
    if not_run or Outcome.SKIPPED in outcomes:
        return INCOMPLETE
    return READY_WITH_WARNINGS if Outcome.WARNING in outcomes else READY


def breakage(profile: Profile, results: Iterable[CaseResult]) -> list[str]:
    """How many of the profile's cases break each of its clients, as the clients' impact says: one
    phrase per client ("breaks Claude Code: 4 of its cases"); none when no impact was computed."""
    from conformance.impact.names import BREAKS, client_title
    from conformance.impact.tally import effect_of

    chosen = profile.select(results)
    phrases = []
    for client in profile.clients:
        effects = [effect for result in chosen if (effect := effect_of(result, client)) is not None]
        if effects:
            phrases.append(f"breaks {client_title(client)}: {effects.count(BREAKS)} of its {len(chosen)} cases")
    return phrases
