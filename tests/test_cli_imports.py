"""Declaring the command line imports none of the heavy libraries; a run without generated cases, no schemathesis."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "schemathesis",
    "hypothesis",
    "httpx",
    "jsonschema",
    "uvicorn",
    "starlette",
    "rich",
    "jinja2",
    "asyncio",
    "yaml",
)
HELP = (
    "import contextlib, io\n"
    "from conformance.cli import main\n"
    "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
    "    main(['--help'])"
)


def _imported_after(code: str) -> set[str]:
    """Every module (dotted name) a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(completed.stdout.splitlines()[-1]))


def _heavy(modules: set[str]) -> set[str]:
    """The heavy libraries among `modules`, by top-level name."""
    return {name.split(".")[0] for name in modules} & set(HEAVY)


def test_help_imports_no_heavy_library() -> None:
    assert _heavy(_imported_after(HELP)) == set()


def test_a_plan_without_generated_cases_imports_no_schemathesis() -> None:
    code = (
        "from conformance.cases import load_cases\n"
        "from conformance.generate.options import Budget\n"
        "from conformance.generate.plan import make_plan\n"
        "import conformance.generate.session\n"
        "make_plan(load_cases(), None, Budget(None, None))"
    )
    assert not _heavy(_imported_after(code)) & {"schemathesis", "hypothesis"}


def test_help_imports_none_of_the_commands_modules() -> None:
    """`conformance --help` declares each command by its one line: no catalogue, transport, report or spec module."""
    loaded = {name for name in _imported_after(HELP) if name.startswith("conformance.")}
    assert not {"conformance.cases", "conformance.transport", "conformance.model", "conformance.baseline"} & loaded
    assert not {name for name in loaded if name.startswith(("conformance.report", "conformance.specs."))}
