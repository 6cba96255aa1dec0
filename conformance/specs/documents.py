"""Reading OpenAPI documents from disk and following their `$ref`s, across files.

Provider contracts under specs/ refer to the canonical contract for everything they do not
change (`$ref: '../anthropic/openapi.yaml#/components/schemas/InputMessages'`), and vendored
specs may be split over several files, so a reference is resolved relative to the file that
holds it. Every node handed out carries its location (`file#/json/pointer`), which is how the
merged schema finds its way back to the node a field came from.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from conformance import kept
from conformance.paths import specs_dir

# Parsed documents kept between runs at the most (the contracts of specs/, and a few of one's own).
MAX_KEPT_DOCUMENTS = 32


class SpecError(ValueError):
    """A spec that cannot be read or whose references do not resolve."""


@dataclass(frozen=True)
class Located:
    """A node of a document and where it is: the file and the JSON pointer inside it."""

    file: Path
    pointer: str
    value: Any

    @property
    def location(self) -> str:
        """`anthropic/openapi.yaml#/components/schemas/Message` (relative to specs/ when possible)."""
        return f"{display_path(self.file)}#{self.pointer}"

    def child(self, *keys: str | int) -> Located:
        value = self.value
        pointer = self.pointer
        for key in keys:
            value = value[key]
            pointer += "/" + escape(str(key))
        return Located(self.file, pointer, value)


@functools.cache
def _yaml_loader() -> Any:
    """Safe YAML loading (libyaml's when available: vendored specs run to megabytes) where `2023-06-01`
    stays a string: JSON has no dates, and neither has OpenAPI. PyYAML is imported on the first YAML text
    parsed: a run whose documents are all kept (conformance.kept) never needs it."""
    import yaml

    class SafeLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    SafeLoader.yaml_implicit_resolvers = {
        key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return SafeLoader


def parse(text: str, name: str = "<text>") -> Any:
    """Parse JSON or YAML text (JSON first: it is faster and many .yaml specs are JSON)."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())
    except yaml.YAMLError as exc:
        raise SpecError(f"{name}: neither JSON nor YAML: {exc}") from None


@functools.lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int) -> Any:
    """The parsed document, kept between runs (conformance.kept) until the file or this parser changes:
    the canonical contract takes some 50 ms to parse, a kept copy under 5 ms to read."""
    entry = kept.entry("document", [Path(__file__), path])
    return kept.computed(entry, lambda: parse(path.read_text(encoding="utf-8"), str(path)), MAX_KEPT_DOCUMENTS)


_RECORDERS: list[set[Path]] = []


@contextlib.contextmanager
def recording() -> Iterator[set[Path]]:
    """Collect the files loaded inside the block (what a result computed from them depends on)."""
    files: set[Path] = set()
    _RECORDERS.append(files)
    try:
        yield files
    finally:
        _RECORDERS.remove(files)


def load(path: Path) -> Any:
    """The parsed document at `path` (cached until the file changes)."""
    path = path.resolve()
    for files in _RECORDERS:
        files.add(path)
    try:
        return _load(path, path.stat().st_mtime_ns)
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}") from None


def modified(files: set[Path]) -> tuple[tuple[str, int], ...]:
    """The modification times of files (0 for a file that is gone): a fingerprint of their state."""
    return tuple(sorted((str(f), f.stat().st_mtime_ns if f.is_file() else 0) for f in files))


def root(path: Path) -> Located:
    return Located(path.resolve(), "", load(path))


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return unquote(token).replace("~1", "/").replace("~0", "~")


def resolve(ref: str, base: Path) -> Located:
    """The node a `$ref` found in file `base` points to. Raises SpecError when it does not exist."""
    target, _, fragment = ref.partition("#")
    if "://" in target:
        raise SpecError(f"remote reference {ref!r} in {display_path(base)}: vendor the file first")
    file = (base.parent / target).resolve() if target else base
    node: Any = load(file)
    for token in fragment.split("/")[1:] if fragment else []:
        key = _unescape(token)
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            raise SpecError(f"unresolvable reference {ref!r} in {display_path(base)}")
    return Located(file, fragment, node)


def deref(node: Located, limit: int = 32) -> Located:
    """Follow `$ref`s until a node without one (a chain longer than `limit` is an error)."""
    for _ in range(limit):
        if not (isinstance(node.value, dict) and isinstance(node.value.get("$ref"), str)):
            return node
        node = resolve(node.value["$ref"], node.file)
    raise SpecError(f"reference chain too long at {node.location}")


def inline(node: Located, depth: int = 12) -> Any:
    """A copy of a schema with every `$ref` replaced by its target (recursion cut at `depth`).

    Used to carry a provider's schema for an extension field into the merged schema, where the
    provider's own file is not there to refer to.
    """
    value = node.value
    if isinstance(value, dict):
        if isinstance(value.get("$ref"), str):
            if depth <= 0:
                return {"description": f"(recursive: {value['$ref']})"}
            target = resolve(value["$ref"], node.file)
            siblings = {key: item for key, item in value.items() if key != "$ref"}
            resolved = inline(target, depth - 1)
            return {**resolved, **siblings} if isinstance(resolved, dict) else resolved
        return {key: inline(node.child(key), depth) for key in value}
    if isinstance(value, list):
        return [inline(node.child(index), depth) for index in range(len(value))]
    return value


@functools.lru_cache(maxsize=256)
def display_path(path: Path) -> str:
    """A path relative to specs/ when it is inside it, else as given (called for every node: cached)."""
    try:
        return path.resolve().relative_to(_specs_root()).as_posix()
    except ValueError:
        return str(path)


@functools.cache
def _specs_root() -> Path:
    return specs_dir().resolve()
