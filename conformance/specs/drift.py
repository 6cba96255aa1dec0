"""`conformance specs drift`: where our contract and the official Python SDK's types part ways.

The SDK (`anthropic` on PyPI) is generated from Anthropic's OpenAPI spec and released every week
or two, so its types are the most current account of the API that can be read offline. The drift
installs one release into a cache folder (`pip install --target`), has pydantic derive JSON
Schemas from its types in a separate interpreter (sdk_probe.py), flattens them into fields the way
`specs diff` flattens a provider's contract, and compares them with specs/anthropic/openapi.yaml:

| kind | meaning |
|---|---|
| `lacks` | the SDK's GA types have it, our contract does not |
| `lacks-beta` | only the SDK's beta types have it, our contract does not |
| `forbids` | our contract refuses what the SDK admits (a type, a value, a field made required) |
| `required` | a response field the SDK always sends is optional in our contract |
| `beta-only` | our contract has it without a beta; the SDK has it only in its beta types |
| `extra` | our contract has it; neither the SDK's GA nor its beta types do |

Each accepted difference is recorded, with its reason, in specs/anthropic/drift-allow.yaml;
anything else is unexplained drift.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance import contract
from conformance.paths import specs_dir
from conformance.specs.compare import admitted_types
from conformance.specs.documents import SpecError, load, root
from conformance.specs.fields import Field, lookup, schema_fields

DEFAULT_SDK_VERSION = "2.17.0"
SDK_PACKAGE = "anthropic"
PROBE = Path(__file__).with_name("sdk_probe.py")
# Each kind of difference (in the order they are reported) and the heading it is reported under.
KINDS = {
    "lacks": "our contract lacks (in the SDK's GA types)",
    "lacks-beta": "our contract lacks (only in the SDK's beta types)",
    "forbids": "our contract forbids what the SDK admits",
    "required": "the SDK always sends, our contract leaves optional",
    "beta-only": "our contract has without a beta, the SDK only in beta",
    "extra": "our contract has, the SDK lacks",
}
INSTALL_TIMEOUT = 600
PROBE_TIMEOUT = 300
_VERSION = re.compile(r"^\d+(\.\d+)*([a-z]+\d*)?$")

# SDK type group -> our component, the section both are flattened under, and whether it is a request.
PAIRS = (
    ("create", "CreateMessageParams", "request", True),
    ("count", "CountTokensParams", "count_tokens.request", True),
    ("message", "Message", "response", False),
    ("event", "StreamEvent", "stream", False),
    ("error", "ErrorResponse", "error", False),
    ("count_response", "CountTokensResponse", "count_tokens.response", False),
    ("system_message", "SystemMessage", "system_message", True),
)
# Below these, stream payloads repeat the Message and its content blocks, compared under `response`.
REPEATED = ("stream<message_start>.message.", "stream<content_block_start>.content_block")


class DriftError(Exception):
    """The drift could not be computed: the message is one sentence for the user."""


@dataclass(frozen=True)
class Difference:
    """One way our contract departs from the SDK at one field path."""

    kind: str
    path: str
    detail: str
    sdk_type: str = ""


@dataclass(frozen=True)
class Allowance:
    """An accepted difference: its kind, a path pattern (`*` matches any run of characters,
    everything else itself, `[]` included) and why it is accepted."""

    kind: str
    path: str
    reason: str

    def covers(self, difference: Difference) -> bool:
        pattern = ".*".join(re.escape(part) for part in self.path.split("*"))
        return self.kind == difference.kind and re.fullmatch(pattern, difference.path) is not None


@dataclass(frozen=True)
class Drift:
    """The outcome: every difference, split into those the allow-list explains and those it does not."""

    sdk_version: str
    explained: list[tuple[Difference, Allowance]]
    unexplained: list[Difference]
    unused: list[Allowance]


# ------------------------------------------------------------------ the SDK in a cache folder


def cache_root() -> Path:
    """Where SDK releases are installed: $XDG_CACHE_HOME (or ~/.cache) /conformance/sdk."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "conformance" / "sdk"


def check_version(version: str) -> None:
    if not _VERSION.match(version):
        raise DriftError(f"{version!r} is not a version number such as {DEFAULT_SDK_VERSION}")


