"""The checks: pure functions from an exchange to findings, and the registry that runs them.

Every check decides itself whether it applies (a stream check returns nothing for a JSON
response, an error check nothing for a 2xx...), so `run_checks` can apply all of them to any
exchange. Check names are stable: reports and case expectations refer to them.

| module        | checks                                                                        |
|---------------|-------------------------------------------------------------------------------|
| schema        | schema.message, schema.count-tokens, schema.error, schema.stream-event,        |
|               | schema.unknown-type (note)                                                    |
| stream        | stream.grammar, stream.done-sentinel, stream.unknown-event (note),             |
|               | stream.truncated, stream.block-start, stream.keepalive                        |
| reassembly    | reassembly                                                                    |
| semantics     | semantics.stop-reason, semantics.usage, semantics.identity,                    |
|               | semantics.thinking-signature, semantics.tool-use, semantics.count-tokens,      |
|               | semantics.citations                                                           |
| errors        | errors.envelope, errors.status-map, errors.stream-event                        |
| headers       | headers.request-id, headers.content-type                                      |
"""

from __future__ import annotations

from collections.abc import Iterable

from conformance.checks import errors, headers, reassembly, schema, semantics, stream  # noqa: F401  (registers)
from conformance.checks.common import REGISTRY, Check, endpoint, one_judgement
from conformance.model import Exchange, Finding

__all__ = ["CHECKS", "Check", "endpoint", "run_checks"]

CHECKS: dict[str, Check] = REGISTRY


def run_checks(exchange: Exchange, names: Iterable[str] | None = None) -> list[Finding]:
    """Apply every check (or only those named) to an exchange; findings come in registry order.

    Each stream is folded and validated once, however many checks read it (see `one_judgement`).
    Raises KeyError for a name that is not a registered check.
    """
    selected = list(CHECKS) if names is None else list(names)
    unknown = [name for name in selected if name not in CHECKS]
    if unknown:
        raise KeyError(f"unknown checks: {unknown}")
    findings: list[Finding] = []
    with one_judgement():
        for name in selected:
            findings.extend(CHECKS[name](exchange))
    return findings
