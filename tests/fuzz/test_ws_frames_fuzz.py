"""Fuzzing the WebSocket frame reader (`ftcore_websocket.reader`) and the connection over it.

Random bytes, mutated valid frame streams and every cut of valid ones, in both directions,
with and without permessage-deflate. The reader raises nothing but the codec's
`RemoteProtocolError`, makes progress on every event and reads the same however the bytes are
cut; the connection turns every failure into an event and has always ended once the peer
closed; a frame's length field never makes anything grow past the message bound.
"""

from __future__ import annotations

import struct
from typing import List

from hypothesis import given
from hypothesis import strategies as st

from ftcore_websocket.codes import CloseCode
from ftcore_websocket.connection import State
from ftcore_websocket.events import CloseReceived, ConnectionFailed
from ftcore_websocket.frames import BINARY, CONTINUATION, FIN, MASKED, TEXT

from ..plugins.ftcore_websocket.helpers import feed, open_pair
from .support import FUZZ, cut, fewer, mutated, peak_memory, piece_sizes, split_every_way
from .ws_streams import INFLATE_FAILURES, FrameStream, frame_streams, read


@FUZZ
@given(stream=frame_streams())
def test_valid_streams_give_the_same_events_at_every_cut(stream: FrameStream) -> None:
    whole = read([stream.raw], stream.masked, stream.deflate)
    assert whole.error is None and whole.events == stream.events, whole
    for pieces in split_every_way(stream.raw):
        assert read(pieces, stream.masked, stream.deflate) == whole, pieces


@FUZZ
@given(
    data=st.one_of(st.binary(max_size=300), mutated(frame_streams().map(lambda s: s.raw))),
    masked=st.booleans(),
    deflate=st.booleans(),
    max_message_bytes=st.sampled_from([0, 1, 125, 2**20]),
    sizes=piece_sizes,
)
def test_any_bytes_raise_only_remote_protocol_errors_alike_at_any_cut(
    data: bytes, masked: bool, deflate: bool, max_message_bytes: int, sizes: List[int]
) -> None:
    whole = read([data], masked, deflate, max_message_bytes)
    pieces = read(cut(data, sizes), masked, deflate, max_message_bytes)
    if deflate and whole.error and pieces.error and whole.error[0] != pieces.error[0]:
        assert {whole.error[0], pieces.error[0]} == INFLATE_FAILURES
        assert pieces.events == whole.events
    else:
        assert pieces == whole


@FUZZ
@given(
    data=st.one_of(st.binary(max_size=300), mutated(frame_streams().map(lambda s: s.raw))),
    to_server=st.booleans(),
    deflate=st.booleans(),
    sizes=piece_sizes,
)
def test_the_connection_has_ended_once_the_peer_closed(
    data: bytes, to_server: bool, deflate: bool, sizes: List[int]
) -> None:
    client, server = open_pair(deflate=deflate)
    receiver = server if to_server else client
    events = []
    for piece in cut(data, sizes) + [b""]:  # then EOF
        receiver.receive_data(piece)
        events += receiver.events()  # raises nothing: failures are events
    assert receiver.state is State.CLOSED
    assert isinstance(events[-1], (CloseReceived, ConnectionFailed)), events
    ends = [e for e in events if isinstance(e, (CloseReceived, ConnectionFailed))]
    assert len(ends) == 1, events


# -- memory: lengths a peer does not mean to send --------------------------------------------

LIMIT = 64 * 1024  # the connection's max_message_bytes in these tests


def _header(first_byte: int, length: int, masked: bool) -> bytes:
    mask_bit, key = (MASKED, b"\x01\x02\x03\x04") if masked else (0, b"")
    return struct.pack("!BBQ", first_byte, mask_bit | 127, length) + key


@fewer(3)
@given(
    length=st.integers(0, 2**63 - 1),
    opcode=st.sampled_from([TEXT, BINARY]),
    fin=st.booleans(),
    to_server=st.booleans(),
    piece=st.integers(256, 16 * 1024),
)
def test_a_length_field_never_makes_the_reader_hold_more_than_the_limit(
    length: int, opcode: int, fin: bool, to_server: bool, piece: int
) -> None:
    """Whatever a frame claims, the reader fails at once (1009) when it would pass the limit,
    and otherwise holds at most the limit while the payload streams in; an endless run of
    continuation frames fails once the message passes it."""
    client, server = open_pair(max_message_bytes=LIMIT)
    receiver = server if to_server else client
    first = _header((FIN if fin else 0) | opcode, length, to_server)
    endless = _header(CONTINUATION, 1000, to_server) + b"x" * 1000  # FIN never comes
    with peak_memory() as peak:
        events = feed(receiver, first)
        streamed = 0
        while not events and streamed < 4 * LIMIT:
            if streamed < length:  # the payload the header announced
                data = b"x" * min(piece, length - streamed)
            else:  # then continuation frames, if the message is not finished
                data = endless
            events = feed(receiver, data)
            streamed += len(data)
    assert peak[0] < 4 * LIMIT + 4 * piece, peak[0]
    if length > LIMIT:
        assert events == [ConnectionFailed(CloseCode.MESSAGE_TOO_BIG, events[0].reason)]
        assert streamed == 0  # refused from the header, before any payload
    elif events and isinstance(events[-1], ConnectionFailed):
        assert events[-1].code in (CloseCode.MESSAGE_TOO_BIG, CloseCode.INVALID_FRAME_PAYLOAD_DATA)
