"""Content-Encoding is decoded within a bound: nested encodings, bombs, corrupt and unknown ones."""

from __future__ import annotations

import gzip
import importlib.util
import zlib

import pytest

from conformance.decoding import MAX_STACKED_ENCODINGS, BodyDecoder, decode_body

BODY = b'{"type": "message", "content": [{"type": "text", "text": "' + b"0123456789" * 5_000 + b'"}]}'


def deflate(data: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(wbits=wbits)
    return compressor.compress(data) + compressor.flush()


def decode_in_chunks(encoded: bytes, content_encoding: str, size: int, max_output: int = 10**9) -> BodyDecoder:
    decoder = BodyDecoder(content_encoding, max_output)
    decoder.output = b"".join(decoder.decode(encoded[i : i + size]) for i in range(0, len(encoded), size))
    return decoder


ENCODED = {
    "gzip": gzip.compress(BODY),
    "x-gzip": gzip.compress(BODY),
    "deflate": deflate(BODY, zlib.MAX_WBITS),
    "identity": BODY,
    "gzip, identity": gzip.compress(BODY),
    "GZIP, Gzip": gzip.compress(gzip.compress(BODY)),
    "deflate, gzip": gzip.compress(deflate(BODY, zlib.MAX_WBITS)),
    "": BODY,
}


@pytest.mark.parametrize("content_encoding", ENCODED)
@pytest.mark.parametrize("size", [1, 7, 65_536])
def test_encodings_are_undone_in_order_whatever_the_chunking(content_encoding: str, size: int) -> None:
    decoder = decode_in_chunks(ENCODED[content_encoding], content_encoding, size)
    assert decoder.output == BODY
    assert decoder.problem is None and decoder.stopped is None


def test_raw_deflate_as_some_servers_send_it_is_decoded() -> None:
    assert decode_body(deflate(BODY, -zlib.MAX_WBITS), "deflate", 10**9) == (BODY, None)


def bomb(size: int) -> bytes:
    compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    return b"".join(compressor.compress(block) for _ in range(size // len(block))) + compressor.flush()


def test_a_gzip_bomb_is_cut_at_the_bound() -> None:
    decoder = decode_in_chunks(bomb(200 * 1024 * 1024), "gzip", 65_536, max_output=1_000_000)
    assert len(decoder.output) == 1_000_000
    assert decoder.stopped == "the decompressed body exceeded 1000000 bytes"


def test_a_nested_gzip_bomb_is_cut_at_the_bound() -> None:
    encoded = gzip.compress(bomb(200 * 1024 * 1024))
    output, stopped = decode_body(encoded, "gzip, gzip", 1_000_000)
    assert len(output) == 1_000_000
    assert stopped == "the decompressed body exceeded 1000000 bytes"


def test_an_identity_body_is_cut_at_the_bound() -> None:
    decoder = decode_in_chunks(BODY, "identity", 1000, max_output=5000)
    assert decoder.output == BODY[:5000]
    assert decoder.stopped == "the body exceeded 5000 bytes"


def test_a_body_exactly_at_the_bound_is_whole() -> None:
    assert decode_body(gzip.compress(BODY), "gzip", len(BODY)) == (BODY, None)


def test_endless_encoded_input_that_decodes_to_nothing_is_cut() -> None:
    empty_stored_block = b"\x00\x00\x00\xff\xff"  # raw deflate: a non-final stored block of no bytes
    output, stopped = decode_body(empty_stored_block * 1000, "deflate", 1000)
    assert output == b""
    assert stopped == "the encoded body exceeded 1000 bytes"


def test_a_body_that_ends_inside_its_compressed_stream_says_so() -> None:
    encoded = gzip.compress(gzip.compress(BODY))
    decoder = decode_in_chunks(encoded[:-20], "gzip, gzip", 50)
    assert BODY.startswith(decoder.output) and decoder.stopped is None
    assert decoder.unfinished() == "the gzip-encoded body ended before its compressed stream did"
    assert decode_in_chunks(encoded, "gzip, gzip", 50).unfinished() is None
    assert decode_in_chunks(BODY, "identity", 50).unfinished() is None


def test_a_corrupt_body_keeps_what_was_decoded_and_says_why() -> None:
    compressor = zlib.compressobj(level=0, wbits=-zlib.MAX_WBITS)
    good = compressor.compress(b"kept") + compressor.flush(zlib.Z_SYNC_FLUSH)
    decoder = decode_in_chunks(good + b"\xff" * len(good), "deflate", len(good))
    assert decoder.output == b"kept"
    assert (
        decoder.stopped
        == "the deflate-encoded body could not be decoded: Error -3 while decompressing data: invalid block type"
    )


def test_a_body_that_is_not_what_it_claims_is_a_problem() -> None:
    output, stopped = decode_body(BODY, "gzip", 10**9)
    assert output == b""
    assert (
        stopped
        == "the gzip-encoded body could not be decoded: Error -3 while decompressing data: incorrect header check"
    )


@pytest.mark.parametrize(
    ("content_encoding", "problem"),
    [
        ("compress", "the body has the unknown content-encoding 'compress', which cannot be decoded"),
        ("utf-8", "the body has the unknown content-encoding 'utf-8', which cannot be decoded"),
        (
            ", ".join(["gzip"] * (MAX_STACKED_ENCODINGS + 1)),
            f"the body declares {MAX_STACKED_ENCODINGS + 1} stacked content-encodings "
            f"({', '.join(['gzip'] * (MAX_STACKED_ENCODINGS + 1))}); more than {MAX_STACKED_ENCODINGS} are not decoded",
        ),
    ],
)
def test_what_cannot_be_decoded_is_said_in_one_sentence(content_encoding: str, problem: str) -> None:
    decoder = BodyDecoder(content_encoding, 1000)
    assert decoder.problem == problem
    assert decoder.decode(b"anything") == b""
    assert decode_body(b"anything", content_encoding, 1000) == (b"anything", problem)


def installed(*modules: str) -> bool:
    return any(
        importlib.util.find_spec(module.split(".")[0]) and importlib.util.find_spec(module) for module in modules
    )


@pytest.mark.skipif(installed("brotli"), reason="brotli is installed")
def test_br_without_a_brotli_module_is_a_problem_not_a_crash() -> None:
    assert "br-encoded" in BodyDecoder("br", 1000).problem


@pytest.mark.skipif(not installed("brotli"), reason="brotli is not installed")
def test_br_is_decoded_within_the_bound() -> None:
    brotli = pytest.importorskip("brotli")
    assert decode_body(brotli.compress(BODY), "br", 10**9) == (BODY, None)
    assert decode_in_chunks(brotli.compress(BODY)[:-5], "br", 50).unfinished() == (
        "the br-encoded body ended before its compressed stream did"
    )
    output, stopped = decode_body(brotli.compress(bytes(50_000_000)), "br", 1000)
    assert (len(output), stopped) == (1000, "the decompressed body exceeded 1000 bytes")


@pytest.mark.skipif(installed("compression.zstd", "backports.zstd"), reason="a zstd module is installed")
def test_zstd_without_a_zstd_module_is_a_problem_not_a_crash() -> None:
    assert "zstd-encoded" in BodyDecoder("zstd", 1000).problem


@pytest.mark.skipif(not installed("compression.zstd", "backports.zstd"), reason="no zstd module is installed")
def test_zstd_is_decoded_within_the_bound() -> None:
    try:
        from compression import zstd
    except ImportError:
        from backports import zstd
    assert decode_body(zstd.compress(BODY), "zstd", 10**9) == (BODY, None)
    assert decode_in_chunks(zstd.compress(BODY)[:-5], "zstd", 50).unfinished() == (
        "the zstd-encoded body ended before its compressed stream did"
    )
    output, stopped = decode_body(zstd.compress(bytes(50_000_000)), "zstd", 1000)
    assert (len(output), stopped) == (1000, "the decompressed body exceeded 1000 bytes")
