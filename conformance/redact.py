"""Keeping secrets out of everything the tool stores, writes or prints.

Secrets are redacted by value wherever they appear: header values *and* names, SSE fields
(`event:`, `id:`, `data:`), JSON keys and values, reassembled text, finding messages, errors.
Credential headers are redacted by name as well, whatever their value. The same Redactor is
applied where exchanges are recorded and again at every sink (reports, console, cassettes,
captured cases), so that a secret that only appears once text is joined (a key split across two
deltas, then quoted in a finding) is caught too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance.model import Exchange

REDACTED = "[REDACTED]"
# Secrets shorter than this are only redacted in credential headers: replacing a short string
# everywhere would mangle ordinary text.
MIN_SECRET_LENGTH = 8
# Headers that carry credentials, whatever their value.
SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "api-key", "x-goog-api-key"})


def credential(name: str, value: str) -> str | None:
    """The secret a credential header carries (the token of `Bearer TOKEN`), or None for other headers."""
    if name.lower() not in SECRET_HEADERS:
        return None
    scheme, _, token = value.partition(" ")
    secret = token.strip() if token and scheme.lower() in ("bearer", "basic") else value.strip()
    return secret or None


@dataclass
class Redactor:
    """Replaces every known secret, and every credential header, before anything is stored."""

    secrets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.secrets = self._usable(self.secrets)

    @staticmethod
    def _usable(secrets: Iterable[str]) -> list[str]:
        # Longest first, so that a secret containing another is replaced whole.
        return sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def add(self, *secrets: str) -> None:
        """Treat more values as secrets from now on."""
        self.secrets = self._usable([*self.secrets, *secrets])

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def optional(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        clean = {}
        for name, value in headers.items():
            if name.lower() in SECRET_HEADERS:
                scheme, _, rest = value.partition(" ")
                value = f"{scheme} {REDACTED}" if rest and scheme.lower() in ("bearer", "basic") else REDACTED
            clean[self.text(name)] = self.text(value)
        return clean

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(item) for item in value]
        if isinstance(value, dict):
            return {self.text(key) if isinstance(key, str) else key: self.json(item) for key, item in value.items()}
        return value

    def exchange(self, exchange: Exchange) -> Exchange:
        """Redact an exchange in place (request, response, events, error) and return it."""
        request = exchange.request
        request.headers = self.headers(request.headers)
        request.url = self.text(request.url)
        request.body = self.json(request.body)
        if request.raw_body is not None:
            request.raw_body = self.text(request.raw_body)
        response = exchange.response
        if response is not None:
            response.headers = self.headers(response.headers)
            response.text = self.text(response.text)
            response.json = self.json(response.json)
            for event in response.events or []:
                event.event = self.optional(event.event)
                event.id = self.optional(event.id)
                event.data = self.text(event.data)
                event.json = self.json(event.json)
            response.truncated = self.optional(response.truncated)
        exchange.error = self.optional(exchange.error)
        return exchange
