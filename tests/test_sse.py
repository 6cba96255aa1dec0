"""The SSE parser accepts everything the standard allows and never raises on garbage."""

from __future__ import annotations

import pytest

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
