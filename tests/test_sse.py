"""The SSE parser accepts everything the standard allows and never raises on garbage."""

from __future__ import annotations

import json
import time

import pytest

from conformance.bounded_json import MAX_JSON_DEPTH, MAX_JSON_INTEGER_DIGITS, parse_json_payload
from conformance.sse import SSEParser, parse_stream


def test_standard_event_with_json() -> None:
    events = parse_stream(b'event: ping\ndata: {"type": "ping"}\n\n')
    assert len(events) == 1
    assert events[0].event == "ping"
    assert events[0].json == {"type": "ping"}
    assert events[0].type == "ping"


@pytest.mark.parametrize(
    "raw",
    [
        b'event: ping\r\ndata: {"type":"ping"}\r\n\r\n',
        b'event: ping\rdata: {"type":"ping"}\r\r',
        b'event:ping\ndata:{"type":"ping"}\n\n',
        b': a comment\nevent: ping\n: another\ndata: {"type":"ping"}\n\n',
        b'\xef\xbb\xbfevent: ping\ndata: {"type":"ping"}\n\n',
    ],
    ids=["crlf", "cr", "no-space", "comments", "bom"],
)
def test_tolerates_what_the_standard_allows(raw: bytes) -> None:
    events = parse_stream(raw)
    assert [(e.event, e.json) for e in events] == [("ping", {"type": "ping"})]


def test_multiline_data_is_joined_with_newlines() -> None:
    events = parse_stream(b'data: {"type":\ndata: "ping"}\n\n')
    assert events[0].data == '{"type":\n"ping"}'
    assert events[0].json == {"type": "ping"}


def test_id_retry_and_unknown_fields() -> None:
    events = parse_stream(b"id: 7\nretry: 1000\nfoo: bar\nevent: x\ndata: {}\n\n")
    assert events[0].id == "7"
    assert events[0].retry == 1000


def test_incremental_feeding_byte_by_byte_with_cr_lf_split() -> None:
    raw = b'event: a\r\ndata: {"type":"a"}\r\n\r\nevent: b\r\ndata: {"type":"b"}\r\n\r\n'
    parser = SSEParser()
    events = []
    for i in range(len(raw)):
        events.extend(parser.feed(raw[i : i + 1], t=float(i)))
    assert [e.event for e in events] == ["a", "b"]
    assert events[0].t < events[1].t
    assert not parser.pending


def test_garbage_and_done_sentinel_are_kept_as_evidence() -> None:
    events = parse_stream(b"data: [DONE]\n\ndata: \x00\xffnot json\n\n")
    assert events[0].data == "[DONE]"
    assert events[0].json is None and events[0].json_error
    assert events[1].json is None


def test_event_without_data_is_reported_not_dropped() -> None:
    events = parse_stream(b"event: message_stop\n\n")
    assert events[0].event == "message_stop"
    assert events[0].json_error == "event has no data field"


def test_pending_when_cut_mid_event() -> None:
    parser = SSEParser()
    parser.feed(b'event: ping\ndata: {"type":"ping"}\n')
    assert parser.pending


@pytest.mark.parametrize(
    "value",
    ["²", "1e3", " 100", "-5", "", "9" * 5000],
    ids=["superscript", "exponent", "space", "sign", "empty", "huge"],
)
def test_retry_that_is_not_ascii_digits_or_too_long_is_ignored(value: str) -> None:
    events = parse_stream(f"retry: {value}\ndata: {{}}\n\n".encode())
    assert events[0].retry is None
    assert events[0].json == {}


@pytest.mark.parametrize("fields", [b"retry: 3000\n", b"id: 7\n", b"retry: 3000\nid: 7\nfoo: bar\n"])
def test_id_and_retry_alone_start_no_event_and_stay_for_the_next(fields: bytes) -> None:
    events = parse_stream(fields + b'\nevent: ping\ndata: {"type": "ping"}\n\n')
    assert [(e.event, e.json) for e in events] == [("ping", {"type": "ping"})]
    assert (events[0].retry, events[0].id) == (3000 if b"retry" in fields else None, "7" if b"id" in fields else None)


def test_bom_split_across_chunks_is_still_dropped() -> None:
    parser = SSEParser()
    events = []
    for byte in b'\xef\xbb\xbfevent: ping\rdata: {"type":"ping"}\r\r':
        events.extend(parser.feed(bytes([byte])))
    assert [(e.event, e.json) for e in events] == [("ping", {"type": "ping"})]


def test_only_a_leading_bom_is_dropped() -> None:
    events = parse_stream(b"data: {}\n\n\xef\xbb\xbfdata: {}\n\n")
    assert len(events) == 1  # the second line's field name is "\ufeffdata", an unknown field


def test_a_long_line_in_small_chunks_is_parsed_in_linear_time() -> None:
    text = "x" * (8 * 1024 * 1024)
    raw = f'data: "{text}"\n\n'.encode()
    parser = SSEParser(max_event_bytes=16 * 1024 * 1024)
    started = time.monotonic()
    events = []
    for start in range(0, len(raw), 16 * 1024):
        events.extend(parser.feed(raw[start : start + 16 * 1024]))
        assert time.monotonic() - started < 20, "a long line is rescanned for every chunk"
    assert len(events) == 1 and events[0].json == text


