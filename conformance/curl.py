"""A recorded request as a curl command anyone can paste: the body byte for byte, the key never written down.

The credential is taken from `$ANTHROPIC_API_KEY` in the style the request used (x-api-key or a
Bearer authorization); curl computes the length and host itself.
"""

from __future__ import annotations

import json
import shlex

from conformance.model import Request

KEY_VARIABLE = "ANTHROPIC_API_KEY"
# Headers the command sets itself (credentials) or that curl computes (length, host).
_OWN_HEADERS = frozenset({"x-api-key", "authorization", "content-length", "host"})


def auth_style(headers: dict[str, str]) -> str:
    """How a recorded request sent its key: bearer, x-api-key or none."""
    names = {name.lower() for name in headers}
    return "bearer" if "authorization" in names else "x-api-key" if "x-api-key" in names else "none"


def request_bytes(request: Request) -> bytes:
    """The body as it was sent (a raw body as it is, a JSON one as compact UTF-8)."""
    if request.raw_body is not None:
        return request.raw_body.encode()
    if request.body is None:
        return b""
    return json.dumps(request.body, ensure_ascii=False).encode()


def printf_format(content: bytes) -> str:
    """The bytes as a single-quoted printf format: printable ASCII as it is, the rest escaped in octal."""
    out = []
    for byte in content:
        char = chr(byte)
        if char == "%":
            out.append("%%")
        elif char == "\\":
            out.append("\\\\")
        elif char == "'" or not 0x20 <= byte < 0x7F:
            out.append(f"\\{byte:03o}")
        else:
            out.append(char)
    return "'" + "".join(out) + "'"


def curl_lines(request: Request, auth: str) -> list[str]:
    """The shell lines sending `request` again (`auth`: bearer, x-api-key or none)."""
    headers = [
        f"-H {shlex.quote(f'{name}: {value}')}"
        for name, value in request.headers.items()
        if name.lower() not in _OWN_HEADERS
    ]
    if auth == "bearer":
        headers.append(f'-H "authorization: Bearer ${KEY_VARIABLE}"')
    elif auth != "none":
        headers.append(f'-H "x-api-key: ${KEY_VARIABLE}"')
    parts = [f"curl -sS -N -X {shlex.quote(request.method)} {shlex.quote(request.url)}", *headers]
    return [
        f"printf {printf_format(request_bytes(request))} |",
        *(f"  {part} \\" for part in parts),
        "  --data-binary @-",
    ]
