"""Where and how to call the endpoint under test: base URL, auth style, model, headers, provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from conformance.model import TargetInfo

DEFAULT_MODEL = "claude-haiku-4-5"
DEFAULT_VERSION = "2023-06-01"
AUTH_STYLES = ("x-api-key", "bearer")

ENDPOINTS = {
    "messages": "/v1/messages",
    "count_tokens": "/v1/messages/count_tokens",
}


class TargetError(ValueError):
    """A target that cannot be called as configured (bad URL, unknown auth style...)."""


@dataclass
class Target:
    """The endpoint under test. `base_url` follows the SDKs' ANTHROPIC_BASE_URL convention:
    the suite appends /v1/messages and /v1/messages/count_tokens to it."""

    base_url: str
    api_key: str | None = None
    auth: str = "x-api-key"
    model: str = DEFAULT_MODEL
    provider: str = "anthropic"
    anthropic_version: str = DEFAULT_VERSION
    extra_headers: dict[str, str] = field(default_factory=dict)
    reference: bool = False
    # What the target claims to support (vision, thinking...); None claims everything.
    capabilities: frozenset[str] | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise TargetError(f"base URL must be an http(s) URL such as http://127.0.0.1:8080, got {self.base_url!r}")
        if self.auth not in AUTH_STYLES:
            raise TargetError(f"auth style must be one of {', '.join(AUTH_STYLES)}, got {self.auth!r}")
        self.base_url = self.base_url.rstrip("/")

    def url(self, endpoint: str) -> str:
        """The URL of a named endpoint (messages, count_tokens) or of a path starting with '/'."""
        path = ENDPOINTS.get(endpoint, endpoint)
        if not path.startswith("/"):
            raise TargetError(f"unknown endpoint {endpoint!r}: use messages, count_tokens or a path")
        return self.base_url + path

    def auth_headers(self, style: str | None = None) -> dict[str, str]:
        """The credential headers in the target's style, or in `style` when a case asks for one."""
        if not self.api_key:
            return {}
        if (style or self.auth) == "bearer":
            return {"authorization": f"Bearer {self.api_key}"}
        return {"x-api-key": self.api_key}

    def default_headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "anthropic-version": self.anthropic_version}
        headers.update({name.lower(): value for name, value in self.extra_headers.items()})
        return headers

    @property
    def is_loopback(self) -> bool:
        host = urlsplit(self.base_url).hostname or ""
        return host in ("localhost", "::1") or host.startswith("127.")

    def info(self) -> TargetInfo:
        return TargetInfo(base_url=self.base_url, provider=self.provider, model=self.model, reference=self.reference)
