"""Writing a file so that readers see either its old content or the whole new one, never half of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

# Every file is first written under a temporary name ending so, then renamed.
TEMP_SUFFIX = ".tmp"


def atomic_write(path: Path, write: Callable[[IO[Any]], object], *, binary: bool = False) -> None:
    """Have `write` fill a temporary file next to `path` (text, or bytes when `binary`), then rename it over `path`.

    A run interrupted mid-write (Ctrl-C, CI timeout) must not leave a half file behind that a later reader
    (`conformance matrix`, the next run's cache) would choke on. `write` may stream its output: nothing needs
    to hold the whole document in memory. Whatever fails, the temporary file is removed and the error raised.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        handle = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="\n")
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file private (0600); reports are meant to be shared as CI artifacts.
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (see `atomic_write`)."""
    atomic_write(path, lambda handle: handle.write(text))
