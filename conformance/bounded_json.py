"""The bounded JSON parse of SSE payloads and bodies: within `MAX_JSON_DEPTH` and
`MAX_JSON_INTEGER_DIGITS`, so that no parsed value can later break what recurses over it or prints
it (checks, redaction, `json.dumps`); NaN and Infinity, which Python's parser accepts, are refused
as not JSON.
"""

from __future__ import annotations

import json
import re
from typing import NoReturn

# Deepest nesting of arrays and objects a JSON payload may have (a Message needs about 10).
MAX_JSON_DEPTH = 64
# Most digits a JSON integer may have (token counts need 10; Python prints at most 4300).
MAX_JSON_INTEGER_DIGITS = 50
# What a payload looks like to the bound checks: every digit a "0", every "{" a "[".
_SHAPE = bytes.maketrans(b"0123456789{", b"0000000000[")
_LONG_INTEGER = b"0" * (MAX_JSON_INTEGER_DIGITS + 1)
# Strings once their escaped quotes are gone, and what is left of a payload's brackets: "[" and "]".
_STRING = re.compile(rb'"[^"]*"')
_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(set(range(256)) - set(b"[]{}"))
_TOO_MANY_OPENERS = b"[" * (MAX_JSON_DEPTH + 1)


class _Refused(ValueError):
    """A JSON value beyond the bounds; its message is the one-sentence reason."""


def _refuse_constant(name: str) -> NoReturn:
    raise _Refused(f"not JSON: {name} is not a JSON value")


def _bounded_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_JSON_INTEGER_DIGITS:
        raise _Refused(f"a JSON integer has more than {MAX_JSON_INTEGER_DIGITS} digits")
    return int(text)


_PLAIN = json.JSONDecoder(parse_constant=_refuse_constant)
_BOUNDED_INTEGERS = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_bounded_int)


def _decode(decoder: json.JSONDecoder, data: str) -> object:
    """decoder.decode(data), with the C scanner alone for the usual payload (no surrounding whitespace)."""
    try:
        value, end = decoder.scan_once(data, 0)  # type: ignore[attr-defined]
    except StopIteration:
        end = -1
    return value if end == len(data) else decoder.decode(data)


def _nested_too_deep(raw: bytes) -> bool:
    """Whether arrays and objects nest deeper than MAX_JSON_DEPTH (brackets in strings skipped).

    In C passes, never a loop per byte: each pass removes the innermost pairs, so what is left of a
    pair after MAX_JSON_DEPTH passes lies deeper (unbalanced brackets are json's to report); a run of
    more openers than the bound, the usual shape of an attack, ends the search at once.
    """
    outside = _STRING.sub(b"", raw.replace(b"\\\\", b"").replace(b'\\"', b""))
    brackets = outside.translate(_SQUARE, _NOT_BRACKET)
    for _ in range(MAX_JSON_DEPTH):
        if _TOO_MANY_OPENERS in brackets:
            return True
        brackets = brackets.replace(b"[]", b"")
        if b"[]" not in brackets:
            return False
    return True


def parse_json_payload(data: str | bytes) -> tuple[object | None, str | None]:
    """Parse a payload as JSON within the bounds; return (value, None) or (None, a one-sentence reason).

    Never raises. The common case costs one pass over the payload besides the parse itself:
    nesting is only scanned when there are more brackets than the depth bound, and integers are
    only measured when the payload has a run of digits longer than the bound.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return None, "not JSON: the payload is not UTF-8"
    raw = data.encode("utf-8", "surrogatepass")
    shape = raw.translate(_SHAPE)
    if shape.count(b"[") > MAX_JSON_DEPTH and _nested_too_deep(raw):
        return None, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    decoder = _BOUNDED_INTEGERS if _LONG_INTEGER in shape else _PLAIN
    try:
        return _decode(decoder, data), None
    except _Refused as exc:
        return None, str(exc)
    except RecursionError:
        return None, "JSON nested too deep to parse here"
    except ValueError as exc:
        return None, f"not JSON: {exc}"
