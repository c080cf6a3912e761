"""The HTTP/1.1 client codec: request heads, response events, framing, bounds and errors.

Responses are fed the way the transport feeds them: memoryviews of one receive buffer that is
overwritten after `next_event()` returns None, whole, cut at every point, or byte by byte.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftcore.errors import Errno
from ftcore_urllib3.h1 import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    MAX_LINE_BYTES,
    Data,
    End,
    Event,
    H1ProtocolError,
    Head,
    ResponseParser,
    request_head,
)
from tests.support.cuts import cut as cut_at

NGINX_BODY = b"<!DOCTYPE html>\n<title>Welcome to nginx!</title>\n" * 12
NGINX = (
    b"HTTP/1.1 200 OK\r\n"
    b"Server: nginx/1.18.0 (Ubuntu)\r\n"
    b"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    b"Content-Type: text/html\r\n"
    b"Content-Length: %d\r\n"
    b"Last-Modified: Tue, 21 Apr 2020 14:09:01 GMT\r\n"
    b"Connection: keep-alive\r\n"
    b'ETag: "5e9efe7d-264"\r\n'
    b"Accept-Ranges: bytes\r\n"
    b"\r\n" % len(NGINX_BODY)
) + NGINX_BODY
NGINX_HEAD = Head(
    200,
    "OK",
    [
        ("Server", "nginx/1.18.0 (Ubuntu)"),
        ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ("Content-Type", "text/html"),
        ("Content-Length", str(len(NGINX_BODY))),
        ("Last-Modified", "Tue, 21 Apr 2020 14:09:01 GMT"),
        ("Connection", "keep-alive"),
        ("ETag", '"5e9efe7d-264"'),
        ("Accept-Ranges", "bytes"),
    ],
    "1.1",
)
CHUNKED = (
    b"HTTP/1.1 200 OK\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
    b"5;name=value\r\nhello\r\n"
    b'1A ; quoted="a;b"\r\n' + b"z" * 26 + b"\r\n"
    b"0\r\n"
    b"Expires: never\r\n"
    b"X-Checksum: 1234\r\n"
    b"\r\n"
)
CHUNKED_BODY = b"hello" + b"z" * 26

Outcome = Tuple[List[Event], ResponseParser]


# -- driving the parser ---------------------------------------------------------------------


def drain(parser: ResponseParser, events: List[Event]) -> None:
    """Pull events until the parser needs bytes; Data is copied (views die with the feed)."""
    while True:
        event = parser.next_event()
        if event is None:
            return
        events.append(Data(bytes(event.data)) if isinstance(event, Data) else event)


def drive(pieces: Sequence[bytes], method: str = "GET", eof: bool = False) -> Outcome:
    """Feed `pieces` as the transport does: views of one reused, then scribbled-over buffer."""
    parser = ResponseParser(method)
    recv = bytearray(max([len(piece) for piece in pieces] + [1]))
    events: List[Event] = []
    for piece in pieces:
        recv[: len(piece)] = piece
        parser.feed(memoryview(recv)[: len(piece)])
        drain(parser, events)
        recv[:] = b"\xff" * len(recv)  # a parser that kept a view now reads garbage
    if eof:
        parser.feed_eof()
        drain(parser, events)
    return events, parser


def merged(events: List[Event]) -> List[Event]:
    """Adjacent Data events joined, so differently cut feeds compare equal."""
    out: List[Event] = []
    for event in events:
        if isinstance(event, Data) and out and isinstance(out[-1], Data):
            out[-1] = Data(bytes(out[-1].data) + bytes(event.data))
        else:
            out.append(event)
    return out


def bytewise(data: bytes) -> List[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def cuts(data: bytes) -> List[List[bytes]]:
    """`data` in two pieces, for every cut point."""
    return [[data[:i], data[i:]] for i in range(len(data) + 1)]


def fail(pieces: Sequence[bytes], method: str = "GET", eof: bool = False) -> H1ProtocolError:
    with pytest.raises(H1ProtocolError) as info:
        drive(pieces, method, eof)
    return info.value


def response(head: bytes, body: bytes = b"") -> bytes:
    return head + b"\r\n\r\n" + body


# -- the common case ------------------------------------------------------------------------


def test_typical_response_in_one_feed() -> None:
    events, parser = drive([NGINX])
    assert events == [NGINX_HEAD, Data(NGINX_BODY), End()]
    assert parser.keep_alive


def test_every_cut_and_byte_by_byte_give_the_same_events() -> None:
    expected = [NGINX_HEAD, Data(NGINX_BODY), End()]
    for pieces in cuts(NGINX) + [bytewise(NGINX)]:
        events, parser = drive(pieces)
        assert merged(events) == expected, pieces[0]
        assert parser.keep_alive


def test_content_length_body_is_a_view_of_the_fed_buffer() -> None:
    recv = bytearray(NGINX)
    parser = ResponseParser("GET")
    parser.feed(memoryview(recv))
    assert parser.next_event() == NGINX_HEAD
    event = parser.next_event()
    assert isinstance(event, Data) and isinstance(event.data, memoryview)
    assert event.data.obj is recv
    recv[-1:] = b"!"
    assert bytes(event.data[-1:]) == b"!"


def test_fed_bytes_are_handed_out_without_a_copy() -> None:
    parser = ResponseParser("GET")
    parser.feed(NGINX[: -len(NGINX_BODY)])
    assert parser.next_event() == NGINX_HEAD
    assert parser.next_event() is None
    parser.feed(NGINX_BODY)
    event = parser.next_event()
    assert isinstance(event, Data) and event.data is NGINX_BODY


def test_after_end_next_event_keeps_returning_none() -> None:
    events, parser = drive([NGINX])
    assert events[-1] == End()
    assert parser.next_event() is None
    assert parser.next_event() is None
    assert parser.keep_alive


def test_keep_alive_is_false_before_end() -> None:
    parser = ResponseParser("GET")
    parser.feed(NGINX[:-1])
    assert parser.next_event() == NGINX_HEAD
    assert not parser.keep_alive


def test_feeding_twice_without_draining_keeps_both() -> None:
    parser = ResponseParser("GET")
    parser.feed(NGINX[:100])
    parser.feed(NGINX[100:])
    events: List[Event] = []
    drain(parser, events)
    assert merged(events) == [NGINX_HEAD, Data(NGINX_BODY), End()]


def test_head_fields() -> None:
    raw = response(b"HTTP/1.1 404 Not  Found \r\nX-Spaced: \t a b \t\r\nX-Latin: caf\xe9", b"")
    events, _ = drive([raw + b""], method="HEAD")
    assert events == [
        Head(404, "Not  Found", [("X-Spaced", "a b"), ("X-Latin", "caf\xe9")], "1.1"),
        End(),
    ]


def test_status_line_without_reason() -> None:
    events, _ = drive([response(b"HTTP/1.1 204")])
    assert events == [Head(204, "", [], "1.1"), End()]


def test_header_value_may_be_empty_and_contain_colons() -> None:
    events, _ = drive(
        [response(b"HTTP/1.1 200 OK\r\nX-Empty:\r\nLocation: http://h:1/\r\nContent-Length: 0")]
    )
    assert events[0] == Head(
        200, "OK", [("X-Empty", ""), ("Location", "http://h:1/"), ("Content-Length", "0")], "1.1"
    )
    assert events[1:] == [End()]


# -- framing --------------------------------------------------------------------------------


def test_chunked_with_extensions_and_trailers_at_every_cut() -> None:
    head = Head(200, "OK", [("Transfer-Encoding", "chunked")], "1.1")
    for pieces in cuts(CHUNKED) + [bytewise(CHUNKED)]:
        events, parser = drive(pieces)
        assert merged(events) == [head, Data(CHUNKED_BODY), End()], pieces[0]
        assert parser.keep_alive


def test_chunk_data_is_a_view_of_the_fed_buffer() -> None:
    recv = bytearray(CHUNKED)
    parser = ResponseParser("GET")
    parser.feed(memoryview(recv))
    parser.next_event()
    event = parser.next_event()
    assert isinstance(event, Data) and isinstance(event.data, memoryview)
    assert event.data.obj is recv and bytes(event.data) == b"hello"


def test_chunked_without_trailers_and_uppercase_coding() -> None:
    raw = response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, CHUNKED", b"3\r\nabc\r\n0\r\n\r\n")
    events, parser = drive([raw])
    assert merged(events)[1:] == [Data(b"abc"), End()]
    assert parser.keep_alive


def test_transfer_encoding_not_ending_in_chunked_reads_until_eof() -> None:
    raw = response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip", b"3\r\nabc")
    events, parser = drive([raw, b"more"], eof=True)
    assert merged(events)[1:] == [Data(b"3\r\nabcmore"), End()]
    assert not parser.keep_alive


def test_transfer_encoding_wins_over_content_length_and_forbids_reuse() -> None:
    raw = response(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked",
        b"2\r\nok\r\n0\r\n\r\n",
    )
    events, parser = drive([raw])
    assert merged(events)[1:] == [Data(b"ok"), End()]
    assert not parser.keep_alive


def test_body_until_eof() -> None:
    raw = response(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain", b"first ")
    for pieces in cuts(raw):
        events, parser = drive(pieces + [b"second"], eof=True)
        assert merged(events)[1:] == [Data(b"first second"), End()]
        assert not parser.keep_alive


def test_body_until_eof_waits_for_eof() -> None:
    events, _ = drive([response(b"HTTP/1.1 200 OK", b"abc")])
    assert merged(events)[1:] == [Data(b"abc")]


def test_head_request_has_no_body_whatever_the_headers_say() -> None:
    raw = response(b"HTTP/1.1 200 OK\r\nContent-Length: 1234")
    events, parser = drive([raw], method="HEAD")
    assert events == [Head(200, "OK", [("Content-Length", "1234")], "1.1"), End()]
    assert parser.keep_alive


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_ignore_content_length(status: int) -> None:
    raw = response(b"HTTP/1.1 %d X\r\nContent-Length: 10" % status)
    events, parser = drive([raw])
    assert [type(event) for event in events] == [Head, End]
    assert events[0].status == status  # type: ignore[union-attr]
    assert parser.keep_alive


def test_content_length_zero() -> None:
    events, parser = drive([response(b"HTTP/1.1 200 OK\r\nContent-Length: 0")])
    assert [type(event) for event in events] == [Head, End]
    assert parser.keep_alive


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: 3\r\nContent-Length: 3",
        b"Content-Length: 3, 3",
        b"Content-Length: 3,3\r\ncontent-length: 003",
    ],
)
def test_equal_content_lengths_are_accepted(fields: bytes) -> None:
    events, parser = drive([response(b"HTTP/1.1 200 OK\r\n" + fields, b"abc")])
    assert merged(events)[1:] == [Data(b"abc"), End()]
    assert parser.keep_alive


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: 3\r\nContent-Length: 4",
        b"Content-Length: 3, 4",
        b"Content-Length: abc",
        b"Content-Length: -1",
        b"Content-Length: +3",
        b"Content-Length: 0x3",
        b"Content-Length: 1_0",
        b"Content-Length: ",
        b"Content-Length: 3,",
        b"Content-Length: \xb2",
        b"Content-Length: 3 3",
        b"Content-Length: " + b"9" * 30,
    ],
)
def test_bad_content_length(fields: bytes) -> None:
    error = fail([response(b"HTTP/1.1 200 OK\r\n" + fields, b"abc")])
    assert (error.errno_hint, error.reason) == (
        Errno.BAD_RESPONSE,
        "bad response: invalid Content-Length",
    )


def test_interim_responses_are_skipped() -> None:
    raw = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 102 Processing\r\n\r\n"
        + response(b"HTTP/1.1 200 OK\r\nContent-Length: 2", b"ok")
    )
    expected = [Head(200, "OK", [("Content-Length", "2")], "1.1"), Data(b"ok"), End()]
    for pieces in cuts(raw):
        events, parser = drive(pieces)
        assert merged(events) == expected
        assert parser.keep_alive


def test_switching_protocols_ends_the_exchange() -> None:
    raw = response(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade")
    events, parser = drive([raw + b"\x81\x00"])
    assert events == [
        Head(
            101, "Switching Protocols", [("Upgrade", "websocket"), ("Connection", "Upgrade")], "1.1"
        ),
        End(),
    ]
    assert not parser.keep_alive


@pytest.mark.parametrize(
    "head, keep_alive",
    [
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2", False),
        (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2", True),
        (b"HTTP/1.0 200 OK\r\nConnection: foo, keep-alive\r\nContent-Length: 2", True),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive-not\r\nContent-Length: 2", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2", False),
        (b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 2", False),
        (b"HTTP/1.1 200 OK\r\nConnection: x\r\nConnection: close\r\nContent-Length: 2", False),
        (b"HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 2", True),
    ],
)
def test_keep_alive_by_version_and_connection(head: bytes, keep_alive: bool) -> None:
    events, parser = drive([response(head, b"ok")])
    assert merged(events)[1:] == [Data(b"ok"), End()]
    assert parser.keep_alive is keep_alive


def test_http_1_0_version_string() -> None:
    events, _ = drive([response(b"HTTP/1.0 200 OK")], eof=True)
    assert events == [Head(200, "OK", [], "1.0"), End()]


def test_bytes_after_the_response_forbid_reuse() -> None:
    _, parser = drive([NGINX + b"HTTP/1.1 200 OK\r\n"])
    assert not parser.keep_alive


def test_bytes_fed_after_end_forbid_reuse() -> None:
    events, parser = drive([NGINX])
    assert parser.keep_alive
    parser.feed(b"x")
    assert not parser.keep_alive
    assert parser.next_event() is None
    assert not parser.keep_alive


def test_eof_after_end_forbids_reuse() -> None:
    _, parser = drive([NGINX], eof=True)
    assert not parser.keep_alive


def test_obsolete_line_folding_joins_with_one_space() -> None:
    raw = response(b"HTTP/1.1 200 OK\r\nX-Folded: one \r\n   two\r\n\tthree\r\nContent-Length: 0")
    events, _ = drive([raw])
    assert events[0] == Head(
        200, "OK", [("X-Folded", "one two three"), ("Content-Length", "0")], "1.1"
    )


def test_folded_framing_header_is_honoured() -> None:
    raw = response(b"HTTP/1.1 200 OK\r\nConnection: keep-alive,\r\n close\r\nContent-Length: 0")
    _, parser = drive([raw])
    assert not parser.keep_alive


# -- bounds ---------------------------------------------------------------------------------


def head_of_size(size: int) -> bytes:
    """A complete head (blank line included) of exactly `size` bytes, in few long fields."""
    start, end = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", b"\r\n"
    room = size - len(start) - len(end)
    fields = []
    while room > 0:
        line_size = min(room, 30000)
        if room - line_size < 10 and room > 10:  # keep the last field a valid line
            line_size = room - 10
        fields.append(b"X-F: " + b"a" * (line_size - 7) + b"\r\n")
        room -= line_size
    head = start + b"".join(fields) + end
    assert len(head) == size
    return head


def assert_too_large(error: H1ProtocolError) -> None:
    assert (error.errno_hint, error.reason) == (
        Errno.RESPONSE_TOO_LARGE,
        "response header too large",
    )


def test_head_of_exactly_the_bound_is_accepted() -> None:
    head = head_of_size(MAX_HEAD_BYTES)
    for pieces in (
        [head],
        [head[:-1], head[-1:]],
        [head[:-3], head[-3:]],
        [head[:1000], head[1000:]],
    ):
        events, _ = drive(pieces)
        assert [type(event) for event in events] == [Head, End]


def test_head_over_the_bound_fails() -> None:
    head = head_of_size(MAX_HEAD_BYTES + 1)
    for cut in (1, 2, 3, 4, 1000, len(head) - 1000):
        assert_too_large(fail([head[:-cut], head[-cut:]]))
    assert_too_large(fail([head]))


def test_endless_header_fails_once_the_bound_was_fed() -> None:
    parser = ResponseParser("GET")
    parser.feed(b"HTTP/1.1 200 OK\r\n")
    assert parser.next_event() is None
    line = b"X-Filler: " + b"a" * 90 + b"\r\n"
    fed = 17
    while fed <= MAX_HEAD_BYTES:
        parser.feed(line)
        fed += len(line)
        if fed < MAX_HEAD_BYTES:
            assert parser.next_event() is None
    with pytest.raises(H1ProtocolError) as info:
        parser.next_event()
    assert_too_large(info.value)


def test_a_70000_byte_header_line_fails() -> None:
    raw = response(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000)
    assert_too_large(fail([raw]))
    assert_too_large(fail([raw[:30000], raw[30000:]]))


def test_a_long_status_line_fails() -> None:
    assert_too_large(fail([response(b"HTTP/1.1 200 " + b"O" * 70000)]))


def test_an_endless_header_line_fails_once_the_line_bound_was_fed() -> None:
    parser = ResponseParser("GET")
    parser.feed(b"HTTP/1.1 200 OK\r\nX-Big: ")
    assert parser.next_event() is None
    line_size = 7
    while line_size <= MAX_LINE_BYTES + 1:
        parser.feed(b"a" * 1000)
        line_size += 1000
        if line_size <= MAX_LINE_BYTES:
            assert parser.next_event() is None
    with pytest.raises(H1ProtocolError) as info:
        parser.next_event()
    assert_too_large(info.value)


def test_a_line_of_exactly_the_line_bound_is_accepted() -> None:
    field = b"X: " + b"a" * (MAX_LINE_BYTES - 3)
    raw = response(b"HTTP/1.1 200 OK\r\n" + field + b"\r\nContent-Length: 0")
    events, _ = drive([raw[:5000], raw[5000:]])
    assert events[0].headers[0] == ("X", "a" * (MAX_LINE_BYTES - 3))  # type: ignore[union-attr]


def test_header_count_bound() -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS - 1))
    events, _ = drive([response(b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 0")])
    assert len(events[0].headers) == MAX_HEADERS  # type: ignore[union-attr]
    assert_too_large(fail([response(b"HTTP/1.1 200 OK\r\n" + fields + b"A: 1\r\nB: 2")]))


def test_interim_heads_are_bounded_too() -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS + 1))
    assert_too_large(fail([response(b"HTTP/1.1 103 Early Hints\r\n" + fields.rstrip())]))
    big = b"HTTP/1.1 100 Continue\r\nX: " + b"a" * 70000
    assert_too_large(fail([response(big)]))


def test_chunk_size_line_bound() -> None:
    raw = response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", b"5;" + b"e" * 70000 + b"\r\n")
    assert_too_large(fail([raw]))
    assert_too_large(fail([raw[:100], raw[100:40000], raw[40000:]]))


def test_trailer_line_bound() -> None:
    raw = response(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked",
        b"0\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
    )
    assert_too_large(fail([raw]))


def test_trailer_total_bound() -> None:
    trailers = (b"X: " + b"a" * 60000 + b"\r\n") * 5
    raw = response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", b"0\r\n" + trailers + b"\r\n")
    assert_too_large(fail([raw]))


# -- errors ---------------------------------------------------------------------------------


def assert_malformed(error: H1ProtocolError) -> None:
    assert (error.errno_hint, error.reason) == (
        Errno.BAD_RESPONSE,
        "bad response: malformed status line or headers",
    )


@pytest.mark.parametrize(
    "status_line",
    [
        b"",
        b"HTTP/1.1",
        b"HTTP/1.1 ",
        b"HTTP/1.1 20",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 abc OK",
        b"HTTP/1.1 2\xb23 OK",
        b"HTTP/1.1  200 OK",
        b"HTTP/1.1 200OK",
        b"HTTP/2 200 OK",
        b"HTTP/1.x 200 OK",
        b"http/1.1 200 OK",
        b"ICY 200 OK",
        b" HTTP/1.1 200 OK",
    ],
)
def test_malformed_status_line(status_line: bytes) -> None:
    assert_malformed(fail([response(status_line + b"\r\nContent-Length: 0")]))


@pytest.mark.parametrize("status", [b"000", b"099"])
def test_a_status_below_100_is_malformed_not_interim(status: bytes) -> None:
    # Found by tests/fuzz against h11: these were skipped as 1xx heads.
    final = response(b"HTTP/1.1 200 OK\r\nContent-Length: 0")
    assert_malformed(fail([response(b"HTTP/1.1 " + status + b" X") + final]))


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nX: a\nTransfer-Encoding: chunked",  # read as two fields by some
        b"HTTP/1.1 200 OK\r\nX: a\rY: b",
        b"HTTP/1.1 200 OK\r\nX: a\x00b",
        b"HTTP/1.1 200 O\nK",
        b"HTTP/1.1 200 OK\r\nX: a\r",
        b"HTTP/1.1 100 Continue\nX: 1\r\n\r\nHTTP/1.1 200 OK",
    ],
)
def test_a_bare_cr_or_lf_or_a_nul_in_a_head_is_malformed(head: bytes) -> None:
    # Found by tests/fuzz against h11 (RFC 9110 §5.5): a value held "\nTransfer-Encoding: ..."
    raw = response(head + b"\r\nContent-Length: 0")
    for pieces in [[raw], bytewise(raw)]:
        assert_malformed(fail(pieces))


@pytest.mark.parametrize("line", [b"5;a\nb", b"5;a\rb", b"5;\n"])
def test_a_bare_cr_or_lf_in_a_chunk_size_line_is_invalid(line: bytes) -> None:
    raw = response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", line + b"\r\nhello\r\n")
    error = fail([raw])
    assert (error.errno_hint, error.reason) == (
        Errno.BAD_RESPONSE,
        "bad response: invalid chunked encoding",
    )


def test_a_response_that_is_not_http_fails_before_its_head_ends() -> None:
    parser = ResponseParser("GET")
    parser.feed(b"SSH-2.0-OpenSSH_8.9\r\n")
    with pytest.raises(H1ProtocolError) as info:
        parser.next_event()
    assert_malformed(info.value)


@pytest.mark.parametrize(
    "line",
    [b"No-Colon", b"Space-Before : colon", b"Tab-Before\t: colon", b": empty name", b":"],
)
def test_malformed_header_line(line: bytes) -> None:
    assert_malformed(fail([response(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + line)]))


def test_folding_on_the_first_header_line_is_malformed() -> None:
    assert_malformed(fail([response(b"HTTP/1.1 200 OK\r\n folded: x")]))


@pytest.mark.parametrize(
    "status", [b"101 Switching Protocols", b"100 Continue", b"103 Early Hints"]
)
def test_malformed_headers_of_1xx_responses_fail(status: bytes) -> None:
    raw = response(b"HTTP/1.1 " + status + b"\r\nUpgrade websocket")
    assert_malformed(fail([raw + response(b"HTTP/1.1 200 OK\r\nContent-Length: 0")]))


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\n",
        b"\r\n",
        b";ext\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"1_0\r\n",
        b"-1\r\n",
        b"+5\r\nhello\r\n",
        b"1" * 17 + b"\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"5\r\nhello\rX",
        b"5\r\nhello\n\r0\r\n\r\n",
    ],
)
def test_invalid_chunked_encoding(body: bytes) -> None:
    raw = response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", body)
    for pieces in cuts(raw)[-len(body) - 4 :]:
        error = fail(pieces)
        assert (error.errno_hint, error.reason) == (
            Errno.BAD_RESPONSE,
            "bad response: invalid chunked encoding",
        )


def test_sixteen_hex_digits_are_a_valid_chunk_size() -> None:
    raw = response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", b"0000000000000003\r\nabc")
    events, _ = drive([raw])
    assert merged(events)[1:] == [Data(b"abc")]


def assert_reset(error: H1ProtocolError, reason: str) -> None:
    assert (error.errno_hint, error.reason) == (Errno.CONNECTION_RESET, reason)


def test_eof_before_any_byte() -> None:
    assert_reset(fail([], eof=True), "connection closed without response")
    assert_reset(fail([b""], eof=True), "connection closed without response")


@pytest.mark.parametrize("size", [1, 5, 17, 60])
def test_eof_during_the_head(size: int) -> None:
    assert_reset(fail([NGINX[:size]], eof=True), "connection closed early: incomplete header")


def test_eof_after_an_interim_response() -> None:
    error = fail([b"HTTP/1.1 100 Continue\r\n\r\n"], eof=True)
    assert_reset(error, "connection closed early: incomplete header")


def test_eof_during_a_content_length_body() -> None:
    for size in (len(NGINX) - len(NGINX_BODY), len(NGINX) - 1):
        error = fail([NGINX[:size]], eof=True)
        assert_reset(error, "connection closed early: short body")


def test_eof_anywhere_in_a_chunked_body() -> None:
    body_start = CHUNKED.index(b"\r\n\r\n") + 4
    for size in range(body_start, len(CHUNKED)):
        error = fail([CHUNKED[:size]], eof=True)
        assert_reset(error, "connection closed early: short body")
        parser = ResponseParser("GET")  # EOF known before the last bytes are parsed
        parser.feed(CHUNKED[:size])
        parser.feed_eof()
        with pytest.raises(H1ProtocolError) as info:
            drain(parser, [])
        assert_reset(info.value, "connection closed early: short body")


def test_eof_fed_together_with_the_last_bytes() -> None:
    parser = ResponseParser("GET")
    parser.feed(NGINX)
    parser.feed_eof()
    events: List[Event] = []
    drain(parser, events)
    assert merged(events) == [NGINX_HEAD, Data(NGINX_BODY), End()]
    assert not parser.keep_alive


def test_errors_are_sticky() -> None:
    parser = ResponseParser("GET")
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
    with pytest.raises(H1ProtocolError) as first:
        parser.next_event()
    parser.feed(NGINX)
    with pytest.raises(H1ProtocolError) as second:
        parser.next_event()
    assert second.value is first.value
    assert not parser.keep_alive


def test_feed_and_feed_eof_never_raise() -> None:
    parser = ResponseParser("GET")
    parser.feed(b"garbage\r\n\r\n")
    parser.feed_eof()
    with pytest.raises(H1ProtocolError):
        parser.next_event()


# -- any cut of any response ----------------------------------------------------------------


@settings(max_examples=150, deadline=None, database=None)
@given(
    body=st.binary(max_size=600),
    chunk_sizes=st.lists(st.integers(1, 90), min_size=1, max_size=6),
    chunked=st.booleans(),
    trailers=st.booleans(),
    interim=st.booleans(),
    sizes=st.lists(st.integers(1, 120), min_size=1, max_size=8),
)
def test_any_cut_of_any_response(
    body: bytes,
    chunk_sizes: List[int],
    chunked: bool,
    trailers: bool,
    interim: bool,
    sizes: List[int],
) -> None:
    if chunked:
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
        payload = b"".join(
            b"%x;n=v\r\n%s\r\n" % (len(piece), piece) for piece in cut_at(body, chunk_sizes)
        )
        payload += b"0\r\n" + (b"T: 1\r\n" if trailers else b"") + b"\r\n"
    else:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d" % len(body)
        payload = body
    raw = (b"HTTP/1.1 100 Continue\r\n\r\n" if interim else b"") + response(head, payload)
    events, parser = drive(cut_at(raw, sizes))
    expected: List[Event] = [Data(body)] if body else []
    assert merged(events)[1:] == expected + [End()]
    assert parser.keep_alive


# -- request heads --------------------------------------------------------------------------


def test_request_head_for_a_get_without_body() -> None:
    head = request_head("GET", "/a?b=c", "example.com:8080", [("Accept", "*/*")], None, "ftcore/1")
    assert head == (
        b"GET /a?b=c HTTP/1.1\r\n"
        b"Host: example.com:8080\r\n"
        b"Accept: */*\r\n"
        b"Accept-Encoding: identity\r\n"
        b"User-Agent: ftcore/1\r\n"
        b"\r\n"
    )


def test_request_head_for_a_post_with_a_body() -> None:
    head = request_head("POST", "/", "h", [("Content-Type", "text/plain")], 5, "ua")
    assert head == (
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
        b"Accept-Encoding: identity\r\nUser-Agent: ua\r\nContent-Length: 5\r\n\r\n"
    )


@pytest.mark.parametrize(
    "method, body_length, framing",
    [
        ("GET", None, b""),
        ("GET", 0, b""),
        ("GET", 3, b"Content-Length: 3\r\n"),
        ("DELETE", None, b""),
        ("POST", 0, b"Content-Length: 0\r\n"),
        ("POST", None, b"Content-Length: 0\r\n"),
        ("PUT", 0, b"Content-Length: 0\r\n"),
        ("PATCH", None, b"Content-Length: 0\r\n"),
    ],
)
def test_request_head_framing(method: str, body_length: Optional[int], framing: bytes) -> None:
    head = request_head(method, "/", "h", [], body_length, "ua")
    assert head.endswith(b"User-Agent: ua\r\n" + framing + b"\r\n")


def test_request_head_keeps_the_callers_headers() -> None:
    headers = [
        ("user-agent", "mine"),
        ("HOST", "other.example"),
        ("Accept-Encoding", "gzip"),
        ("content-length", "7"),
    ]
    head = request_head("POST", "/", "h", headers, 7, "ua")
    assert head == (
        b"POST / HTTP/1.1\r\nuser-agent: mine\r\nHOST: other.example\r\n"
        b"Accept-Encoding: gzip\r\ncontent-length: 7\r\n\r\n"
    )


def test_request_head_leaves_framing_to_a_callers_transfer_encoding() -> None:
    head = request_head("POST", "/", "h", [("Transfer-Encoding", "chunked")], 10, "ua")
    assert b"Content-Length" not in head
    assert head.endswith(
        b"Transfer-Encoding: chunked\r\nAccept-Encoding: identity\r\nUser-Agent: ua\r\n\r\n"
    )


def test_request_head_encodes_values_latin_1_then_utf_8() -> None:
    head = request_head(
        "GET", "/", "h", [("X-Latin", "caf\xe9"), ("X-Emoji", "\u20ac\U0001f600")], None, "ua"
    )
    assert b"X-Latin: caf\xe9\r\n" in head
    assert b"X-Emoji: " + "\u20ac\U0001f600".encode("utf-8") + b"\r\n" in head
