"""Vendoring a provider's published OpenAPI: specs/<provider>/vendor/ with a provenance record.

`conformance specs vendor PROVIDER --from URL|FILE` copies the document (and, from a file, the
local files its `$ref`s name, keeping their relative layout), writes provenance.yaml (source,
date, sha256 and size of every file, the operations found) and compares the document with the
canonical contract. The vendored files are the provider's own words: our contract in
specs/<provider>/openapi.yaml stays the one the suite uses.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from conformance.specs.diff import Matrix, build_rows
from conformance.specs.documents import Located, SpecError, parse
from conformance.specs.fields import contract_fields, find_operations
from conformance.specs.profiles import CANONICAL, load_profile

VENDOR_DIR = "vendor"
PROVENANCE_FILE = "provenance.yaml"
MAX_BYTES = 64 * 1024 * 1024
TIMEOUT = 60.0


class VendorError(SpecError):
    """The source could not be fetched or is not an OpenAPI document."""


@dataclass
class Vendored:
    """What `vendor` did: where the files went, what they hold, how they compare."""

    provider: str
    directory: Path
    root: Path
    provenance: dict[str, Any]
    # The comparison with the canonical contract (None when no Messages operation was found).
    matrix: Matrix | None = None
    unresolved: list[str] = field(default_factory=list)


def _fetch(source: str) -> tuple[bytes, str]:
    """The bytes at a URL and the file name to keep them under."""
    try:
        with httpx.stream("GET", source, follow_redirects=True, timeout=TIMEOUT) as response:
            response.raise_for_status()
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise VendorError(f"{source}: larger than {MAX_BYTES} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise VendorError(f"cannot fetch {source}: {exc}") from None
    name = PurePosixPath(urlsplit(source).path).name or "openapi"
    return b"".join(chunks), name


def _local_closure(root: Path) -> list[Path]:
    """The file and every local file reachable through relative `$ref`s (remote ones are left)."""
    seen: list[Path] = []
    pending = [root.resolve()]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        if not path.is_file():
            continue  # reported as unresolved by the comparison
        seen.append(path)
        for ref in re.findall(r"""["']?\$ref["']?\s*:\s*["']?([^"'#\s,}]+)#?""", path.read_text(encoding="utf-8")):
            if "://" not in ref and ref:
                pending.append((path.parent / ref).resolve())
    return seen


def _check_document(data: bytes, name: str) -> dict[str, Any]:
    try:
        document = parse(data.decode("utf-8"), name)
    except UnicodeDecodeError:
        raise VendorError(f"{name}: not UTF-8 text") from None
    if not isinstance(document, dict) or not ("openapi" in document or "swagger" in document):
        raise VendorError(f"{name}: not an OpenAPI document (no 'openapi' key)")
    return document


def vendor(provider: str, source: str, directory: Path | None = None, today: str | None = None) -> Vendored:
    """Vendor `source` (a URL or a file path) as `provider`'s published spec and compare it."""
    profile = load_profile(provider, directory)
    target = profile.directory / VENDOR_DIR
    is_url = urlsplit(source).scheme in ("http", "https")
    if is_url:
        data, name = _fetch(source)
        files = {name: data}
    else:
        path = Path(source)
        if not path.is_file():
            raise VendorError(f"no such file: {source}")
        closure = _local_closure(path)
        base = Path(os.path.commonpath([p.parent for p in closure]))
        files = {p.relative_to(base).as_posix(): p.read_bytes() for p in closure}
        name = path.resolve().relative_to(base).as_posix()
    document = _check_document(files[name], name)
    target.mkdir(parents=True, exist_ok=True)
    for relative, data in files.items():
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).write_bytes(data)
    root = target / name
    operations = find_operations(Located(root.resolve(), "", document))
    provenance = {
        "provider": provider,
        "source": source,
        "retrieved": today or datetime.now(timezone.utc).date().isoformat(),
        "root": name,
        "openapi": str(document.get("openapi") or document.get("swagger")),
        "title": str((document.get("info") or {}).get("title", "")),
        "operations": {kind: found[0] for kind, found in sorted(operations.items())},
        "files": [
            {"path": relative, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for relative, data in sorted(files.items())
        ],
    }
    (target / PROVENANCE_FILE).write_text(
        "# Written by `conformance specs vendor`: where the files of this folder came from.\n"
        + yaml.safe_dump(provenance, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    result = Vendored(provider=provider, directory=target, root=root, provenance=provenance)
    if "messages" in operations:
        canonical = load_profile(CANONICAL, directory).contract_path
        theirs = contract_fields(root, strict=False)
        rows = build_rows(contract_fields(canonical), {provider: theirs})
        result.matrix = Matrix(providers=[provider], rows=rows, profiles={provider: profile})
        result.unresolved = sorted({f.opaque for f in theirs.values() if f.opaque})
    return result
