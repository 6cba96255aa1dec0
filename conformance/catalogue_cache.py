"""The loaded case catalogue, kept between runs (conformance.kept): reading the YAML files and expanding their
fragments and filler text is most of a small run's fixed cost, and the files rarely change between two runs.

An entry is keyed by everything the loaded cases depend on: every file's path, size and modification time
under the cases directory, and the code that turns files into cases (this package's version and the
loader's own source files).
"""

from __future__ import annotations

from pathlib import Path

from conformance import kept

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
