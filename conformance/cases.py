"""The case model and the loader of cases/*.yaml.

A case is data: an id, the feature it exercises, the spec clause it traces to, a tier, and one or
more steps, each a request and what to expect of the answer. A later step can reuse what an
earlier one returned (`{$from: steps[0].message.content}`), which is how round trips (tool use ->
tool result, thinking replay) are written. The model name is the placeholder `$model`.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance import catalogue_cache, kept
from conformance.filler import filler

# Cheapest first. A tier includes the ones before it: `--tier extended` runs smoke, core and
# extended. `provider` comes last, so it is selected only when asked for by name: it holds probes of
# behaviour where providers legitimately differ (policies, client profiles, newer API versions).
TIERS = ("smoke", "core", "extended", "provider")
MODEL_PLACEHOLDER = "$model"
SHARED_FILE = "_shared.yaml"
SHARED_KEY = "$shared"
TEXT_KEY = "$text"
# Keys an `expect:` mapping may hold; see docs/how-to/cases.md.
EXPECT_KEYS = frozenset(
    {
        "status",
        "error_type",
        "stream",
        "stop_reason",
        "stop_sequence",
        "stop_details",
        "text",
        "text_contains",
        "content_types",
        "blocks_include",
        "tool_use",
        "tool_use_count",
        "citations",
        "json_output",
        "same_content_as_step",
        "input_tokens_above_step",
        "input_tokens_near_step",
        "headers",
        "stream_error",
        "event_types_include",
        "min_events",
        "max_event_gap",
    }
)
# What a target may claim (`--capabilities`); a case that requires one the target does not claim is
# skipped. docs/how-to/cases.md describes each.
CAPABILITIES: dict[str, str] = {
    "instruction-following": "the model obeys plain prompts: exact replies, counting, tool calls on request",
    "fault-injection": "the upstream follows the reference server's `Simulate ...` directives",
    "magic-strings": "the backend honours Anthropic's documented test strings (refusal, redacted thinking)",
    "tools": "client tool definitions, tool_choice, tool_use and tool_result blocks",
    "vision": "image blocks (base64 and URL sources), also inside tool_result",
    "pdf": "document blocks holding a PDF (base64 or URL source)",
    "documents": "document blocks with a plain-text or a content source",
    "search-results": "search_result blocks",
    "citations": "citations enabled on documents and search results",
    "url-sources": "image and document sources given by URL (fetched by the server)",
    "thinking": "extended thinking: enabled, adaptive, signatures and their round trip",
    "prompt-caching": "cache_control on system, messages and tools (ttl 5m and 1h)",
    "structured-outputs": "output_config.format with a JSON schema",
    "effort": "output_config.effort",
    "count_tokens": "POST /v1/messages/count_tokens",
    "server-tools": "versioned server tools such as web_search_20250305",
    "programmatic-tools": "client tools called from code execution (allowed_callers, a caller on tool_use)",
}
# Expectations that only a model that does what the prompt says can meet. A case using one must
# require a capability that makes the answer predictable (ANSWER_CAPABILITIES), so that a target
# serving a model that does not follow instructions (random weights, a tiny model) can skip it.
MODEL_DEPENDENT_EXPECT = frozenset(
    {
        "stop_reason",
        "stop_sequence",
        "stop_details",
        "text",
        "text_contains",
        "content_types",
        "tool_use",
        "tool_use_count",
        "citations",
        "same_content_as_step",
    }
)
ANSWER_CAPABILITIES = frozenset({"instruction-following", "fault-injection", "magic-strings"})


# Top-level keys of a case file besides `x-…` (free for YAML anchors): defaults for its cases.
FILE_KEYS = frozenset({"cases", "feature", "tier", "spec", "optional", "requires"})
REQUEST_KEYS = frozenset({"endpoint", "method", "headers", "auth", "body", "raw_body"})
CASE_KEYS = frozenset(
    {"id", "title", "feature", "spec", "tier", "optional", "requires", "request", "expect", "steps", "notes"}
)


def default_capabilities(reference: bool) -> frozenset[str] | None:
    """What a target that declares nothing is taken to claim: everything (None) for the reference
    server; everything but `fault-injection` for any other, whose model does not follow the
    reference server's `Simulate ...` prompts."""
    return None if reference else frozenset(CAPABILITIES) - {"fault-injection"}


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
    # Built from the contract by `conformance run --generated` (conformance.generate), not read from cases/.
    generated: bool = False

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
    """Load every cases/**/*.yaml file, sorted by id; ids must be unique.

    Files whose name starts with `_` are not case files: `_shared.yaml` holds fragments (tools,
    images, documents) that cases of any file insert with `{$shared: name}`. What the files load
    into is kept for the next run until one of them changes (conformance.catalogue_cache).
    """
    directory = directory or default_cases_dir()
    if not directory.is_dir():
        raise CaseError(f"no cases directory at {directory}")
    entry = catalogue_cache.catalogue_entry(directory)
    return kept.computed(entry, lambda: _load_directory(directory), catalogue_cache.MAX_ENTRIES, list)


