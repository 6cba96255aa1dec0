"""Keeping secrets out of everything the tool stores, writes or prints.

Secrets are redacted by value wherever they appear: header values *and* names, SSE fields
(`event:`, `id:`, `data:`), JSON keys and values, reassembled text, finding messages, errors.
Credential headers are redacted by name as well, whatever their value. The same Redactor is
applied where exchanges are recorded and again at every sink (reports, console, cassettes,
captured cases), so that a secret that only appears once text is joined (a key split across two
deltas, then quoted in a finding) is caught too.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance.model import CaseResult, Exchange

REDACTED = "[REDACTED]"
# Secrets shorter than this are only redacted in credential headers: replacing a short string
# everywhere would mangle ordinary text.
MIN_SECRET_LENGTH = 8
# Headers that carry credentials, whatever their value.
SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "api-key", "x-goog-api-key"})
# Headers a user may send (`--header`) whose values are not secrets. The value of every other
# user header is a secret, redacted by value everywhere, unless the user marks it public.
HARMLESS_HEADERS = frozenset(
    {"accept", "accept-encoding", "anthropic-beta", "anthropic-version", "content-type", "user-agent"}
)


def header_secrets(headers: Mapping[str, str], public: Iterable[str] = ()) -> list[str]:
    """The values of user headers that are secrets: all but the harmless ones and those named `public`."""
    open_names = HARMLESS_HEADERS | {name.lower() for name in public}
    return [value for name, value in headers.items() if name.lower() not in open_names]


# Any other header whose name looks like a credential: one of its words (split on - and _) is key,
# apikey, token, secret, password, auth, authorization, cookie or credential(s) (x-portkey-api-key,
# x-portkey-virtual-key, x-litellm-api-key, x-auth-token, cookie...). "tokens" is not "token": the
# rate-limit headers stay readable.
SECRET_NAME_WORDS = re.compile(
    r"(?:^|[-_])(?:key|apikey|token|secret|password|passwd|auth|authorization|cookie|credentials?)(?:$|[-_])"
)


def secret_header(name: str, public: Collection[str] = ()) -> bool:
    """Whether a header carries a credential by its name (SECRET_HEADERS or SECRET_NAME_WORDS),
    unless `public` names it (lower-case names)."""
    name = name.lower()
    if name in public:
        return False
    return name in SECRET_HEADERS or SECRET_NAME_WORDS.search(name) is not None


def credential(name: str, value: str, public: Collection[str] = ()) -> str | None:
    """The secret a credential header carries (the token of `Bearer TOKEN`), or None for other headers."""
    if not secret_header(name, public):
        return None
    scheme, _, token = value.partition(" ")
    secret = token.strip() if token and scheme.lower() in ("bearer", "basic") else value.strip()
    return secret or None


@dataclass
class Redactor:
    """Replaces every known secret, and every credential header, before anything is stored."""

    secrets: list[str] = field(default_factory=list)
    # Lower-case header names the user declared not secret, though their name looks like one.
    public_headers: frozenset[str] = frozenset()

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

    def _holds_secret(self, data: str) -> bool:
        """Whether JSON text may hold a secret: it holds one as is, or has an escape (a secret can be
        spelt with escapes, which only its parsed strings show). Without either, no string parsed from
        it can hold one: each is a piece of the text as it stands."""
        return bool(self.secrets) and ("\\" in data or any(secret in data for secret in self.secrets))

    def json_text(self, text: str) -> str:
        """JSON text as json.dumps(ensure_ascii=False) wrote it, every known secret in its strings redacted.

        Such a writer escapes each character alone, so a string holding a secret holds it as the text of
        the secret written the same way: where no secret shows so, the text is returned as it is, unparsed.
        """
        if not any(json.dumps(secret, ensure_ascii=False)[1:-1] in text for secret in self.secrets):
            return text
        return json.dumps(self.json(json.loads(text)), ensure_ascii=False, allow_nan=False)

    def optional(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        clean = {}
        for name, value in headers.items():
            if secret_header(name, self.public_headers):
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

    def result(self, result: CaseResult) -> CaseResult:
        """Redact what the judge said about a case (reason, finding messages) in place and return it."""
        result.reason = self.text(result.reason)
        result.findings = [
            dataclasses.replace(f, message=self.text(f.message), deviation=self.optional(f.deviation))
            for f in result.findings
        ]
        return result

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
                if self._holds_secret(event.data):
                    event.data = self.text(event.data)
                    event.json = self.json(event.json)
            response.truncated = self.optional(response.truncated)
        exchange.error = self.optional(exchange.error)
        return exchange
