"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# pytester's in-process runs (test_secrets.py, test_pytest_plugin.py...) drop the modules first imported during
# them from sys.modules. PyYAML, imported by the package only when a file is read, would then be imported again
# beside its C extension, which cannot be: the next YAML read fails. It is imported once, here, before any run.
import yaml  # noqa: F401

from tests.browser import Browser, find_chromium


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is required in CI (apt-get install -y chromium)")
        pytest.skip("no chromium found (apt-get install -y chromium)")
    instance = Browser(executable, tmp_path / "chromium-profile")
    try:
        yield instance
    finally:
        instance.close()
