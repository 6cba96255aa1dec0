"""What a run with generated cases will send and may cost, within the budget it is given.

`generate` asks schemathesis for more candidates than needed and picks them field by field
(every field, then every rule of a field, before a second case of the same rule), so that a
small `--generated N` still covers as many fields and rules as it can. `fit` then trims the
generated cases to the run's budget (`--max-requests`, `--max-output-tokens`): the hand-written
cases come first, and whatever the budget leaves after every case is what shrinking may spend.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conformance.cases import Case
from conformance.generate.options import POSITIVE_SHARE, Budget, BudgetError, GenerationOptions
from conformance.specs.documents import display_path
from conformance.specs.profiles import CANONICAL, load_profile

if TYPE_CHECKING:  # schemathesis and hypothesis are imported only when cases are generated
    from schemathesis.generation.modes import GenerationMode

    from conformance.generate.build import GeneratedCase
    from conformance.generate.schemas import Operation

# Draws per case wanted: some draws are duplicates, or not negative once in a whole request.
OVERSAMPLE = 2
MIN_DRAWS = 2


@dataclass
class Plan:
    """Every case of a run, the generated ones apart, and what the budget leaves for shrinking."""

    cases: list[Case]
    generated: list[GeneratedCase] = field(default_factory=list)
    options: GenerationOptions | None = None
    budget: Budget = field(default_factory=Budget)
    # Generated cases left out to fit the budget.
    dropped: int = 0

    @property
    def all_cases(self) -> list[Case]:
        return [*self.cases, *(generated.case for generated in self.generated)]

    @property
    def requests(self) -> int:
        return sum(case.requests for case in self.all_cases)

    @property
    def max_output_tokens(self) -> int:
        return sum(case.max_output_tokens for case in self.all_cases)

    def shrink_allowance(self) -> tuple[int | None, int | None]:
        """Requests and output tokens shrinking may spend in all (None: only the per-failure cap)."""
        budget = self.budget
        requests = None if budget.max_requests is None else budget.max_requests - self.requests
        tokens = None if budget.max_output_tokens is None else budget.max_output_tokens - self.max_output_tokens
        return requests, tokens

    def counts(self) -> dict[str, Any]:
        """The generated part of the plan, as report.json's `generation.plan` holds it."""
        generated = [g.case for g in self.generated]
        positive = [g for g in self.generated if g.positive]
        return {
            "cases": len(generated),
            "negative": len(generated) - len(positive),
            "positive": len(positive),
            "streaming": sum(1 for g in positive if g.field == "stream"),
            "requests": sum(case.requests for case in generated),
            "max_output_tokens": sum(case.max_output_tokens for case in generated),
            "dropped": self.dropped,
        }

    def metadata(self) -> dict[str, Any]:
        """report.json's `generation` object (before the run adds shrinking and failures)."""
        options = self.options
        if options is None:
            return {}
        return {
            "seed": options.seed,
            "requested": options.count,
            "provider": options.provider,
            "contracts": {"negative": _contract_name(CANONICAL), "positive": _contract_name(options.provider)},
            "positive": options.positive,
            "max_tokens": options.max_tokens,
            "plan": self.counts(),
        }

    def lines(self, verbose: bool = False) -> list[str]:
        """The plan as `--dry-run` prints it."""
        hand = self.cases
        lines = [
            "Plan (nothing sent):",
            _row("hand-written", len(hand), sum(c.requests for c in hand), sum(c.max_output_tokens for c in hand)),
        ]
        if self.options is not None:
            counts = self.counts()
            detail = (
                f"seed {self.options.seed}: {counts['negative']} negative, {counts['positive']} positive "
                f"({counts['streaming']} streamed)"
            )
            if not self.options.positive:
                detail += "; positive generation off (the target is not on loopback: --generated-positive allows it)"
            if self.dropped:
                detail += f"; {self.dropped} left out to fit the budget"
            lines.append(_row("generated", counts["cases"], counts["requests"], counts["max_output_tokens"]))
            lines.append(f"  {'':<14} {detail}")
            lines.append(
                f"  {'shrinking':<14} up to {self.options.shrink_requests} requests per generated failure, "
                "within what the budget leaves"
            )
            if verbose:
                lines += [f"    {g.case.id}: {g.case.title}" for g in self.generated]
        lines.append(_row("total", len(self.all_cases), self.requests, self.max_output_tokens))
        lines.append(
            f"  {'budget':<14} requests {_limit(self.budget.max_requests)}, "
            f"output tokens {_limit(self.budget.max_output_tokens)}"
        )
        return lines


def _row(label: str, cases: int, requests: int, tokens: int) -> str:
    return f"  {label:<14} {cases:>6,} cases {requests:>7,} requests {tokens:>9,} worst-case output tokens"


def _limit(value: int | None) -> str:
    return "unbounded" if value is None else f"{value:,}"


def _contract_name(provider: str) -> str:
    return display_path(load_profile(provider).contract_path)


