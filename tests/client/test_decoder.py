"""The watch decoder: chunked framing and lines, however the bytes are cut."""

from __future__ import annotations

import json

import pytest

from trikopf.client.watch import WatchDecoder, WatchProtocolError


def event(i: int, size: int = 0) -> bytes:
    body = {"type": "ADDED", "object": {"metadata": {"name": f"o{i}"}, "pad": "x" * size}}
    return json.dumps(body).encode() + b"\n"


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n" % len(payload) + payload + b"\r\n"


def names(events: list[dict[str, object]]) -> list[str]:
    return [e["object"]["metadata"]["name"] for e in events]  # type: ignore[index]


def test_one_event_per_chunk_in_one_read() -> None:
    decoder = WatchDecoder(chunked=True)
    data = b"".join(chunk(event(i)) for i in range(5)) + b"0\r\n\r\n"
    assert names(decoder.feed(data)) == [f"o{i}" for i in range(5)]
    assert decoder.finished
    assert not decoder.pending


def test_every_cut_point_gives_the_same_events() -> None:
    # Several events per chunk, one event across chunks, and chunk extensions.
    body = event(0) + event(1, 50) + event(2)
    data = (
        chunk(body[:30])
        + b"%x;ext=1\r\n" % len(body[30:100])
        + body[30:100]
        + b"\r\n"
        + chunk(body[100:])
        + chunk(event(3))
        + b"0\r\n\r\n"
    )
    expected = [f"o{i}" for i in range(4)]
    for cut in range(len(data) + 1):
        decoder = WatchDecoder(chunked=True)
        got = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        assert names(got) == expected, cut
        assert decoder.finished


def test_byte_by_byte_feeding() -> None:
    decoder = WatchDecoder(chunked=True)
    data = b"".join(chunk(event(i, 10)) for i in range(3))
    got = []
    for i in range(len(data)):
        got += decoder.feed(data[i : i + 1])
    assert names(got) == ["o0", "o1", "o2"]
    assert not decoder.finished


def test_identity_bodies_are_split_into_lines() -> None:
    decoder = WatchDecoder(chunked=False)
    data = event(0) + b"\n  \n" + event(1)
    assert names(decoder.feed(data[:17]) + decoder.feed(data[17:])) == ["o0", "o1"]


def test_a_cut_off_event_is_reported_as_pending() -> None:
    decoder = WatchDecoder(chunked=True)
    decoder.feed(chunk(event(0))[:40])
    assert decoder.pending


def test_a_line_that_is_not_json_is_a_protocol_error() -> None:
    decoder = WatchDecoder(chunked=True)
    with pytest.raises(WatchProtocolError, match="a line is not JSON"):
        decoder.feed(chunk(b"<html>oops</html>\n"))


def test_bad_chunk_framing_is_a_protocol_error() -> None:
    with pytest.raises(WatchProtocolError, match="bad chunk size"):
        WatchDecoder(chunked=True).feed(b"zz\r\n")
    with pytest.raises(WatchProtocolError, match="does not end with CRLF"):
        WatchDecoder(chunked=True).feed(b"2\r\n{}XX")
    with pytest.raises(WatchProtocolError, match="not a JSON object"):
        WatchDecoder(chunked=True).feed(chunk(b"[1,2]\n"))


def test_lines_are_returned_unparsed_and_parsed_on_demand() -> None:
    decoder = WatchDecoder(chunked=True)
    lines = decoder.feed_lines(chunk(event(0)) + chunk(b"not json\n") + chunk(b"  \n"))
    assert len(lines) == 3  # framing only: nothing was parsed yet
    assert names([decoder.parse(lines[0])]) == ["o0"]  # type: ignore[list-item]
    with pytest.raises(WatchProtocolError, match="a line is not JSON"):
        decoder.parse(lines[1])
    assert decoder.parse(lines[2]) is None  # a blank line is no event
