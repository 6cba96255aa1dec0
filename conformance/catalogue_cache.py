"""The loaded case catalogue, kept between runs (conformance.kept): reading the YAML files and expanding their
fragments and filler text is most of a small run's fixed cost, and the files rarely change between two runs.

An entry is keyed by everything the loaded cases depend on: every file's path, size and modification time
under the cases directory, and the code that turns files into cases (this package's version and the
loader's own source files).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from conformance import kept

if TYPE_CHECKING:
    from conformance.cases import Case

# The modules whose code decides what a case file loads into.
_LOADER_FILES = ("cases.py", "filler.py")
# Entries kept at the most (the built-in catalogue and a few case folders of one's own); older ones are removed.
MAX_ENTRIES = 8


def catalogue_entry(directory: Path) -> Path | None:
    """The cache file of `directory` as it is now (None without a private folder, or an unreadable tree)."""
    here = Path(__file__).resolve().parent
    try:
        inputs = [*(here / name for name in _LOADER_FILES), *sorted(directory.rglob("*.yaml"))]
    except OSError:
        return None
    return kept.entry("catalogue", inputs, str(directory.resolve()))


def cached_catalogue(entry: Path) -> list[Case] | None:
    """The cases kept in `entry`, if there are."""
    cases = kept.cached(entry)
    return cases if isinstance(cases, list) else None


def keep_catalogue(entry: Path, cases: list[Case]) -> None:
    """Keep `cases` in `entry` for the next run."""
    kept.keep(entry, cases, MAX_ENTRIES)
