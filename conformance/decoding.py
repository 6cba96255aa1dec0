"""Decoding a body's Content-Encoding within a bound, so that no answer can flood memory.

A few hundred bytes of gzip can expand to gigabytes, and `gzip, gzip` multiplies that again. The
decoder here never returns more than `max_output` bytes in all: every stage decompresses with an
output limit (`decompressobj().decompress(data, max_length)`) and is pulled from the last stage
back, one bounded piece at a time, so no stage ever holds more than a piece of output.

Encodings: gzip (x-gzip), deflate (zlib-wrapped as the standard says, or raw as some servers send
it), br with the `brotli` module (1.2 or later, which can limit its output) and zstd with
`compression.zstd` (Python 3.14) or `backports.zstd`, when they are importable; identity. Listed
encodings are undone last first. An encoding that cannot be decoded here, more than
MAX_STACKED_ENCODINGS of them, or a corrupt body is reported in one sentence, never raised.
"""

from __future__ import annotations

import importlib
import zlib
from typing import Any, Protocol

# More encodings than this on one body is an attack, not a configuration.
MAX_STACKED_ENCODINGS = 3
# The most output one stage is asked for at a time.
_PIECE = 64 * 1024


class _Stage(Protocol):
    """One encoding being undone: compressed bytes in, at most `max_length` bytes out per read."""

    name: str

    def take(self, data: bytes) -> None: ...

    def read(self, max_length: int) -> bytes:
        """Up to max_length decoded bytes from the input taken so far; b"" when it needs more input."""
        ...

    def finished(self) -> bool:
        """Whether the end of the encoded stream was reached."""
        ...


class _Zlib:
    """gzip, or deflate (zlib or raw, told apart by the first two bytes)."""

    def __init__(self, name: str, wbits: int | None) -> None:
        self.name = name
        self._state = zlib.decompressobj(wbits) if wbits is not None else None
        self._input = b""

    def take(self, data: bytes) -> None:
        self._input += data

    def read(self, max_length: int) -> bytes:
        if self._state is None:
            if len(self._input) < 2:
                return b""
            self._state = zlib.decompressobj(zlib.MAX_WBITS if _zlib_header(self._input) else -zlib.MAX_WBITS)
        output = self._state.decompress(self._input, max_length)
        self._input = self._state.unconsumed_tail
        return output

    def finished(self) -> bool:
        return self._state is not None and self._state.eof


def _zlib_header(data: bytes) -> bool:
    """Whether data starts with a zlib header (RFC 1950: method 8, header a multiple of 31)."""
    return data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


class _Brotli:
    def __init__(self, module: Any) -> None:
        self.name = "br"
        self._state = module.Decompressor()
        self._input = b""

    def take(self, data: bytes) -> None:
        self._input += data

    def read(self, max_length: int) -> bytes:
        data = b""
        if self._state.can_accept_more_data():
            data, self._input = self._input, b""
        return self._state.process(data, max_length)

    def finished(self) -> bool:
        return bool(self._state.is_finished())


class _Zstd:
    def __init__(self, module: Any) -> None:
        self.name = "zstd"
        self._state = module.ZstdDecompressor()
        self._input = b""

    def take(self, data: bytes) -> None:
        self._input += data

    def read(self, max_length: int) -> bytes:
        if self._state.eof:
            return b""
        data, self._input = self._input, b""
        return self._state.decompress(data, max_length)

    def finished(self) -> bool:
        return bool(self._state.eof)


def _optional(*modules: str) -> Any:
    """The first of these modules that can be imported, or None."""
    for module in modules:
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    return None


def _stage(name: str) -> _Stage | str:
    """A fresh stage undoing one encoding, or why this installation cannot undo it."""
    if name in ("gzip", "x-gzip"):
        return _Zlib(name, 32 + zlib.MAX_WBITS)  # a gzip header (or, tolerated, a zlib one)
    if name == "deflate":
        return _Zlib(name, None)
    if name == "br":
        brotli = _optional("brotli")
        if brotli is None or not hasattr(brotli.Decompressor, "can_accept_more_data"):
            return "the body is br-encoded, and brotli 1.2 or later is not installed to decode it within bounds"
        return _Brotli(brotli)
    if name == "zstd":
        zstd = _optional("compression.zstd", "backports.zstd")
        if zstd is None:
            return "the body is zstd-encoded, and no zstd module (Python 3.14, backports.zstd) is installed"
        return _Zstd(zstd)
    return f"the body has the unknown content-encoding {name!r}, which cannot be decoded"


