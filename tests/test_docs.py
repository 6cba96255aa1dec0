"""The user's guide holds: every relative link in README.md and docs/ resolves, and every command block
marked runnable (a `<!-- runnable -->` line right before a ```sh block) runs, against the embedded
reference server or one the test starts ($BASE_URL and $API_KEY)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.reference import ReferenceServer

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
RUNNABLE = re.compile(r"<!-- runnable -->\n```sh\n(.*?)```", re.S)
# Generous: a hang guard, not a timing.
BLOCK_TIMEOUT = 300


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)  # code is not a link
    return [
        target.split("#")[0]
        for target in LINK.findall(text)
        if not re.match(r"[a-z]+:", target) and not target.startswith("#")
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    missing = [target for target in relative_links(page) if not (page.parent / target).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to what does not exist: {missing}"


# A path into the guide named in code, a comment, a help text or a data file ("see docs/how-to/proxy.md").
DOCS_PATH = re.compile(r"(?<![\w/.-])docs/[\w./-]+?\.(?:md|yml|py)\b")
NAMING_DIRS = ("conformance", "tests", "benchmarks", "cases", "profiles", "specs", ".ci")


def files_naming_docs() -> list[Path]:
    files = [ROOT / "action.yml", ROOT / "tox.ini", ROOT / "pyproject.toml", *PAGES]
    files += [path for folder in NAMING_DIRS for path in sorted((ROOT / folder).rglob("*")) if path.is_file()]
    return [path for path in files if path.suffix in {"", ".py", ".md", ".yaml", ".yml", ".ini", ".toml"}]


def test_every_docs_path_named_outside_links_exists() -> None:
    """The guide's pages move; a docstring, a --help text or a comment naming one must move with it."""
    stale = [
        f"{path.relative_to(ROOT)}: {named}"
        for path in files_naming_docs()
        for named in DOCS_PATH.findall(path.read_text(encoding="utf-8", errors="replace"))
        if not (ROOT / named).exists()
    ]
    assert not stale, stale


def runnable_blocks() -> list[tuple[str, str]]:
    return [
        (f"{page.relative_to(ROOT)}#{number}", block)
        for page in PAGES
        for number, block in enumerate(RUNNABLE.findall(page.read_text(encoding="utf-8")), 1)
    ]


# The guide's four parts and their pages (docs/README.md says what each is for).
GUIDE = {
    "tutorial": ["first-run", "your-gateway", "ci"],
    "how-to": [
        "baseline",
        "profiles",
        "record-and-recheck",
        "matrix",
        "proxy",
        "pytest",
        "generated",
        "cases",
        "impact",
        "contract",
    ],
    "reference": ["cli", "report-json", "verdicts", "robustness", "reference-server", "bug-patterns"],
    "background": ["peers", "clients", "performance"],
}


def test_every_page_sits_in_one_part_and_the_index_links_it() -> None:
    docs = ROOT / "docs"
    pages = {page.relative_to(docs).as_posix() for page in docs.rglob("*.md")} - {"README.md"}
    assert pages == {f"{part}/{name}.md" for part, names in GUIDE.items() for name in names}
    assert pages <= set(relative_links(docs / "README.md"))


def test_the_guide_has_runnable_commands() -> None:
    pages = {name.split("#")[0] for name, _ in runnable_blocks()}
    tutorials = {f"docs/tutorial/{name}.md" for name in GUIDE["tutorial"]}
    how_tos = {f"docs/how-to/{name}.md" for name in ("baseline", "profiles", "record-and-recheck", "matrix")}
    assert tutorials | how_tos <= pages


@pytest.mark.parametrize(("name", "block"), runnable_blocks(), ids=[name for name, _ in runnable_blocks()])
def test_a_runnable_block_runs(name: str, block: str, tmp_path: Path) -> None:
    key = "ref-" + secrets.token_hex(16)
    bin_dir = str(Path(sys.executable).parent)
    with ReferenceServer(api_key=key) as server:
        env = {**os.environ, "BASE_URL": server.base_url, "API_KEY": key, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
    assert done.returncode == 0, f"{name} failed:\n{block}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_the_action_runs_the_suite_and_reports_its_exit_code(tmp_path: Path) -> None:
    """action.yml's run step, as the runner would execute it, against a reference server the test starts."""
    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert {"base-url", "api-key", "provider", "baseline", "fail-on", "args"} <= set(action["inputs"])
    assert action["runs"]["using"] == "composite"
    step = next(step for step in action["runs"]["steps"] if step.get("id") == "run")
    upload = action["runs"]["steps"][-1]
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "${{ !cancelled() }}"
    key = "ref-" + secrets.token_hex(16)
    output = tmp_path / "github-output"
    with ReferenceServer(api_key=key) as server:
        inputs = {
            "INPUT_BASE_URL": server.base_url,
            "INPUT_PROVIDER": "anthropic",
            "INPUT_BASELINE": "",
            "INPUT_FAIL_ON": "failed",
            "INPUT_ARGS": "--tier smoke -k streaming",
            "INPUT_OUT": str(tmp_path / "reports"),
        }
        path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
        env = {**os.environ, **inputs, "CONFORMANCE_API_KEY": key, "GITHUB_OUTPUT": str(output), "PATH": path}
        done = subprocess.run(
            ["bash", "-e", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT
        )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert output.read_text() == "exit-code=0\n"
    assert (tmp_path / "reports" / "report.json").is_file()
    assert key not in (tmp_path / "reports" / "report.json").read_text()
