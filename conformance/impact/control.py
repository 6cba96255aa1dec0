"""The control: the reference server's own answer to the same call, run by the same case against the
embedded reference server. A client that fails on the contract's answer as it fails on the recorded
one (Claude Code refuses an answer stopped by `refusal`, `max_tokens` or the context window, and a
programmatic tool call) is not affected by the difference: its effect is the client's own."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable

from conformance.cases import CaseError, load_cases
from conformance.model import Response
from conformance.reference import ReferenceServer
from conformance.runner import run_suite
from conformance.target import Target


def control_answers(case_ids: Iterable[str]) -> dict[tuple[str, int], Response]:
    """The reference server's answer to each step of the catalogue cases among `case_ids`, by (case, step)."""
    try:
        catalogue = {case.id: case for case in load_cases()}
    except CaseError:
        return {}
    cases = [catalogue[case_id] for case_id in sorted(set(case_ids)) if case_id in catalogue]
    if not cases:
        return {}
    key = "control-" + secrets.token_hex(8)
    with ReferenceServer(api_key=key) as server:
        report = asyncio.run(run_suite(Target(base_url=server.base_url, api_key=key), cases, concurrency=4))
    return {
        (result.id, exchange.step): exchange.response
        for result in report.results
        for exchange in result.exchanges
        if exchange.response is not None and not exchange.response.truncated
    }
