"""A folder of this user's, in the temporary directory, for what a run can keep for the next one: the loaded
case catalogue and report.html's compiled templates.

What it holds is trusted (a pickle is code, and so is a compiled template), so the folder is used only when
nobody else can write to it: created with mode 0700, and checked to be a real directory owned by this user with
no access for group or others. Where that cannot be had (another user's folder there, no uid on this system),
there is no cache; nothing ever fails for want of one.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

FOLDER_PREFIX = "conformance-cache-"


def private_cache_dir() -> Path | None:
    """The folder (made if needed), or None when no folder only this user can write to is available."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return None
    path = Path(tempfile.gettempdir()) / f"{FOLDER_PREFIX}{getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and info.st_uid == getuid() and not info.st_mode & 0o077
    return path if private else None
