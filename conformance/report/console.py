"""Progress and summary on the terminal while a run goes.

Lines are built as rich Text, never markup: ids and messages may contain "[...]" or, coming from
the endpoint under test, terminal control sequences, which are shown escaped instead of obeyed.
Colour is left to rich's detection, so CI logs (not a terminal) get plain text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from conformance import __version__
from conformance.model import CaseResult, Outcome, RunReport, TargetInfo, own_docs_line
from conformance.redact import Redactor
from conformance.report.evidence import clip, number
from conformance.report.json_report import headline, run_seconds
from conformance.report.junit import finding_line

STYLES: dict[Outcome, str] = {
    Outcome.PASSED: "green",
    Outcome.WARNING: "yellow",
    Outcome.FAILED: "bold red",
    Outcome.DEVIATION: "dark_orange",
    Outcome.UNSUPPORTED: "light_slate_grey",
    Outcome.SKIPPED: "bright_black",
    Outcome.ERROR: "bold magenta",
}
_GATED = (Outcome.FAILED, Outcome.ERROR)
# Cases whose progress line is followed by why: the gated ones, and warnings (they pass the gate).
_EXPLAINED = (*_GATED, Outcome.WARNING)
_LABEL_WIDTH = max(len(outcome.value) for outcome in Outcome)
_INDENT = "      "
# C0 (but newline), DEL and C1 controls: ESC alone would let an endpoint drive the terminal.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _cases(count: int) -> str:
    """ "case" for one, "cases" otherwise."""
    return "case" if count == 1 else "cases"


def _safe(text: str) -> str:
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def generated_lines(report: RunReport) -> list[tuple[str, str]]:
    """The generated cases apart (label, value): how many and how they fared, and what they cost."""
    generated = report.generated_summary()
    if generated is None:
        return []
    meta = report.generation or {}
    shrink = meta.get("shrink") or {}
    outcomes = ", ".join(f"{generated[o.value]} {o.value}" for o in Outcome if generated[o.value]) or "none ran"
    seed = f", seed {meta['seed']}" if "seed" in meta else ""
    shrinking = f" (+{number(shrink['requests'])} shrinking)" if shrink.get("requests") else ""
    return [
        ("generated cases", f"{number(generated['cases'])}: {outcomes}{seed}"),
        ("generated requests", f"{number(generated['requests'])}{shrinking}"),
        (
            "generated tokens",
            f"{number(generated['input_tokens'] + shrink.get('input_tokens', 0))} in, "
            f"{number(generated['output_tokens'] + shrink.get('output_tokens', 0))} out",
        ),
    ]


def _outcome_label(outcome: Outcome) -> Text:
    return Text(outcome.value.upper().ljust(_LABEL_WIDTH), style=STYLES[outcome])


class ConsoleReporter:
    """Prints one line per finished case with a "[n/total]" counter (just "[n]" when the total is not
    known in advance, as for `conformance proxy`), with the case's title when `titles` is set, then a
    summary.

    Holds its own counters (no globals), so several reporters can live in one process; it is
    meant to be called from one thread at a time. Every line passes through `redactor` (when
    given) before it is printed.
    """

    def __init__(
        self,
        console: Console | None = None,
        verbose: bool = False,
        titles: bool = False,
        redactor: Redactor | None = None,
    ) -> None:
        self.console = console if console is not None else Console(highlight=False)
        self._plain_output = not self.console.is_terminal and not self.console.record
        self.verbose = verbose
        self.titles = titles
        self.redactor = redactor or Redactor()
        self._total = 0
        self._done = 0

    def _print(self, text: Text) -> None:
        plain = self.redactor.text(text.plain) if self.redactor.secrets else text.plain
        if self._plain_output:
            # Not a terminal (a CI log, a pipe): rich would write these same characters, at several times the cost,
            # which a proxy pays for every exchange.
            self.console.file.write(plain + "\n")
            self.console.file.flush()
            return
        # soft_wrap: long ids and URLs stay whole lines that the terminal wraps.
        text.plain = plain
        self.console.print(text, soft_wrap=True, highlight=False)

    def _print_details(self, lines: Iterable[str]) -> None:
        for line in lines:
            for part in _safe(clip(line)).splitlines() or [""]:
                self._print(Text(_INDENT + part))

    def start(self, target: TargetInfo, total: int) -> None:
        """Announce the run: what is tested and how many cases."""
        self._total = total
        self._done = 0
        title = Text.assemble(("conformance ", "bold"), (__version__, "bold"), " -> ", (_safe(target.base_url), "cyan"))
        if target.reference:
            title.append(" (embedded reference server)", style="dim")
        self._print(title)
        facts = [f"provider {target.provider or '-'}", f"model {target.model or '-'}", f"{total} {_cases(total)}"]
        self._print(Text(_safe(", ".join(facts)), style="dim"))

    def count_from(self, done: int) -> None:
        """Number the next case `done + 1` (a proxy's console goes on counting where an earlier writer stopped)."""
        self._done = done

    def case_done(self, result: CaseResult) -> None:
        """One line for a finished case; why it failed on the next lines."""
        self._done += 1
        width = len(str(max(self._total, self._done)))
        # Without a total (`conformance proxy`), the counter is padded so the columns stay put up to [9999].
        counter = f"[{self._done:>{width}}/{self._total}]" if self._total else f"[{self._done}]".ljust(6)
        line = Text.assemble(
            (counter, "dim"),
            " ",
            _outcome_label(result.outcome),
            " ",
            _safe(result.id),
            (f"  {result.duration:.2f}s", "dim"),
        )
        if result.attempts > 1:
            line.append(f"  ({number(result.attempts)} attempts)", style="dim")
        if self.titles and result.title:
            line.append(f"  {_safe(clip(result.title))}")
        self._print(line)
        if self.verbose:
            details = [f"reason: {result.reason}"] if result.reason else []
            details += [finding_line(finding) for finding in result.findings]
            details += [f"transport error: {e.error}" for e in result.exchanges if e.error]
            self._print_details(details)
        elif result.outcome in _EXPLAINED:
            self._print_details([headline(result) or result.outcome.value])

    def finish(self, report: RunReport, paths: dict[str, Path], *, gate_follows: bool = False) -> None:
        """The summary: counts and cost, the failing cases, why cases were skipped, where the reports are.

        `gate_follows`: a gate (a baseline, a stricter --fail-on) gives the verdict next, so the last line
        states the counts without a PASS or FAIL of its own that the gate could contradict.
        """
        summary = report.summary()
        console = self.console
        console.print()
        table = Table(title="Summary", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("Outcome")
        table.add_column("Cases", justify="right")
        for outcome in Outcome:
            count = summary[outcome.value]
            table.add_row(Text(outcome.value, style=STYLES[outcome] if count else "dim"), str(count))
        table.add_row(Text("total", style="bold"), Text(str(len(report.results)), style="bold"))
        table.add_section()
        table.add_row("requests", f"{number(summary['requests'])} of {number(report.planned_requests)} planned")
        table.add_row("input tokens", number(summary["input_tokens"]))
        table.add_row(
            "output tokens",
            f"{number(summary['output_tokens'])} of at most {number(report.planned_max_output_tokens)} planned",
        )
        if not report.complete:
            table.add_row(Text("not run", style="bold magenta"), str(len(report.not_run)))
        for label, value in generated_lines(report):
            table.add_row(label, self.redactor.text(_safe(value)))
        console.print(table)
        own_docs = own_docs_line(report.target.provider, report.results)
        if own_docs:
            self._print(Text(_safe(own_docs)))

        failing = sorted((r for r in report.results if r.outcome in _GATED), key=lambda r: r.id)
        if failing:
            console.print()
            self._print(Text(f"Failing cases ({len(failing)}):", style="bold"))
            for result in failing:
                self._print(Text.assemble("  ", _outcome_label(result.outcome), " ", _safe(result.id)))
                self._print_details([headline(result) or result.outcome.value])

        skipped = Counter(r.reason or "no reason given" for r in report.results if r.outcome == Outcome.SKIPPED)
        if skipped and not self.verbose:
            console.print()
            self._print(Text(f"Skipped cases ({sum(skipped.values())}), by reason:", style="bold"))
            for reason, count in skipped.most_common():
                self._print(Text(_safe(f"  {count:>4}  {clip(reason)}")))

        exported = (report.generation or {}).get("failures") or []
        if exported:
            console.print()
            self._print(Text(f"Generated failures, shrunk and exported ({len(exported)}):", style="bold"))
            for failure in exported:
                self._print(Text(_safe(f"  {failure.get('yaml', '')}")))
                if failure.get("curl"):
                    self._print(Text(_safe(f"  {failure['curl']}"), style="dim"))

        if paths:
            console.print()
            self._print(Text("Reports:", style="bold"))
            width = max(len(kind) for kind in paths) + 1
            for kind, path in paths.items():
                self._print(Text.assemble(f"  {kind:<{width}}", (_safe(str(path)), "cyan")))

        console.print()
        if not report.complete:
            why = f" ({report.interrupted})" if report.interrupted else ""
            self._print(
                Text.assemble(
                    (f"INTERRUPTED{_safe(why)}", "bold magenta"),
                    f"  {len(report.not_run)} planned {_cases(len(report.not_run))} did not run: "
                    "the reports are partial",
                )
            )
        counts = ", ".join(f"{summary[o.value]} {o.value}" for o in Outcome if summary[o.value])
        verdict = ("RESULTS", "bold") if gate_follows else ("FAIL", "bold red") if failing else ("PASS", "bold green")
        self._print(Text.assemble(verdict, f"  {counts or 'no cases'} in {run_seconds(report):.1f}s"))
