"""Where the packaged data lives: a leaf module, so that every reader of specs/ can import it."""

from __future__ import annotations

from pathlib import Path


def specs_dir() -> Path:
    """The specs/ directory: the repository's, or the copy packaged inside an installed wheel."""
    repo = Path(__file__).resolve().parents[1] / "specs"
    if repo.is_dir():
        return repo
    return Path(__file__).parent / "_data" / "specs"
