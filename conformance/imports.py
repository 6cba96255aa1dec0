"""Heavy libraries imported where first needed, one thread at a time.

A run judges on one thread while the embedded reference server answers on another, and both import
jsonschema (or openapi-core) only when a case first needs it. Two threads importing the same package
at once can deadlock on Python's per-module import locks; Python then breaks the tie by handing one
of them the package half-initialised, and `from jsonschema import ...` fails there. Importing under
one lock first makes every later `from ... import` a lookup of a whole module.
"""

from __future__ import annotations

import importlib
import threading

_LOCK = threading.Lock()


def first_import(*names: str) -> None:
    """Import the modules `names` whole, one thread at a time (at once when they already are)."""
    with _LOCK:
        for name in names:
            importlib.import_module(name)
