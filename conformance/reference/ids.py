"""Identifiers in the shapes the Anthropic API uses: `req_…`, `msg_…`, `toolu_…` (prefix + 24 base62)."""

from __future__ import annotations

import secrets
import string

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
ID_LENGTH = 24


def new_id(prefix: str) -> str:
    """A random identifier: `prefix` followed by 24 base62 characters."""
    return prefix + "".join(secrets.choice(BASE62) for _ in range(ID_LENGTH))


def request_id() -> str:
    return new_id("req_")


def message_id() -> str:
    return new_id("msg_")


def tool_use_id() -> str:
    return new_id("toolu_")
