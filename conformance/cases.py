"""The case model and the loader of cases/*.yaml.

A case is data: an id, the feature it exercises, the spec clause it traces to, a tier, and one or
more steps, each a request and what to expect of the answer. A later step can reuse what an
earlier one returned (`{$from: steps[0].message.content}`), which is how round trips (tool use ->
tool result, thinking replay) are written. The model name is the placeholder `$model`.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TIERS = ("smoke", "core", "extended")
MODEL_PLACEHOLDER = "$model"
# Keys an `expect:` mapping may hold; see docs/cases.md.
EXPECT_KEYS = frozenset(
    {
        "status",
        "error_type",
        "stream",
        "stop_reason",
        "stop_sequence",
        "text",
        "text_contains",
        "content_types",
        "tool_use",
        "input_tokens_above_step",
        "headers",
    }
)
REQUEST_KEYS = frozenset({"endpoint", "method", "headers", "auth", "body", "raw_body"})
CASE_KEYS = frozenset(
    {"id", "title", "feature", "spec", "tier", "optional", "requires", "request", "expect", "steps", "notes"}
)


class CaseError(ValueError):
    """A case file that cannot be used, with the file and case named in the message."""


@dataclass(frozen=True)
class StepRequest:
    """What one step sends. `headers` values of None remove a default header; `auth` is
    True (the target's style), False (no credentials), or "x-api-key"/"bearer"."""

    endpoint: str = "messages"
    method: str = "POST"
    headers: dict[str, str | None] = field(default_factory=dict)
    auth: bool | str = True
    body: Any = None
    raw_body: str | None = None


@dataclass(frozen=True)
class Step:
    request: StepRequest
    expect: dict[str, Any]


@dataclass(frozen=True)
class Case:
    id: str
    feature: str
    spec: str
    tier: str
    steps: tuple[Step, ...]
    title: str = ""
    optional: bool = False
    # Capabilities the target must claim for the case to apply (vision, thinking...).
    requires: frozenset[str] = frozenset()
    source: str = ""

    @property
    def requests(self) -> int:
        return len(self.steps)

    @property
    def max_output_tokens(self) -> int:
        """The worst-case output tokens the case can cost: the sum of its max_tokens."""
        total = 0
        for step in self.steps:
            body = step.request.body
            if isinstance(body, dict) and isinstance(body.get("max_tokens"), int):
                total += max(body["max_tokens"], 0)
        return total


def default_cases_dir() -> Path:
    """cases/ of the checkout, or the copy packaged into an installed wheel."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "cases"
    return checkout if checkout.is_dir() else here / "_data" / "cases"


def load_cases(directory: Path | None = None) -> list[Case]:
    """Load every cases/**/*.yaml file, sorted by id; ids must be unique."""
    directory = directory or default_cases_dir()
    if not directory.is_dir():
        raise CaseError(f"no cases directory at {directory}")
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.rglob("*.yaml")):
        for case in load_file(path):
            if case.id in seen:
                raise CaseError(f"{path}: case id {case.id!r} is also defined in {seen[case.id]}")
            seen[case.id] = str(path)
            cases.append(case)
    return sorted(cases, key=lambda case: case.id)


def load_file(path: Path) -> list[Case]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CaseError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("cases"), list):
        raise CaseError(f"{path}: expected a mapping with a 'cases' list")
    defaults = {key: document[key] for key in ("feature", "tier", "spec") if key in document}
    return [_case(path, {**defaults, **raw}) for raw in document["cases"]]


def _case(path: Path, raw: Any) -> Case:
    where = f"{path}: case {raw.get('id', '?') if isinstance(raw, dict) else '?'}"
    if not isinstance(raw, dict):
        raise CaseError(f"{where}: a case must be a mapping")
    unknown = set(raw) - CASE_KEYS
    if unknown:
        raise CaseError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("id", "feature", "spec"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise CaseError(f"{where}: '{key}' is required and must be a string")
    tier = raw.get("tier", "core")
    if tier not in TIERS:
        raise CaseError(f"{where}: tier must be one of {TIERS}, got {tier!r}")
    if "steps" in raw:
        if "request" in raw or "expect" in raw:
            raise CaseError(f"{where}: use either 'steps' or 'request'/'expect', not both")
        raw_steps = raw["steps"]
        if not isinstance(raw_steps, list) or not raw_steps:
            raise CaseError(f"{where}: 'steps' must be a non-empty list")
    else:
        raw_steps = [{"request": raw.get("request"), "expect": raw.get("expect", {})}]
    steps = tuple(_step(f"{where} step {i}", s) for i, s in enumerate(raw_steps))
    requires = raw.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(name, str) for name in requires):
        raise CaseError(f"{where}: 'requires' must be a list of capability names")
    return Case(
        id=raw["id"],
        feature=raw["feature"],
        spec=raw["spec"],
        tier=tier,
        steps=steps,
        title=raw.get("title", ""),
        optional=bool(raw.get("optional", False)),
        requires=frozenset(requires),
        source=str(path),
    )


def _step(where: str, raw: Any) -> Step:
    if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
        raise CaseError(f"{where}: a step needs a 'request' mapping")
    request, expect = raw["request"], raw.get("expect") or {}
    unknown = set(request) - REQUEST_KEYS
    if unknown:
        raise CaseError(f"{where}: unknown request keys {sorted(unknown)}")
    if not isinstance(expect, dict) or set(expect) - EXPECT_KEYS:
        raise CaseError(f"{where}: unknown expect keys {sorted(set(expect) - EXPECT_KEYS)}")
    auth = request.get("auth", True)
    if auth not in (True, False, "x-api-key", "bearer"):
        raise CaseError(f"{where}: auth must be true, false, x-api-key or bearer")
    return Step(
        request=StepRequest(
            endpoint=request.get("endpoint", "messages"),
            method=request.get("method", "POST").upper(),
            headers={str(k).lower(): v for k, v in (request.get("headers") or {}).items()},
            auth=auth,
            body=request.get("body"),
            raw_body=request.get("raw_body"),
        ),
        expect=expect,
    )


def select(cases: Iterable[Case], tiers: Iterable[str] | None = None, keyword: str | None = None) -> list[Case]:
    """Cases of the given tiers (a tier includes the cheaper ones) whose id or feature match -k.

    `keyword` is a glob (`stream.*`) or a substring, matched against id and feature; several
    alternatives may be separated by commas; a leading `not ` excludes.
    """
    chosen = list(cases)
    if tiers:
        wanted = set(tiers)
        chosen = [case for case in chosen if case.tier in wanted]
    if keyword:
        chosen = [case for case in chosen if _matches(case, keyword)]
    return chosen


def tiers_up_to(tier: str) -> tuple[str, ...]:
    """smoke -> (smoke,); core -> (smoke, core); extended -> all."""
    return TIERS[: TIERS.index(tier) + 1]


def _matches(case: Case, keyword: str) -> bool:
    negate = keyword.startswith("not ")
    patterns = [p.strip() for p in keyword.removeprefix("not ").split(",") if p.strip()]
    hit = any(
        fnmatch.fnmatchcase(name, pattern) if any(c in pattern for c in "*?[") else pattern in name
        for pattern in patterns
        for name in (case.id, case.feature)
    )
    return hit != negate


_FROM_PATH = re.compile(r"\[(\d+)\]|\.?([A-Za-z_][A-Za-z0-9_-]*)")


def resolve(value: Any, model: str, history: list[dict[str, Any]]) -> Any:
    """Fill in `$model` and `{$from: steps[i].path}` references from earlier steps' answers.

    `history[i]` holds step i's `message` (the final Message) and `response` (the JSON body).
    """
    if isinstance(value, str):
        return model if value == MODEL_PLACEHOLDER else value
    if isinstance(value, list):
        return [resolve(item, model, history) for item in value]
    if isinstance(value, dict):
        if set(value) == {"$from"}:
            return copy.deepcopy(lookup(history, value["$from"]))
        return {key: resolve(item, model, history) for key, item in value.items()}
    return value


def lookup(history: list[dict[str, Any]], path: str) -> Any:
    """Follow a path such as `steps[0].message.content[1].id` into the step history."""
    if not path.startswith("steps"):
        raise CaseError(f"$from path must start with 'steps': {path!r}")
    current: Any = {"steps": history}
    position = 0
    for match in _FROM_PATH.finditer(path):
        if match.start() != position:
            break
        position = match.end()
        index, key = match.groups()
        try:
            current = current[int(index)] if index is not None else current[key]
        except (KeyError, IndexError, TypeError) as exc:
            raise CaseError(f"$from path {path!r}: nothing at {match.group(0)!r}") from exc
    if position != len(path):
        raise CaseError(f"$from path {path!r} is malformed at position {position}")
    return current
