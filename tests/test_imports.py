"""Heavy libraries imported on first need are imported whole, one thread at a time: threads that need
them together (the judge's, the embedded server's) each find the whole module.

Without the lock, threads that import jsonschema's submodules at once in a fresh interpreter hit
Python's import deadlock detection more often than not (`_DeadlockError`, or a module handed over
half-initialised)."""

from __future__ import annotations

import subprocess
import sys

# A fresh interpreter: four threads start together, each needing another part of jsonschema, as the
# checks and the reference server do.
SCRIPT = """
import threading
from conformance.imports import first_import

errors = []
start = threading.Barrier(4)

def need(first: str, module: str, name: str) -> None:
    start.wait()
    try:
        first_import(first)
        getattr(__import__(module, fromlist=[name]), name)
    except Exception as exc:
        errors.append(repr(exc))

needs = [
    ("jsonschema", "jsonschema", "Draft202012Validator"),
    ("jsonschema", "jsonschema.validators", "Draft3Validator"),
    ("jsonschema", "jsonschema.exceptions", "SchemaError"),
    ("referencing.jsonschema", "referencing.jsonschema", "DRAFT202012"),
]
threads = [threading.Thread(target=need, args=each) for each in needs]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(errors)
"""


def test_threads_needing_jsonschema_at_once_each_find_it_whole() -> None:
    for _ in range(10):
        completed = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
        assert completed.stdout.strip() == "[]", completed.stdout + completed.stderr
