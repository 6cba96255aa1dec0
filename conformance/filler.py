"""Deterministic filler text of an exact size, for cases whose requests must be as large as a real
client's (tens of kilobytes of system prompt and tool descriptions) without committing that text.

A case writes `{$text: {bytes: 40000, seed: 1}}` where a string goes; the loader replaces it with
`filler(40000, 1)`: plain ASCII words and sentences, always the same for the same size and seed.
The vocabulary holds no word the reference server's scripted model reacts to (no "use", "call",
"tool", "reply", "simulate", "count"...), so filler never changes what a case asks for.
"""

from __future__ import annotations

import random

_VOCABULARY = (
    "the a an of and or in on at for with by from into over under about after before while this that these "
    "those project file folder line change branch commit review test build check result value option setting "
    "task step plan note detail summary answer question context session user assistant system message text "
    "output input format style rule guide example case path name list table entry record field number string "
    "object array status error warning state mode level group section part page block item source target "
    "always never only also often briefly clearly carefully quietly exactly safely directly first last next "
    "keep read write edit open close run stop start show find look search match sort merge split move copy "
    "should must may can will does is are was be have has when where which who how why if then else"
)
WORDS = tuple(_VOCABULARY.split())
MAX_BYTES = 4 * 1024 * 1024


def filler(size: int, seed: int = 0) -> str:
    """`size` bytes (ASCII, so as many characters) of sentence-like text drawn from `seed`."""
    if not 0 <= size <= MAX_BYTES:
        raise ValueError(f"filler size must be between 0 and {MAX_BYTES} bytes, got {size}")
    rng = random.Random(seed)
    parts: list[str] = []
    length = 0
    while length < size:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18)))
        piece = ("\n\n" if rng.random() < 0.15 else " ") if parts else ""
        piece += sentence[0].upper() + sentence[1:] + "."
        parts.append(piece)
        length += len(piece)
    text = "".join(parts)[:size]
    # A cut may leave whitespace at either end, which the API refuses in some places (a prefill).
    return text[:-1] + "." if text and text[-1].isspace() else text
