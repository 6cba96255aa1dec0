"""The job's console output: one table row per scenario, then one line per problem."""

from __future__ import annotations

from conformance.clients.judging import ScenarioOutcome
from conformance.clients.scenarios import DEFAULT_MODEL

HEADER = ("client", "version", "scenario", "model", "outcome", "exchanges", "4xx/5xx", "failed checks")


def model_column(outcome: ScenarioOutcome) -> str:
    """The scenario's model; for Claude Code's default, the model it actually asked for."""
    if outcome.scenario.model == DEFAULT_MODEL and outcome.models:
        return f"{DEFAULT_MODEL} ({', '.join(outcome.models)})"
    return outcome.scenario.model


def table_lines(outcomes: list[ScenarioOutcome]) -> list[str]:
    rows = [HEADER] + [
        (
            o.scenario.client,
            o.version,
            o.scenario.name,
            model_column(o),
            "ok" if o.ok else "FAILED",
            str(o.exchanges),
            str(o.refused),
            str(o.failed_checks),
        )
        for o in outcomes
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def problem_lines(outcomes: list[ScenarioOutcome]) -> list[str]:
    """One line per problem: which client, scenario and model, and what went wrong."""
    return [
        f"{o.scenario.client} {o.version} {o.scenario.name} {model_column(o)}: {problem}"
        for o in outcomes
        for problem in o.problems
    ]
