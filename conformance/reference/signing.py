"""Signatures of thinking blocks and the opaque data of redacted_thinking blocks.

Like the real API, the server only accepts thinking it produced itself: a thinking block's
`signature` is base64(HMAC-SHA256(secret, thinking text)) and a redacted_thinking block's `data`
is base64(payload + HMAC-SHA256(secret, payload)). The secret is drawn once per process, so
blocks from one run are refused by a server of another run, as expired signatures would be.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

_SECRET = secrets.token_bytes(32)
_MAC_SIZE = hashlib.sha256().digest_size
_REDACTED_PREFIX = b"conformance-reference:redacted-thinking:"


def _mac(payload: bytes) -> bytes:
    return hmac.new(_SECRET, payload, hashlib.sha256).digest()


def _decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def sign_thinking(thinking: str) -> str:
    return base64.b64encode(_mac(thinking.encode("utf-8"))).decode("ascii")


def thinking_signature_valid(thinking: str, signature: str) -> bool:
    raw = _decode(signature)
    return raw is not None and hmac.compare_digest(raw, _mac(thinking.encode("utf-8")))


def redacted_data(hidden: str) -> str:
    """Opaque, verifiable data standing for thinking that is not shown."""
    payload = _REDACTED_PREFIX + hashlib.sha256(hidden.encode("utf-8")).digest()
    return base64.b64encode(payload + _mac(payload)).decode("ascii")


def redacted_data_valid(data: str) -> bool:
    raw = _decode(data)
    if raw is None or len(raw) <= _MAC_SIZE:
        return False
    payload, mac = raw[:-_MAC_SIZE], raw[-_MAC_SIZE:]
    return payload.startswith(_REDACTED_PREFIX) and hmac.compare_digest(mac, _mac(payload))
