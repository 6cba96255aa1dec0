"""Gateways with the defects that only generated cases are meant to find, built on the reference
app with the hooks of tests/broken_variants.py.

- `TemperatureClamped` lets temperature 7 through (clamped to the API's range before it goes on);
- `RoleServerError` answers a message role it does not know with a 500;
- `OptionalMaxTokens` fills in max_tokens when it is missing (OpenRouter documents this);
- `broken_variants.OpenAIErrors` answers every error in OpenAI's shape.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp

from conformance.reference import create_app
from tests.broken_variants import Broken, OpenAIErrors, anthropic_error, each_message

KNOWN_ROLES = ("user", "assistant")


class TemperatureClamped(Broken):
    def request(self, path: str, headers: list[tuple[str, str]], body: Any) -> tuple[list[tuple[str, str]], Any]:
        temperature = body.get("temperature") if isinstance(body, dict) else None
        if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
            body["temperature"] = min(max(temperature, 0.0), 1.0)
        return headers, body


class RoleServerError(Broken):
    def request(self, path: str, headers: list[tuple[str, str]], body: Any) -> tuple[list[tuple[str, str]], Any]:
        if any(message.get("role") not in KNOWN_ROLES for message in each_message(body)):
            raise anthropic_error(500, "api_error", "internal error")
        return headers, body


class OptionalMaxTokens(Broken):
    def request(self, path: str, headers: list[tuple[str, str]], body: Any) -> tuple[list[tuple[str, str]], Any]:
        if path.endswith("/v1/messages") and isinstance(body, dict) and "max_tokens" not in body:
            body["max_tokens"] = 16
        return headers, body


DEFECTS: dict[str, type[Broken]] = {
    "temperature": TemperatureClamped,
    "role": RoleServerError,
    "openai-errors": OpenAIErrors,
    "optional-max-tokens": OptionalMaxTokens,
}


def variant_app(defect: str, api_key: str | None = None) -> ASGIApp:
    """The reference app (accepting only `api_key`, or any key) behind one named defect."""
    return DEFECTS[defect](create_app(api_key))