def generate(options: GenerationOptions) -> list[GeneratedCase]:
    """The generated cases of a run: negative ones from the canonical contract, positive ones
    (when on) from the provider's; the same options always give the same cases."""
    from conformance.generate import schemas, strategy

    positive_count = options.count // POSITIVE_SHARE if options.positive else 0
    negative_count = options.count - positive_count
    chosen: list[GeneratedCase] = []
    if negative_count > 0:
        document, operations = schemas.negative_document()
        chosen += pick(document, operations, strategy.NEGATIVE, negative_count, options)
    if positive_count > 0:
        contract = load_profile(options.provider).contract_path
        document, operations = schemas.positive_document(contract, options.max_tokens)
        chosen += pick(document, operations, strategy.POSITIVE, positive_count, options)
    return chosen


def pick(
    document: dict[str, Any],
    operations: list[Operation],
    mode: GenerationMode,
    count: int,
    options: GenerationOptions,
) -> list[GeneratedCase]:
    """`count` cases of the given mode from the document's operations, spread over fields and rules.

    With far fewer cases wanted than there are operations, a seeded choice of operations is
    drawn from, so that a small run costs little to generate too.
    """
    from conformance.generate import schemas, strategy
    from conformance.generate.build import build

    if count * OVERSAMPLE < len(operations):
        rng = random.Random(strategy.derived_seed(options.seed, mode.value))
        chosen = set(rng.sample(range(len(operations)), count * OVERSAMPLE))
        operations = [operation for index, operation in enumerate(operations) if index in chosen]
    schema = strategy.load(document)
    validity = schemas.Validity(document)
    draws = max(MIN_DRAWS, math.ceil(count / max(1, len(operations))) * OVERSAMPLE)
    per_operation: list[list[GeneratedCase]] = []
    seen: set[str] = set()
    for operation in operations:
        built = []
        for drawn in strategy.draw(schema, operation, mode, draws, options.seed):
            generated = build(drawn, validity, options.max_tokens)
            if generated is not None and generated.case.id not in seen:
                seen.add(generated.case.id)
                built.append(generated)
        per_operation.append(built)
    return spread(per_operation, count)


def spread(groups: list[list[GeneratedCase]], count: int) -> list[GeneratedCase]:
    """Up to `count` cases taken from each group (operation) in turn, each time the one whose
    feature (field and rule) was taken least so far (see _priority): every field, and every rule
    of the whole run, gets a case before any gets a second."""
    queues = [list(group) for group in groups]
    taken: Counter[str] = Counter()
    chosen: list[GeneratedCase] = []
    while len(chosen) < count and any(queues):
        for queue in queues:
            if not queue or len(chosen) >= count:
                continue
            best = min(range(len(queue)), key=lambda index: _priority(queue, index, taken))
            generated = queue.pop(best)
            taken[generated.case.feature] += 1
            chosen.append(generated)
    return chosen


def _priority(queue: list[GeneratedCase], index: int, taken: Counter[str]) -> tuple[int, bool, int]:
    """Least taken feature first; at equal counts, a rule of the operation's own field before one
    about the body as a whole (not JSON, unknown fields), which every operation can produce."""
    generated = queue[index]
    return taken[generated.case.feature], generated.field == "body", index


def fit(cases: list[Case], generated: list[GeneratedCase], budget: Budget) -> tuple[list[GeneratedCase], int]:
    """The generated cases that fit the budget after the hand-written ones, and how many did not.

    Raises BudgetError when the hand-written cases alone exceed it.
    """
    requests = sum(case.requests for case in cases)
    tokens = sum(case.max_output_tokens for case in cases)
    for name, used, limit in (
        ("requests", requests, budget.max_requests),
        ("worst-case output tokens", tokens, budget.max_output_tokens),
    ):
        if limit is not None and used > limit:
            raise BudgetError(
                f"the selected cases need {used:,} {name}, more than the budget of {limit:,}: "
                "select fewer (--tier, -k) or raise the budget"
            )
    kept: list[GeneratedCase] = []
    for candidate in generated:
        more_requests = requests + candidate.case.requests
        more_tokens = tokens + candidate.case.max_output_tokens
        if (budget.max_requests is not None and more_requests > budget.max_requests) or (
            budget.max_output_tokens is not None and more_tokens > budget.max_output_tokens
        ):
            continue
        kept.append(candidate)
        requests, tokens = more_requests, more_tokens
    return kept, len(generated) - len(kept)


def make_plan(cases: list[Case], options: GenerationOptions | None, budget: Budget, keyword_filter: Any = None) -> Plan:
    """The plan of a run: the hand-written cases, the generated ones (filtered by `keyword_filter`,
    a function from cases to the selected ones, e.g. -k), fitted to the budget."""
    generated = generate(options) if options is not None and options.count > 0 else []
    if keyword_filter is not None and generated:
        selected = {case.id for case in keyword_filter([g.case for g in generated])}
        generated = [g for g in generated if g.case.id in selected]
    kept, dropped = fit(cases, generated, budget)
    return Plan(cases=cases, generated=kept, options=options, budget=budget, dropped=dropped)
