"""A gateway with chosen defects, for end-to-end tests of the CI tooling (matrix, baselines,
record/replay, the pytest plugin), composed from the variants of tests/broken_variants.py.

`broken_app("count_tokens")` does not route count_tokens (404); `broken_app("tools")` answers
every request that declares tools with a 500, as when the gateway's tool-capable upstream is down.
Everything else reaches the reference server unchanged.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp

from conformance.reference import create_app
from tests.broken_variants import Broken, NoCountTokens, anthropic_error


class ToolsDown(Broken):
    def request(self, path: str, headers: list[tuple[str, str]], body: Any) -> tuple[list[tuple[str, str]], Any]:
        if isinstance(body, dict) and body.get("tools"):
            raise anthropic_error(500, "api_error", "the tools upstream is down")
        return headers, body


DEFECTS: dict[str, type[Broken]] = {"count_tokens": NoCountTokens, "tools": ToolsDown}


def broken_app(*defects: str, api_key: str | None = None) -> ASGIApp:
    """The reference app (accepting only `api_key`, or any key) behind the named defects."""
    app: ASGIApp = create_app(api_key)
    for name in defects:
        app = DEFECTS[name](app)
    return app