def install_sdk(version: str | None, cache: Path | None = None) -> Path:
    """The folder holding `anthropic` VERSION (None: the newest on PyPI), installed there once."""
    cache = cache or cache_root()
    if version is not None:
        check_version(version)
        folder = cache / f"{SDK_PACKAGE}-{version}"
        if (folder / SDK_PACKAGE / "__init__.py").is_file():
            return folder
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="install-", dir=cache))
    try:
        requirement = SDK_PACKAGE if version is None else f"{SDK_PACKAGE}=={version}"
        _pip_install(requirement, staging)
        installed = _installed_version(staging)
        folder = cache / f"{SDK_PACKAGE}-{installed}"
        if not (folder / SDK_PACKAGE / "__init__.py").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
        return folder
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _pip_install(requirement: str, target: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--no-input", "--target", str(target), requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise DriftError(f"pip could not install {requirement} within {INSTALL_TIMEOUT} s") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"pip exited with {done.returncode}"
        raise DriftError(f"pip could not install {requirement} from PyPI: {last}")


def _installed_version(folder: Path) -> str:
    for dist in folder.glob(f"{SDK_PACKAGE}-*.dist-info"):
        return dist.name[len(SDK_PACKAGE) + 1 : -len(".dist-info")]
    raise DriftError(f"pip reported success but left no {SDK_PACKAGE} in {folder}")


def sdk_schemas(folder: Path) -> dict[str, Any]:
    """`{version, schemas, types, missing}` from the SDK installed in `folder`, read by sdk_probe.py."""
    try:
        done = subprocess.run(
            [sys.executable, str(PROBE), str(folder)],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            check=False,
            env={**os.environ, "PYTHONPATH": ""},
        )
    except subprocess.TimeoutExpired:
        raise DriftError(f"reading the SDK's types in {folder} took longer than {PROBE_TIMEOUT} s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise DriftError(f"the SDK in {folder} could not be read: {lines[-1] if lines else done.returncode}")
    return json.loads(done.stdout)


# ------------------------------------------------------------------ comparing


def _flatten(schema: dict[str, Any], prefix: str, folder: Path, name: str) -> dict[str, Field]:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    return _unrepeated(schema_fields(root(path), prefix, strict=False))


def _unrepeated(fields: dict[str, Field]) -> dict[str, Field]:
    return {key: field for key, field in fields.items() if not key.startswith(REPEATED)}


def _sdk_type(field: Field, fallback: str) -> str:
    """The SDK type a field was written in: the innermost `$defs` entry on its way."""
    for where in (field.origin, field.definition):
        found = re.findall(r"/\$defs/([^/]+)", where)
        if found:
            return found[-1]
    return fallback


_SEGMENT = re.compile(r"\.[^.\[<]+|\[\]|<[^<>]*>")


def _carried_open(path: str, ours: dict[str, Field]) -> bool:
    """True when our contract takes the nearest ancestor of `path` it knows as an open object
    without describing its inside (`configs: {type: object}`): what lies below is carried, not modelled."""
    head = path[: len(path) - len("".join(_SEGMENT.findall(path)))]
    segments = _SEGMENT.findall(path)
    for end in range(len(segments) - 1, 0, -1):
        ancestor = head + "".join(segments[:end])
        found = lookup(ours, ancestor, ours)
        if found is None:
            continue
        described = any(
            len(key) > len(ancestor) and key.startswith(ancestor) and key[len(ancestor)] in ".[<" for key in ours
        )
        return "object" in found.types and found.additional and not described
    return False


def _narrower(ours: Field, theirs: Field, request: bool) -> str:
    """What `theirs` admits that `ours` refuses, or ""."""
    notes = []
    wanted, admitted = admitted_types(theirs.types), admitted_types(ours.types)
    if admitted is not None and (wanted is None or not wanted <= admitted):
        notes.append(f"type {'|'.join(sorted(theirs.types)) or 'any'} (ours {'|'.join(sorted(ours.types))})")
    if theirs.values is not None and ours.values is not None and not ours.open:
        unknown = sorted(theirs.values - ours.values)
        if unknown:
            notes.append("values " + ", ".join(unknown))
    if request and ours.required and not theirs.required and not ours.path.endswith(">"):
        notes.append("required in ours, optional in the SDK")
    return "; ".join(notes)


def _extra_values(ours: Field, theirs: Field | None) -> frozenset[str]:
    if theirs is None or ours.values is None or theirs.values is None or theirs.open:
        return frozenset()
    return ours.values - theirs.values


def compare_fields(
    ours: dict[str, Field], ga: dict[str, Field], beta: dict[str, Field], request: bool, label: tuple[str, str]
) -> list[Difference]:
    """Every difference between our fields and the SDK's GA and beta fields of one section."""
    found: list[Difference] = []
    for path, theirs in ga.items():
        mine = lookup(ours, path, ours)
        if mine is None:
            if not _carried_open(path, ours):
                found.append(Difference("lacks", path, theirs.describe(), _sdk_type(theirs, label[0])))
            continue
        narrower = _narrower(mine, theirs, request)
        if narrower:
            found.append(Difference("forbids", path, narrower, _sdk_type(theirs, label[0])))
        elif not request and theirs.required and not mine.required and not path.endswith(">"):
            found.append(Difference("required", path, "always sent by the SDK's type, optional in ours"))
    for path, theirs in beta.items():
        in_ga = ga.get(path)
        mine = lookup(ours, path, ours)
        if mine is None:
            if in_ga is None and not _carried_open(path, ours):
                found.append(Difference("lacks-beta", path, theirs.describe(), _sdk_type(theirs, label[1])))
            continue
        if in_ga is None:
            found.append(Difference("beta-only", path, "no GA type has it", _sdk_type(theirs, label[1])))
        elif not _narrower(mine, in_ga, request):
            beta_values = _extra_values(mine, in_ga) - _extra_values(mine, theirs)
            if beta_values:
                detail = f"values {', '.join(sorted(beta_values))} only in the beta types"
                found.append(Difference("beta-only", path, detail, _sdk_type(theirs, label[1])))
            narrower = _narrower(mine, theirs, request)
            if narrower:
                found.append(Difference("forbids", path, narrower + " (beta)", _sdk_type(theirs, label[1])))
    for path, mine in ours.items():
        in_ga, in_beta = lookup(ga, path, ga), lookup(beta, path, beta)
        if in_ga is None and in_beta is None:
            if lookup(ga, path.rsplit(".", 1)[0], ga) or lookup(beta, path.rsplit(".", 1)[0], beta) or "." not in path:
                found.append(Difference("extra", path, mine.describe()))
            continue
        sides = [side for side in (in_ga, in_beta) if side is not None]
        unknown = frozenset.intersection(*(_extra_values(mine, side) for side in sides))
        if unknown:
            found.append(Difference("extra", path, f"values {', '.join(sorted(unknown))} unknown to the SDK"))
    return found


def differences(sdk: dict[str, Any], contract_path: Path | None = None) -> list[Difference]:
    """Every difference between our contract and the SDK's schemas (as sdk_schemas returns them)."""
    contract_root = root(contract_path or contract.contract_path())
    schemas, types = sdk["schemas"], sdk.get("types", {})
    found: list[Difference] = []
    with tempfile.TemporaryDirectory(prefix="conformance-drift-") as scratch:
        folder = Path(scratch)
        for group, component, prefix, request in PAIRS:
            label = (types.get(f"ga.{group}", group), types.get(f"beta.{group}", group))
            if f"ga.{group}" not in schemas:
                found.append(_absent(prefix, label, f"beta.{group}" in schemas))
                continue
            ours = _unrepeated(schema_fields(contract_root.child("components", "schemas", component), prefix))
            flat = {
                side: _flatten(schemas[f"{side}.{group}"], prefix, folder, f"{side}.{group}")
                if f"{side}.{group}" in schemas
                else {}
                for side in ("ga", "beta")
            }
            found.extend(compare_fields(ours, flat["ga"], flat["beta"], request, label))
    return _collapse(found)


def _absent(prefix: str, label: tuple[str, str], in_beta: bool) -> Difference:
    """Our contract has a GA type (the `role: system` message) for which the SDK has no GA type."""
    if in_beta:
        return Difference("beta-only", prefix, f"the SDK has no GA {label[0]}, only the beta {label[1]}", label[1])
    return Difference("extra", prefix, f"GA in our contract; the SDK has neither {label[0]} (GA) nor {label[1]} (beta)")


def _collapse(found: list[Difference]) -> list[Difference]:
    """One line per subtree: a difference below a path that already differs the same way is implied."""
    kept: list[Difference] = []
    seen: dict[str, set[str]] = {}
    for difference in sorted(found, key=lambda d: (d.kind, d.path)):
        paths = seen.setdefault(difference.kind, set())
        if any(difference.path.startswith(p) and difference.path[len(p)] in ".[<" for p in paths):
            continue
        if difference.kind in ("lacks", "lacks-beta", "beta-only", "extra") and not difference.detail.startswith(
            "values"
        ):
            paths.add(difference.path)
        kept.append(difference)
    return kept


# ------------------------------------------------------------------ the allow-list


def allow_path(directory: Path | None = None) -> Path:
    return (directory or specs_dir()) / "anthropic" / "drift-allow.yaml"


def load_allowances(path: Path) -> list[Allowance]:
    """The allow-list: `allow: [{kind, path, reason}]`; each entry needs a reason."""
    if not path.is_file():
        return []
    data = load(path) or {}
    entries = data.get("allow") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise SpecError(f"{path}: expected a mapping with an `allow` list")
    allowances = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("kind") not in KINDS:
            raise SpecError(f"{path}: allow[{index}] needs a kind, one of {', '.join(KINDS)}")
        if not isinstance(entry.get("path"), str) or not str(entry.get("reason") or "").strip():
            raise SpecError(f"{path}: allow[{index}] needs a path and a reason")
        allowances.append(Allowance(entry["kind"], entry["path"], str(entry["reason"]).strip()))
    return allowances


def judge(sdk_version: str, found: list[Difference], allowances: list[Allowance]) -> Drift:
    explained, unexplained, used = [], [], set()
    for difference in found:
        allowance = next((a for a in allowances if a.covers(difference)), None)
        if allowance is None:
            unexplained.append(difference)
        else:
            explained.append((difference, allowance))
            used.add(allowance)
    return Drift(sdk_version, explained, unexplained, [a for a in allowances if a not in used])


def drift(version: str | None, cache: Path | None = None, directory: Path | None = None) -> Drift:
    """Install the SDK (None: the newest), compare, and sort the differences by the allow-list."""
    sdk = sdk_schemas(install_sdk(version, cache))
    contract_path = (directory / "anthropic" / "openapi.yaml") if directory else None
    found = differences(sdk, contract_path)
    return judge(sdk["version"], found, load_allowances(allow_path(directory)))