def _load_directory(directory: Path) -> list[Case]:
    fragments = load_fragments(directory)
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.rglob("*.yaml")):
        if path.name.startswith("_"):
            continue
        for case in load_file(path, fragments):
            if case.id in seen:
                raise CaseError(f"{path}: case id {case.id!r} is also defined in {seen[case.id]}")
            seen[case.id] = str(path)
            cases.append(case)
    return sorted(cases, key=lambda case: case.id)


def load_fragments(directory: Path) -> dict[str, Any]:
    """The named fragments of `directory/_shared.yaml` ({} when there is none)."""
    path = directory / SHARED_FILE
    if not path.is_file():
        return {}
    document = _read_yaml(path)
    if not isinstance(document, dict):
        raise CaseError(f"{path}: expected a mapping of fragment names to values")
    return document


def load_file(path: Path, fragments: dict[str, Any] | None = None) -> list[Case]:
    """The cases of one file; `{$shared: name}` is filled from `fragments` (default: the file's folder's)."""
    document = _read_yaml(path)
    if not isinstance(document, dict) or not isinstance(document.get("cases"), list):
        raise CaseError(f"{path}: expected a mapping with a 'cases' list")
    if fragments is None:
        fragments = load_fragments(path.parent)
    unknown = sorted(key for key in document if key not in FILE_KEYS and not str(key).startswith("x-"))
    if unknown:
        raise CaseError(f"{path}: unknown top-level keys {unknown} (free ones start with 'x-')")
    defaults = {key: document[key] for key in ("feature", "tier", "spec", "optional") if key in document}
    shared = document.get("requires", [])
    if not isinstance(shared, list):
        raise CaseError(f"{path}: 'requires' must be a list of capability names")
    return [
        _case(path, _with_defaults(defaults, shared, _insert_fragments(raw, fragments, path)))
        for raw in document["cases"]
    ]


def _read_yaml(path: Path) -> Any:
    import yaml  # only when a case file is read: declaring the command line imports this module

    # libyaml's loader when PyYAML was built with it (four times faster on the catalogue), else the pure-Python one.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except yaml.YAMLError as exc:
        raise CaseError(f"{path}: not valid YAML: {exc}") from exc


def _insert_fragments(value: Any, fragments: dict[str, Any], path: Path) -> Any:
    """`value` with every `{$shared: name}` replaced by a copy of that fragment, and every
    `{$text: {bytes: N, seed: S}}` by that much filler text.

    Other keys next to `$shared` are set on the copy (`{$shared: weather_tool, strict: true}`).
    """
    if isinstance(value, list):
        return [_insert_fragments(item, fragments, path) for item in value]
    if not isinstance(value, dict):
        return value
    if TEXT_KEY in value:
        return _generated_text(value, path)
    if SHARED_KEY not in value:
        return {key: _insert_fragments(item, fragments, path) for key, item in value.items()}
    name = value[SHARED_KEY]
    if not isinstance(name, str) or name not in fragments:
        raise CaseError(f"{path}: unknown shared fragment {name!r}; known: {sorted(fragments)}")
    fragment = _insert_fragments(copy.deepcopy(fragments[name]), fragments, path)
    extra = {key: _insert_fragments(item, fragments, path) for key, item in value.items() if key != SHARED_KEY}
    if not extra:
        return fragment
    if not isinstance(fragment, dict):
        raise CaseError(f"{path}: shared fragment {name!r} is not a mapping, so keys cannot be added to it")
    return {**fragment, **extra}


# Each text is made once per process, however many cases insert it (bounded by the catalogue itself).
_filler = functools.cache(filler)


