"""Values a run keeps for the next one, in conformance.private_cache's folder: what is slow to compute from
files that rarely change between two runs (the loaded case catalogue, a parsed contract).

An entry is a pickle named by its kind and a digest of everything its value was computed from (the files'
paths, sizes and modification times, this package's version, Python's); a changed input gives another name,
so an entry is never stale, only unused. A missing or damaged entry means computing the value again, never an
error; where there is no private folder, nothing is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from conformance import __version__
from conformance.atomic import atomic_write
from conformance.private_cache import private_cache_dir

T = TypeVar("T")


def entry(kind: str, inputs: list[Path], *identity: str) -> Path | None:
    """The entry of a value of `kind` computed from the files `inputs` as they are now, and from whatever
    else `identity` names (None without a private folder, or when a file cannot be looked at). Taken before
    the files are read, so that a file changed while they are read gives the next run another entry."""
    folder = private_cache_dir()
    if folder is None:
        return None
    key = hashlib.sha256("\0".join((__version__, sys.version, *identity)).encode())
    try:
        for path in inputs:
            info = path.stat()
            key.update(f"\0{path}\0{info.st_size}\0{info.st_mtime_ns}".encode())
    except OSError:
        return None
    return folder / f"{kind}-{key.hexdigest()[:32]}.pickle"


def computed(entry: Path | None, compute: Callable[[], T], at_most: int, kind: type = object) -> T:
    """The value kept in `entry` (when it is a `kind`), else `compute()`'s, kept there for the next run (and no
    more than `at_most` entries of its kind). Without an entry, computed and not kept."""
    if entry is not None:
        try:
            with entry.open("rb") as handle:
                value = pickle.load(handle)
        except Exception:  # missing, half-written by a crash, from an older version: compute it again
            pass
        else:
            if isinstance(value, kind):
                return value  # type: ignore[no-any-return]
    value = compute()
    if entry is not None:
        _keep(entry, value, at_most)
    return value


def _keep(entry: Path, value: Any, at_most: int) -> None:
    """Keep `value` in `entry` for the next run (silently not, where that cannot be done), and no more than
    the `at_most` most recently written entries of its kind (a changed file leaves its old entry behind)."""
    try:
        atomic_write(entry, lambda handle: pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL), binary=True)
    except (OSError, pickle.PicklingError, RecursionError):  # a value nested past what pickle follows: not kept
        return
    kind = entry.name.rsplit("-", 1)[0]
    with contextlib.suppress(OSError):
        entries = entry.parent.glob(f"{kind}-*.pickle")
        for old in sorted(entries, key=lambda path: path.stat().st_mtime_ns, reverse=True)[at_most:]:
            old.unlink()
