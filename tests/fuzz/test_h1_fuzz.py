"""Fuzzing the HTTP/1.1 response parser (`ftcore_urllib3.h1`).

Random bytes, mutated valid responses and every cut of valid ones. Whatever arrives, the parser
raises nothing but `H1ProtocolError`, makes progress on every event, has decided (End or an
error) once the peer closed, sees the same thing however the bytes are cut, and holds no more
than its bounds however long a hostile server keeps sending.
"""

from __future__ import annotations

from typing import List

from hypothesis import given
from hypothesis import strategies as st

from ftcore_urllib3.h1 import MAX_HEAD_BYTES, MAX_LINE_BYTES, H1ProtocolError, ResponseParser

from .h1_responses import Outcome, Response, parse, responses
from .support import FUZZ, cut, fewer, mutated, peak_memory, piece_sizes, pull, split_every_way

methods = st.sampled_from(["GET", "HEAD"])
HEAD = b"HTTP/1.1 200 OK\r\n"
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"


def assert_decided(outcome: Outcome) -> None:
    """After EOF nothing more can come: the response ended or failed, never "need more"."""
    assert outcome.ended or outcome.error is not None, outcome


@FUZZ
@given(response=responses())
def test_valid_responses_give_the_same_events_at_every_cut(response: Response) -> None:
    whole = parse([response.raw], response.method, response.needs_eof)
    assert whole.error is None and whole.ended, whole
    assert whole.head is not None
    assert (whole.head.status, whole.head.reason, whole.head.headers, whole.body) == (
        response.status,
        response.reason,
        response.headers,
        response.body,
    )
    for pieces in split_every_way(response.raw):
        assert parse(pieces, response.method, response.needs_eof) == whole, pieces
    bytewise = [response.raw[i : i + 1] for i in range(len(response.raw))]
    assert parse(bytewise, response.method, response.needs_eof) == whole


any_bytes = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda tail: HEAD + tail),
    st.binary(max_size=300).map(lambda tail: CHUNKED + tail),
    mutated(responses().map(lambda response: response.raw)),
)


@FUZZ
@given(data=any_bytes, sizes=piece_sizes, method=methods)
def test_any_bytes_raise_only_h1_protocol_error_alike_at_any_cut(
    data: bytes, sizes: List[int], method: str
) -> None:
    for eof in (False, True):
        whole = parse([data], method, eof)
        assert parse(cut(data, sizes), method, eof) == whole
    assert_decided(whole)


# -- memory: a server that never stops ------------------------------------------------------

STREAMED = 2 * MAX_HEAD_BYTES  # past every bound, and more than the parser may hold
ENDLESS = {
    # shape: (the start, the unit repeated after it, the bound it must fail at or None)
    "header line": (HEAD + b"X: ", b"a" * 97, MAX_LINE_BYTES),
    "status line": (b"HTTP/1.1 200 ", b"O" * 97, MAX_LINE_BYTES),
    "header fields": (HEAD, b"X-Filler: " + b"a" * 88 + b"\r\n", MAX_HEAD_BYTES),
    "chunk-size line": (CHUNKED + b"5;", b"e" * 97, MAX_LINE_BYTES),
    "trailers": (CHUNKED + b"0\r\n", b"T: " + b"a" * 95 + b"\r\n", MAX_HEAD_BYTES),
    "interim heads": (b"", b"HTTP/1.1 103 Early Hints\r\nX: " + b"s" * 99 + b"\r\n\r\n", None),
    "content-length body": (HEAD + b"Content-Length: " + b"9" * 19 + b"\r\n\r\n", b"b" * 100, None),
    "chunk": (CHUNKED + b"f" * 16 + b"\r\n", b"c" * 100, None),
}


@fewer(6)
@given(shape=st.sampled_from(sorted(ENDLESS)), piece=st.integers(512, 64 * 1024))
def test_an_endless_response_fails_at_its_bound_or_streams_in_bounded_memory(
    shape: str, piece: int
) -> None:
    """Endless heads fail once their bound was fed; endless bodies and interim heads stream
    on without the parser keeping any of it (body events are views of what was fed)."""
    pending, unit, bound = ENDLESS[shape]
    parser = ResponseParser("GET")
    fed = 0
    with peak_memory() as peak:
        try:
            while fed < STREAMED:
                while len(pending) < piece:
                    pending += unit
                chunk, pending = pending[:piece], pending[piece:]
                parser.feed(chunk)
                fed += len(chunk)
                pull(parser.next_event, [], fed + 1)
        except H1ProtocolError as error:
            assert bound is not None, error
            assert error.reason == "response header too large"
            assert fed <= bound + piece + 100, fed  # failed at the bound, not long after
        else:
            assert bound is None, "%d bytes fed and no failure" % fed
    # What may be held: a head of the bound, copied while parsed (where one is that long),
    # and the pieces in flight here; never what streamed past.
    assert peak[0] < (2 * MAX_HEAD_BYTES if bound else 0) + 4 * piece + 16 * 1024, peak[0]