def _generated_text(value: dict[str, Any], path: Path) -> str:
    """`{$text: {bytes: N, seed: S}}`: N bytes of filler text (conformance.filler), seed 0 by default."""
    spec = value[TEXT_KEY]
    if set(value) != {TEXT_KEY} or not isinstance(spec, dict) or set(spec) - {"bytes", "seed"}:
        raise CaseError(f"{path}: expected {{$text: {{bytes: N, seed: S}}}}, got {value!r}")
    size, seed = spec.get("bytes"), spec.get("seed", 0)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (size, seed)):
        raise CaseError(f"{path}: $text needs an integer 'bytes' (and an integer 'seed'), got {spec!r}")
    try:
        return _filler(size, seed)
    except ValueError as exc:
        raise CaseError(f"{path}: $text: {exc}") from None


def _with_defaults(defaults: dict[str, Any], shared: list[Any], raw: Any) -> Any:
    """A case with the file's defaults filled in; the file's `requires` adds to the case's own."""
    if not isinstance(raw, dict):
        return raw
    case = {**defaults, **raw}
    if shared:
        own = raw.get("requires", [])
        case["requires"] = [*shared, *own] if isinstance(own, list) else own
    return case


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
    steps = tuple(_step(f"{where} step {i}", s, i) for i, s in enumerate(raw_steps))
    requires = raw.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(name, str) for name in requires):
        raise CaseError(f"{where}: 'requires' must be a list of capability names")
    unknown_capabilities = sorted(set(requires) - set(CAPABILITIES))
    if unknown_capabilities:
        raise CaseError(f"{where}: unknown capabilities {unknown_capabilities}; known: {sorted(CAPABILITIES)}")
    dependent = sorted({key for step in steps for key in step.expect} & MODEL_DEPENDENT_EXPECT)
    if dependent and not ANSWER_CAPABILITIES & set(requires):
        raise CaseError(
            f"{where}: expectations {dependent} depend on what the model answers; the case must require "
            f"one of {sorted(ANSWER_CAPABILITIES)}"
        )
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


def _step(where: str, raw: Any, index: int = 0) -> Step:
    if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
        raise CaseError(f"{where}: a step needs a 'request' mapping")
    request, expect = raw["request"], raw.get("expect") or {}
    unknown = set(request) - REQUEST_KEYS
    if unknown:
        raise CaseError(f"{where}: unknown request keys {sorted(unknown)}")
    if not isinstance(expect, dict) or set(expect) - EXPECT_KEYS:
        raise CaseError(f"{where}: unknown expect keys {sorted(set(expect) - EXPECT_KEYS)}")
    _check_expect(where, expect, index)
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


def _check_expect(where: str, expect: dict[str, Any], index: int) -> None:
    """The shape of the expectation values whose mistakes would otherwise only show at run time."""

    def fail(key: str, wanted: str) -> None:
        raise CaseError(f"{where}: expect.{key} must be {wanted}, got {expect[key]!r}")

    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    for key in ("same_content_as_step", "input_tokens_above_step", "input_tokens_near_step"):
        if key in expect and not (is_int(expect[key]) and 0 <= expect[key] < index):
            fail(key, f"the index of an earlier step (0..{index - 1})")
    if "tool_use_count" in expect and not (is_int(expect["tool_use_count"]) and expect["tool_use_count"] >= 0):
        fail("tool_use_count", "an integer >= 0")
    for key in ("blocks_include", "event_types_include"):
        if key in expect and not (isinstance(expect[key], list) and all(isinstance(t, str) for t in expect[key])):
            fail(key, "a list of type names")
    if "min_events" in expect:
        counts = expect["min_events"]
        if not isinstance(counts, dict) or not all(isinstance(k, str) and is_int(v) for k, v in counts.items()):
            fail("min_events", "a mapping of event type to a minimum count")
    if "max_event_gap" in expect:
        gap = expect["max_event_gap"]
        if isinstance(gap, bool) or not isinstance(gap, (int, float)) or gap <= 0:
            fail("max_event_gap", "a positive number of seconds")
    for key in ("citations", "json_output"):
        if key in expect and not isinstance(expect[key], bool):
            fail(key, "true or false")
    if "stop_details" in expect and not isinstance(expect["stop_details"], (dict, type(None))):
        fail("stop_details", "a mapping (the fields the stop_details must have) or null")


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
    """smoke -> (smoke,); core -> (smoke, core); extended -> (smoke, core, extended); provider -> all."""
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


_FROM_PATH = re.compile(r"\[(-?\d+)\]|\.?([A-Za-z_][A-Za-z0-9_-]*)")


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
