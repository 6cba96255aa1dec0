"""Shrinking a failing generated case to the smallest request that still fails the same way.

Greedy and bounded, because every try is a request to a possibly paid endpoint: candidates are
the request with one part removed or cut in half (biggest cuts first); a candidate is sent only
when it is smaller and, checked locally for free, still what its mode says (a negative case
still breaks the contract, a positive one still fits the narrowed request); it is kept when the
target fails it with the same check. The keys of the minimal request other than the field under
test (model, messages, max_tokens) are left alone: without them the request fails for another
reason.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from conformance.generate.build import GeneratedCase, base_request
from conformance.model import CaseResult, Outcome, Severity

Attempt = Callable[[GeneratedCase], Awaitable[CaseResult]]


@dataclass
class Allowance:
    """What shrinking may still spend over the whole run (None: no bound but the per-failure cap)."""

    requests: int | None = None
    output_tokens: int | None = None
    spent_requests: int = 0
    input_tokens: int = 0
    output_tokens_used: int = 0

    def affords(self, generated: GeneratedCase) -> bool:
        tokens = generated.case.max_output_tokens
        return (self.requests is None or self.requests >= 1) and (
            self.output_tokens is None or self.output_tokens >= tokens
        )

    def spend(self, generated: GeneratedCase, result: CaseResult) -> None:
        self.spent_requests += 1
        self.input_tokens += result.input_tokens
        self.output_tokens_used += result.output_tokens
        if self.requests is not None:
            self.requests -= 1
        if self.output_tokens is not None:
            self.output_tokens -= generated.case.max_output_tokens


def failing_check(result: CaseResult) -> str | None:
    """The check of the first failure: what "fails the same way" means."""
    return next((f.check for f in result.findings if f.severity is Severity.FAILURE and not f.deviation), None)


def size(generated: GeneratedCase) -> int:
    request = generated.case.steps[0].request
    if request.raw_body is not None:
        return len(request.raw_body)
    return len(json.dumps(request.body, ensure_ascii=False))


async def shrink(
    generated: GeneratedCase,
    result: CaseResult,
    attempt: Attempt,
    allowance: Allowance,
    max_requests: int,
) -> tuple[GeneratedCase, CaseResult]:
    """The smallest case found that still fails like `result` (the original when none is smaller).

    The request is first cut down locally, for free, one part at a time (the biggest cut that
    keeps the case's mode), down to a local minimum; the target is then asked about the end of
    that path and, when it no longer fails there, about points in between (a bisection), so a
    failure costs at most about log2 of the path's length in requests.
    """
    check = failing_check(result)
    path = reduction_path(generated)
    if check is None or len(path) < 2:
        return generated, result
    # Bisection for the last failing point of the path: path[low] fails, path[high] (or the end) does not.
    low, high = 0, len(path)
    best = (generated, result)
    probe, tries = len(path) - 1, 0
    while probe > low and tries < max_requests and allowance.affords(path[probe]):
        tries += 1
        outcome = await attempt(path[probe])
        allowance.spend(path[probe], outcome)
        if outcome.outcome is Outcome.FAILED and check in _failure_checks(outcome):
            low, best = probe, (path[probe], outcome)
        else:
            high = probe
        probe = (low + high) // 2
    return best


def reduction_path(generated: GeneratedCase, max_steps: int = 400) -> list[GeneratedCase]:
    """The case, then ever smaller versions of it, each the first one-part cut of the previous one
    (outer parts before inner ones) that keeps the case's mode, checked locally."""
    path = [generated]
    for _ in range(max_steps):
        smaller = next(_candidates(path[-1]), None)
        if smaller is None:
            break
        path.append(smaller)
    return path


def _failure_checks(result: CaseResult) -> set[str]:
    return {f.check for f in result.findings if f.severity is Severity.FAILURE and not f.deviation}


def _candidates(generated: GeneratedCase) -> Iterator[GeneratedCase]:
    """Smaller versions of the case's request that keep its mode (lazily: most are never needed)."""
    request = generated.case.steps[0].request
    if request.raw_body is not None:
        raw = request.raw_body
        options: Iterator[GeneratedCase] = (
            generated.with_request(None, cut) for cut in (raw[: len(raw) // 2], raw[len(raw) // 2 :], raw[1:])
        )
    else:
        options = (generated.with_request(body) for body in _smaller_bodies(generated))
    current = size(generated)
    for candidate in options:
        if size(candidate) < current and _keeps_mode(candidate):
            yield candidate


def _keeps_mode(generated: GeneratedCase) -> bool:
    request = generated.case.steps[0].request
    validity = generated.validity
    if request.raw_body is not None:
        try:
            parsed = json.loads(request.raw_body)
        except ValueError:
            return True
        return not validity.request_valid(generated.endpoint, parsed)
    if generated.positive:
        return validity.operation_valid(generated.operation, request.body)
    if generated.field == "body":  # the body as a whole (unknown fields, not an object)
        return not validity.request_valid(generated.endpoint, request.body)
    return validity.invalid_at(generated.endpoint, request.body, generated.field)


def _smaller_bodies(generated: GeneratedCase) -> Iterator[Any]:
    """The body with one part cut: a key or an item removed, a string or a number made minimal.
    The minimal request's own keys stay (and `model` always)."""
    body = generated.case.steps[0].request.body
    if not isinstance(body, dict):
        yield from _smaller(body)
        return
    fixed = {"model"} if generated.positive else set(base_request(generated.endpoint, 1)) - {_top(generated.field)}
    for key in [key for key in body if key not in fixed]:
        yield {name: value for name, value in body.items() if name != key}
        for smaller in _smaller(body[key]):
            yield {**body, key: smaller}


def _top(field: str) -> str:
    return field.split(".", 1)[0]


def _smaller(value: Any) -> Iterator[Any]:
    """Every one-part cut of a JSON value, nested ones included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield {name: other for name, other in value.items() if name != key}
            for smaller in _smaller(item):
                yield {**value, key: smaller}
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield value[:index] + value[index + 1 :]
            for smaller in _smaller(item):
                yield [*value[:index], smaller, *value[index + 1 :]]
    elif isinstance(value, str) and value:
        yield value[:1] if len(value) > 1 else ""
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and value not in (0, 1):
        yield 0
