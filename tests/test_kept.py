"""What a run keeps for the next (the loaded catalogue, parsed documents) is kept in a private folder, and never
trusted once anything it came from changed, nor read from a folder others could write to."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conformance import cases as cases_module
from conformance import catalogue_cache
from conformance.cases import load_cases
from conformance.private_cache import FOLDER_PREFIX, private_cache_dir
from conformance.specs import documents

CASE_FILE = """\
feature: demo
tier: smoke
spec: messages.basic
cases:
  - id: demo.{name}
    title: {title}
    steps:
      - request: {{body: {{model: $model, max_tokens: 8, messages: [{{role: user, content: Hi}}]}}}}
        expect: {{status: 200}}
"""


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A case folder of one file, and a temporary directory of the test's own for the private folder."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    folder = tmp_path / "cases"
    folder.mkdir()
    (folder / "demo.yaml").write_text(CASE_FILE.format(name="one", title="First"))
    return folder


def _loads_from_files(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Count the loads that read the files."""
    calls: list[Path] = []
    real = cases_module._load_directory
    monkeypatch.setattr(cases_module, "_load_directory", lambda directory: calls.append(directory) or real(directory))
    return calls


def test_a_second_load_comes_from_the_cache_until_a_file_changes(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _loads_from_files(monkeypatch)
    assert [case.title for case in load_cases(scratch)] == ["First"]
    assert [case.title for case in load_cases(scratch)] == ["First"]
    assert len(calls) == 1
    (scratch / "demo.yaml").write_text(CASE_FILE.format(name="one", title="Changed"))
    os.utime(scratch / "demo.yaml", ns=(1, 1))  # a change within the same clock tick is still seen (size, mtime)
    assert [case.title for case in load_cases(scratch)] == ["Changed"]
    (scratch / "more.yaml").write_text(CASE_FILE.format(name="two", title="Second"))
    assert [case.id for case in load_cases(scratch)] == ["demo.one", "demo.two"]
    assert len(calls) == 3


def test_a_damaged_entry_means_loading_the_files_again(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_cases(scratch)
    folder = private_cache_dir()
    assert folder is not None
    for entry in folder.glob("catalogue-*.pickle"):
        entry.write_bytes(b"\x80\x05not a pickle")
    calls = _loads_from_files(monkeypatch)
    assert [case.title for case in load_cases(scratch)] == ["First"]
    assert len(calls) == 1


def test_a_folder_others_can_write_to_is_never_used(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = Path(tempfile.gettempdir()) / f"{FOLDER_PREFIX}{os.getuid()}"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    assert private_cache_dir() is None
    calls = _loads_from_files(monkeypatch)
    load_cases(scratch)
    load_cases(scratch)
    assert len(calls) == 2 and not list(shared.iterdir())


def test_old_entries_are_removed(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue_cache, "MAX_ENTRIES", 2)
    for title in ("A", "BB", "CCC", "DDDD"):  # each a different size: a different entry
        (scratch / "demo.yaml").write_text(CASE_FILE.format(name="one", title=title))
        load_cases(scratch)
    folder = private_cache_dir()
    assert folder is not None and len(list(folder.glob("catalogue-*.pickle"))) == 2


# --- parsed documents -------------------------------------------------------------------------------

SPEC = "openapi: 3.1.0\ninfo: {title: demo, version: '2023-06-01'}\npaths: {}\n"


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the texts parsed, with the in-process cache emptied first (a new run, as far as loading goes)."""
    documents._load.cache_clear()
    calls: list[str] = []
    real = documents.parse
    monkeypatch.setattr(documents, "parse", lambda text, name="<text>": calls.append(name) or real(text, name))
    return calls


def test_a_parsed_document_is_kept_for_the_next_run_until_the_file_changes(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = scratch / "spec.yaml"
    spec.write_text(SPEC)
    calls = _parses(monkeypatch)
    assert documents.load(spec)["info"]["version"] == "2023-06-01"  # a date stays a string
    documents._load.cache_clear()
    assert documents.load(spec)["info"]["title"] == "demo"
    assert len(calls) == 1
    spec.write_text(SPEC.replace("demo", "other"))
    os.utime(spec, ns=(1, 1))
    documents._load.cache_clear()
    assert documents.load(spec)["info"]["title"] == "other"
    assert len(calls) == 2


def test_a_damaged_document_entry_means_parsing_the_file_again(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = scratch / "spec.yaml"
    spec.write_text(SPEC)
    calls = _parses(monkeypatch)
    documents.load(spec)
    folder = private_cache_dir()
    assert folder is not None
    (entry,) = folder.glob("document-*.pickle")  # the one document was kept
    entry.write_bytes(b"\x80\x05not a pickle")
    documents._load.cache_clear()
    assert documents.load(spec)["info"]["title"] == "demo"
    assert len(calls) == 2


def test_with_the_contract_kept_judging_needs_no_yaml(tmp_path: Path) -> None:
    """The second process to read the canonical contract reads it kept, and never imports PyYAML."""
    code = (
        "import sys\n"
        "from conformance import contract\n"
        "assert contract.document()['components']['schemas']['Message']\n"
        "print('yaml' in sys.modules)"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    imported = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert imported == ["True", "False"]