def _decodable(name: str) -> bool:
    return not isinstance(_stage(name), str)


# What a client reading through BodyDecoder can accept (sent as Accept-Encoding).
ACCEPT_ENCODING = ", ".join(name for name in ("gzip", "deflate", "br", "zstd") if _decodable(name))


def encodings(content_encoding: str) -> list[str]:
    """The encodings a Content-Encoding value lists, in the order they were applied (identity left out)."""
    names = (part.strip().lower() for part in content_encoding.split(","))
    return [name for name in names if name and name != "identity"]


class BodyDecoder:
    """Undoes a Content-Encoding chunk by chunk, returning at most `max_output` bytes in all.

    `problem` says why the body cannot be decoded at all (nothing is returned then); `stopped` why
    decoding ended early: the output exceeded `max_output`, the encoded input exceeded it too (an
    endless encoded stream that decodes to nothing), or the body is corrupt.
    """

    def __init__(self, content_encoding: str, max_output: int) -> None:
        self.encodings = encodings(content_encoding)
        self.max_output = max_output
        self.problem: str | None = None
        self.stopped: str | None = None
        self._received = 0
        self._produced = 0
        self._stages: list[_Stage] = []
        if len(self.encodings) > MAX_STACKED_ENCODINGS:
            self.problem = (
                f"the body declares {len(self.encodings)} stacked content-encodings "
                f"({', '.join(self.encodings)}); more than {MAX_STACKED_ENCODINGS} are not decoded"
            )
            return
        for name in reversed(self.encodings):
            stage = _stage(name)
            if isinstance(stage, str):
                self.problem = stage
                return
            self._stages.append(stage)

    def decode(self, chunk: bytes) -> bytes:
        """The decoded bytes a received chunk completes (within the bound; b"" once stopped)."""
        if self.problem is not None or self.stopped is not None or not chunk:
            return b""
        if not self._stages:
            return self._keep(chunk)
        self._received += len(chunk)
        self._stages[0].take(chunk)
        output = bytearray()
        wanted = self.max_output - self._produced + 1  # one byte more tells that the bound was exceeded
        while len(output) < wanted:
            piece = self._pull(len(self._stages) - 1, min(wanted - len(output), _PIECE))
            if not piece:
                break
            output += piece
        if self._received > self.max_output and self.stopped is None:
            self.stopped = f"the encoded body exceeded {self.max_output} bytes"
        return self._keep(bytes(output))

    def unfinished(self) -> str | None:
        """Once the body ended: why it is incomplete when an encoded stream in it did not reach its end."""
        if self.problem is not None or self.stopped is not None or not self._received:
            return None
        cut = next((stage.name for stage in self._stages if not stage.finished()), None)
        return None if cut is None else f"the {cut}-encoded body ended before its compressed stream did"

    def _pull(self, index: int, max_length: int) -> bytes:
        """Up to max_length bytes out of stage `index`, feeding it from the stage before as it needs."""
        stage = self._stages[index]
        while self.stopped is None:
            try:
                output = stage.read(max_length)
            except Exception as exc:  # each decompression library raises its own error types
                self.stopped = f"the {stage.name}-encoded body could not be decoded: {exc or type(exc).__name__}"
                return b""
            if output or index == 0:
                return output
            more = self._pull(index - 1, _PIECE)
            if not more:
                return b""
            stage.take(more)
        return b""

    def _keep(self, data: bytes) -> bytes:
        room = self.max_output - self._produced
        if len(data) > room:
            data = data[:room]
            what = "decompressed body" if self._stages else "body"
            self.stopped = f"the {what} exceeded {self.max_output} bytes"
        self._produced += len(data)
        return data


def decode_body(data: bytes, content_encoding: str, max_output: int) -> tuple[bytes, str | None]:
    """A whole body decoded within the bound, and why it is not decoded whole (None when it is).

    A body that cannot be decoded at all comes back as it is, with the reason.
    """
    decoder = BodyDecoder(content_encoding, max_output)
    if decoder.problem is not None:
        return data, decoder.problem
    return decoder.decode(data), decoder.stopped
