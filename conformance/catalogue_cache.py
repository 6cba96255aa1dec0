"""The loaded case catalogue, kept between runs: reading the YAML files and expanding their fragments and
filler text is most of a small run's fixed cost, and the files rarely change between two runs.

An entry is keyed by everything the loaded cases depend on: every file's path, size and modification time
under the cases directory, and the code that turns files into cases (this package's version and the
loader's own source files). It lives in conformance.private_cache's folder. A missing, stale or damaged
entry means loading the files again, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from conformance import __version__
from conformance.atomic import atomic_write
from conformance.private_cache import private_cache_dir

if TYPE_CHECKING:
    from conformance.cases import Case

# The modules whose code decides what a case file loads into.
_LOADER_FILES = ("cases.py", "filler.py")
# Entries kept at the most (the built-in catalogue and a few case folders of one's own); older ones are removed.
MAX_ENTRIES = 8


def catalogue_entry(directory: Path) -> Path | None:
    """The cache file of `directory` as it is now: taken before its files are read, so that a file changed
    while they are read gives the next run another entry (None without a private folder, or an unreadable tree)."""
    folder = private_cache_dir()
    if folder is None:
        return None
    key = hashlib.sha256(f"{__version__}\0{sys.version}\0{directory.resolve()}".encode())
    here = Path(__file__).resolve().parent
    try:
        for path in [*(here / name for name in _LOADER_FILES), *sorted(directory.rglob("*.yaml"))]:
            info = path.stat()
            key.update(f"\0{path}\0{info.st_size}\0{info.st_mtime_ns}".encode())
    except OSError:
        return None
    return folder / f"catalogue-{key.hexdigest()[:32]}.pickle"


def cached_catalogue(entry: Path) -> list[Case] | None:
    """The cases kept in `entry`, if there are."""
    try:
        with entry.open("rb") as handle:
            cases = pickle.load(handle)
    except Exception:  # missing, half-written by a crash, from an older loader: load the files again
        return None
    return cases if isinstance(cases, list) else None


def keep_catalogue(entry: Path, cases: list[Case]) -> None:
    """Keep `cases` in `entry` for the next run (silently not, where that cannot be done)."""
    try:
        atomic_write(entry, lambda handle: pickle.dump(cases, handle, protocol=pickle.HIGHEST_PROTOCOL), binary=True)
    except (OSError, pickle.PicklingError):
        return
    _forget_old(entry.parent)


def _forget_old(folder: Path) -> None:
    """Remove all but the MAX_ENTRIES most recently written entries (a changed file leaves its old entry behind)."""
    with contextlib.suppress(OSError):
        entries = sorted(folder.glob("catalogue-*.pickle"), key=lambda path: path.stat().st_mtime_ns, reverse=True)
        for old in entries[MAX_ENTRIES:]:
            old.unlink()