def test_a_line_longer_than_the_bound_stops_the_parser() -> None:
    parser = SSEParser(max_event_bytes=1000)
    events = parser.feed(b'data: {"type":"ping"}\n\n')
    for _ in range(5):
        events += parser.feed(b"data: " + b"x" * 300)
    assert parser.stopped == "an SSE line exceeded 1000 bytes"
    assert parser.feed(b'\n\ndata: {"type":"ping"}\n\n') == []
    assert [e.json for e in events] == [{"type": "ping"}]


def test_a_whole_long_line_in_one_chunk_stops_the_parser() -> None:
    parser = SSEParser(max_event_bytes=1000)
    assert parser.feed(b"data: " + b"x" * 2000 + b"\n\n") == []
    assert parser.stopped == "an SSE line exceeded 1000 bytes"


def test_an_event_larger_than_the_bound_stops_the_parser() -> None:
    parser = SSEParser(max_event_bytes=1000)
    assert parser.feed(b"data: " + b"x" * 500 + b"\n") == []
    assert parser.stopped is None
    assert parser.feed(b"data: " + b"x" * 500 + b"\n\n") == []
    assert parser.stopped == "an SSE event exceeded 1000 bytes"


def test_deeply_nested_event_data_is_refused_not_raised() -> None:
    events = parse_stream(b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n")
    assert events[0].json is None
    assert events[0].json_error == f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 1_000, 100_000])
def test_json_nesting_is_bounded(depth: int) -> None:
    value, error = parse_json_payload(nested(depth))
    if depth <= MAX_JSON_DEPTH:
        assert error is None and value is not None
    else:
        assert (value, error) == (None, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


def test_brackets_in_strings_do_not_count_as_nesting() -> None:
    payload = json.dumps({"text": "[{" * 1000, "quoted": '\\"[[[' * 100, "list": [[[1]], [[2]]] * 50})
    assert parse_json_payload(payload) == (json.loads(payload), None)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1])
def test_arrays_and_objects_count_alike_towards_the_depth(depth: int) -> None:
    payload = '[{"a":' * (depth // 2) + "[" * (depth % 2) + "1" + "]" * (depth % 2) + "}]" * (depth // 2)
    assert (parse_json_payload(payload)[1] is None) is (depth <= MAX_JSON_DEPTH)


def test_escaped_quotes_and_backslashes_are_read_as_json_reads_them() -> None:
    brackets = "[" * 70 + "]" * 70
    for value in ({"t": '"' + brackets}, {"t": "\\", "u": brackets}, {"t": '\\"' + brackets + "\\"}):
        assert parse_json_payload(json.dumps(value)) == (value, None)
    deep_after_a_backslash = json.dumps({"t": "\\"})[:-1] + ', "list": ' + brackets + "}"
    assert parse_json_payload(deep_after_a_backslash) == (None, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


def test_a_body_cut_short_is_not_json_rather_than_deep() -> None:
    payload = json.dumps([{"a": [i]} for i in range(1000)])[:5000]
    assert parse_json_payload(payload)[1].startswith("not JSON")


def test_depth_is_measured_in_linear_time_whatever_the_quotes() -> None:
    started = time.monotonic()
    for payload in ("[" * 100 + '"' + '\\"' * 1_000_000, "[" * 100 + '"\\' * 1_000_000, "[" * 4_000_000):
        assert parse_json_payload(payload)[0] is None
    assert time.monotonic() - started < 20


def test_wide_json_with_many_brackets_is_not_deep() -> None:
    payload = json.dumps([[i] for i in range(10_000)])
    assert parse_json_payload(payload)[1] is None


@pytest.mark.parametrize("digits", [MAX_JSON_INTEGER_DIGITS + 1, 4000, 5000])
def test_long_json_integers_are_refused(digits: int) -> None:
    for payload in (f'{{"n": {"9" * digits}}}', f"[-{'9' * digits}]"):
        assert parse_json_payload(payload) == (None, f"a JSON integer has more than {MAX_JSON_INTEGER_DIGITS} digits")


def test_integers_up_to_the_bound_and_digits_in_strings_are_fine() -> None:
    payload = f'{{"n": -{"9" * MAX_JSON_INTEGER_DIGITS}, "s": "{"1" * 200}", "f": 1.{"5" * 80}}}'
    assert parse_json_payload(payload) == (json.loads(payload), None)


@pytest.mark.parametrize("payload", ["NaN", '{"a": Infinity}', "[-Infinity]"])
def test_nan_and_infinity_are_not_json(payload: str) -> None:
    value, error = parse_json_payload(payload)
    assert value is None and error.startswith("not JSON")


def test_bytes_payloads_must_be_utf8() -> None:
    assert parse_json_payload(b'{"a": "\xc3\xa9"}') == ({"a": "é"}, None)
    assert parse_json_payload(b'{"a": "\xff"}') == (None, "not JSON: the payload is not UTF-8")
