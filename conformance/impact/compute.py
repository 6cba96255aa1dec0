"""Impact of a report: replay every non-passing case's recorded calls to each client and set each
result's `impact` to one {client, version, effect, detail} per client that makes those calls."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from conformance.cases import CaseError, load_cases
from conformance.clients.versions import CLAUDE_CODE, CLIENTS, Client
from conformance.impact.calls import Call, Unreplayable, calls_of, replayed_results
from conformance.impact.control import control_answers
from conformance.impact.names import BREAKS, DEFAULT_WORKDIR, DEGRADES, UNAFFECTED, UNKNOWN
from conformance.impact.oracle import Effect, judge, worst
from conformance.impact.replay import ReplayServer
from conformance.impact.runners import Runner, install_runner
from conformance.model import CaseResult, RunReport
from conformance.peers.process import PeerError
from conformance.report.evidence import one_line

# The replay path of a call, as clients quote it in their errors.
_HURT = (BREAKS, DEGRADES)
_FINE = Effect(UNAFFECTED)
_REPLAY_PATH = re.compile(r"/replay/\d+(?=/)")


def case_expectations() -> dict[str, list[dict[str, Any]]]:
    """Each catalogue case's step expectations, by id ({} when the catalogue cannot be read)."""
    try:
        return {case.id: [dict(step.expect) for step in case.steps] for case in load_cases()}
    except CaseError:
        return {}


def compute_impact(
    report: RunReport,
    clients: Sequence[Client] = tuple(CLIENTS.values()),
    workdir: Path = DEFAULT_WORKDIR,
    progress: Callable[[str], None] = lambda line: None,
) -> RunReport:
    """Set `impact` on every non-passing result of `report` (in place; returned for convenience): the
    entries of `clients` are replaced, those of other clients kept.

    A client is installed only when it has calls to make; one that cannot be installed gets `unknown` on
    every call it would make, its reason as the detail.
    """
    expectations = case_expectations()
    replayed: list[tuple[CaseResult, list[Call | Unreplayable]]] = []
    count = 0
    for result in replayed_results(report.results):
        found = calls_of(result, expectations.get(result.id), count)
        count += len(found)
        replayed.append((result, found))
    calls = [call for _, found in replayed for call in found if isinstance(call, Call)]
    effects: list[dict[str, list[Effect]]] = [{} for _ in replayed]
    judged: dict[str, dict[str, Effect]] = {}  # client -> call key -> effect
    runners: dict[str, Runner] = {}
    with tempfile.TemporaryDirectory(prefix="conformance-impact-") as scratch:
        with ReplayServer({call.key: (call.response, call.ending) for call in calls}) as server:
            for client in clients:
                mine = [call for call in calls if _makes(client, call)]
                try:
                    if mine:
                        progress(f"installing {client.package} {client.pinned} into {workdir}")
                        log_path = Path(scratch) / f"{client.name}-install.log"
                        runners[client.name] = install_runner(client, client.pinned, workdir.resolve(), log_path)
                        progress(f"replaying {len(mine)} recorded answers to {client.name} {client.pinned}")
                        observed = runners[client.name].run(mine, server.url_for, Path(scratch))
                        judged[client.name] = {
                            call.key: _stable(
                                judge(call.expected, observed[call.key], client is not CLAUDE_CODE), server
                            )
                            for call in mine
                        }
                except PeerError as exc:
                    not_run = Effect(UNKNOWN, one_line(f"{client.name} not run: {exc}"))
                    progress(not_run.detail)
                    judged[client.name] = dict.fromkeys((call.key for call in mine), not_run)
        _discount_the_clients_own(calls, judged, runners, Path(scratch), progress)
        for client in clients:
            for per_client, (_, found) in zip(effects, replayed, strict=True):
                per_client[client.name] = [
                    Effect(UNKNOWN, call.reason) if isinstance(call, Unreplayable) else judged[client.name][call.key]
                    for call in found
                    if _makes(client, call)
                ]
    computed = {client.name for client in clients}
    for (result, _), per_client in zip(replayed, effects, strict=True):
        kept = [entry for entry in result.impact if entry.get("client") not in computed]
        result.impact = kept + [
            {"client": name, "version": CLIENTS[name].pinned, "effect": case.effect, "detail": case.detail}
            for name, found in per_client.items()
            if found
            for case in [worst(found)]
        ]
    return report


def _discount_the_clients_own(
    calls: list[Call],
    judged: dict[str, dict[str, Effect]],
    runners: dict[str, Runner],
    scratch: Path,
    progress: Callable[[str], None],
) -> None:
    """Replay the contract's own answer (the reference server's, for the same case and step) of every
    call that broke or degraded a client, to that client; where it breaks or degrades the client alike,
    the recorded difference is not the cause: the call's effect becomes `unaffected`, saying so."""
    suspects = {name: [c for c in calls if judged.get(name, {}).get(c.key, _FINE).effect in _HURT] for name in runners}
    wanted = {call.case_id for found in suspects.values() for call in found}
    if not wanted:
        return
    progress(f"running {len(wanted)} cases against the reference server for the contract's own answers")
    answers = control_answers(wanted)
    controls = {
        c.key: c.control(answers[(c.case_id, c.step)])
        for found in suspects.values()
        for c in found
        if (c.case_id, c.step) in answers
    }
    if not controls:
        return
    with ReplayServer({control.key: (control.response, control.ending) for control in controls.values()}) as server:
        for name, found in suspects.items():
            # Only answers the client would meet: Claude Code streams, it never meets a JSON message.
            mine = [controls[c.key] for c in found if c.key in controls and _makes(CLIENTS[name], controls[c.key])]
            if not mine:
                continue
            progress(f"replaying {len(mine)} of the contract's own answers to {name}")
            observed = runners[name].run(mine, server.url_for, scratch)
            for control in mine:
                effect = judge(control.expected, observed[control.key], CLIENTS[name] is not CLAUDE_CODE)
                original = judged[name][control.key[1:]]
                if effect.effect == original.effect:
                    judged[name][control.key[1:]] = Effect(
                        UNAFFECTED, one_line(f"the contract's own answer does the same: {original.detail}")
                    )


def _makes(client: Client, call: Call | Unreplayable) -> bool:
    """Whether `client` makes this call at all (Claude Code only streams Messages calls)."""
    return client is not CLAUDE_CODE or call.claude_code_sends_it


def _stable(effect: Effect, server: ReplayServer) -> Effect:
    """The effect with the replay server's address and keys taken out of the client's message, so
    that the same answer gives the same detail in every run."""
    text = _REPLAY_PATH.sub("", effect.detail.replace(server.base_url, "the replay server"))
    return Effect(effect.effect, text.replace(server.base_url.removeprefix("http://"), "the replay server"))
