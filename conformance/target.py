"""Where and how to call the endpoint under test: base URL, auth style, model, headers, provider.

A target names its provider (`--provider`, default anthropic); the provider's profile under
specs/<provider>/profile.yaml fills in what the target does not say: the auth style, the
default model, the capabilities the provider claims and the path prefix its API sits under.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from conformance.model import TargetInfo
from conformance.redact import Redactor, header_secrets
from conformance.request_defaults import AUTH_STYLES, DEFAULT_MODEL, DEFAULT_VERSION
from conformance.specs.profiles import CANONICAL, ProfileError, ProviderProfile, load_profile

ENDPOINTS = {
    "messages": "/v1/messages",
    "count_tokens": "/v1/messages/count_tokens",
}


def is_loopback(url: str) -> bool:
    """True when the URL's host is this machine (localhost, 127.x, ::1)."""
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


class TargetError(ValueError):
    """A target that cannot be called as configured (bad URL, unknown auth style or provider...)."""


def parse_header(value: str) -> tuple[str, str]:
    """A `NAME:VALUE` header given on the command line, as (lower-case name, value)."""
    name, sep, rest = value.partition(":")
    if not sep or not name.strip():
        raise TargetError(f"expected NAME:VALUE, got {value!r}")
    return name.strip().lower(), rest.strip()


@dataclass
class Target:
    """The endpoint under test. `base_url` follows the SDKs' ANTHROPIC_BASE_URL convention:
    the suite appends /v1/messages and /v1/messages/count_tokens to it.

    `auth`, `model` and `capabilities` left as None come from the provider's profile. A base
    URL without a path gets the profile's base path (OpenRouter's /api, Bifrost's /anthropic).
    The embedded reference server (`reference`) serves the API at the root under Anthropic's
    model names, so it keeps both whatever the profile says.
    """

    base_url: str
    api_key: str | None = None
    auth: str | None = None
    model: str | None = None
    provider: str = CANONICAL
    anthropic_version: str = DEFAULT_VERSION
    extra_headers: dict[str, str] = field(default_factory=dict)
    # Names of extra headers whose values are not secrets (`--public-header`); see conformance.redact.
    public_headers: frozenset[str] = frozenset()
    reference: bool = False
    # What the target claims to support (vision, thinking...); None claims everything.
    capabilities: frozenset[str] | None = None
    profile: ProviderProfile = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            self.profile = load_profile(self.provider)
        except ProfileError as exc:
            raise TargetError(str(exc)) from None
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise TargetError(f"base URL must be an http(s) URL such as http://127.0.0.1:8080, got {self.base_url!r}")
        self.auth = self.auth or self.profile.auth.value
        if self.auth not in AUTH_STYLES:
            raise TargetError(f"auth style must be one of {', '.join(AUTH_STYLES)}, got {self.auth!r}")
        # The embedded reference server serves Anthropic's model names, whatever the profile.
        self.model = self.model or (DEFAULT_MODEL if self.reference else self.profile.default_model.value)
        if self.capabilities is None:
            self.capabilities = self.profile.capabilities
        self.base_url = self.base_url.rstrip("/")
        if not self.reference and not parts.path.strip("/"):
            self.base_url += self.profile.base_path.value

    def url(self, endpoint: str) -> str:
        """The URL of a named endpoint (messages, count_tokens) or of a path starting with '/'."""
        path = ENDPOINTS.get(endpoint, endpoint)
        if not path.startswith("/"):
            raise TargetError(f"unknown endpoint {endpoint!r}: use messages, count_tokens or a path")
        return self.base_url + path

    def auth_headers(self, style: str | None = None) -> dict[str, str]:
        """The credential headers in the target's style, or in `style` when a case asks for one."""
        chosen = style or self.auth
        if not self.api_key or chosen == "none":
            return {}
        if chosen == "bearer":
            return {"authorization": f"Bearer {self.api_key}"}
        return {"x-api-key": self.api_key}

    def default_headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "anthropic-version": self.anthropic_version}
        headers.update({name.lower(): value for name, value in self.extra_headers.items()})
        return headers

    def secrets(self) -> list[str]:
        """What must never reach a report, log or console: the API key and every extra header's value
        but those of harmless or public headers."""
        return ([self.api_key] if self.api_key else []) + header_secrets(self.extra_headers, self.public_headers)

    def redactor(self) -> Redactor:
        """A Redactor of the target's secrets: the run gives the same one to the transport and every sink.
        Public headers stay readable even where their name looks like a credential's."""
        return Redactor(secrets=self.secrets(), public_headers=self.public_headers)

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.base_url)

    def info(self) -> TargetInfo:
        return TargetInfo(
            base_url=self.base_url, provider=self.provider, model=self.model or "", reference=self.reference
        )
