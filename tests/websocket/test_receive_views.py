"""The receive path reads views of a reused buffer, as the stream layer hands them over.

`WsSocket.data_received` gives the codec a view of the stream's one read buffer, valid only
while the codec is drained: these tests overwrite the buffer the moment the codec may no
longer need it (a data message out, which runs a listener, or the events run dry) and check
that every message still comes out whole, that a large binary message is copied once, that a
read is parsed in place only when most of it is one frame's payload, and that the bounds hold
before anything is allocated.
"""

from __future__ import annotations

import tracemalloc
from typing import List, Sequence

import pytest

from ftcore_websocket.connection import Connection
from ftcore_websocket.events import (
    BinaryMessage,
    ConnectionFailed,
    Event,
    Ping,
    TextMessage,
)
from ftcore_websocket.frames import BINARY, FIN, PING, TEXT
from ftcore_websocket.reader import VIEW_FROM, FrameReader
from tests.plugins.ftcore_websocket.helpers import feed, fragments, open_pair, raw_frame
from tests.support.cuts import cut

MiB = 2**20
AWKWARD = (1, 2, 3, 5, 7, 11, 13, 4096)  # through headers, payloads and UTF-8 sequences


def feed_views(conn: Connection, data: bytes, sizes: Sequence[int]) -> List[Event]:
    """Feed `data` cut into `sizes` through one reused buffer, scribbled over whenever the
    codec may no longer read it."""
    buf = bytearray(max(sizes))
    view = memoryview(buf)
    scribble = b"\xaa" * len(buf)
    events: List[Event] = []
    for piece in cut(memoryview(data), sizes):  # type: ignore[arg-type]  (views: no copies)
        view[: len(piece)] = piece  # (a bytearray's slice assignment would copy `piece` first)
        conn.receive_data(view[: len(piece)])
        while True:
            event = conn.next_event()
            if event is None or isinstance(event, (TextMessage, BinaryMessage)):
                view[:] = scribble  # a nested loop pass or the next read
            if event is None:
                break
            events.append(event)
    return events


def _mixed_stream(masked: bool) -> bytes:
    """Whole, fragmented, empty and multi-byte messages, with pings between fragments."""
    ping = raw_frame(FIN | PING, b"between", masked)
    text = "añ€😀 " * 50
    split = fragments(TEXT, text.encode("utf-8"), [1, 2, 0, 3, 100], masked)  # cuts through chars
    parts = [
        raw_frame(FIN | BINARY, b"one", masked),
        raw_frame(FIN | TEXT, "whole ü".encode("utf-8"), masked),
        split[0],
        ping,
        *split[1:3],
        ping,
        *split[3:],
        raw_frame(FIN | BINARY, b"", masked),
        *fragments(BINARY, bytes(range(256)) * 300, [1000, 0, 30000], masked),
        *fragments(BINARY, b"", [0], masked),
    ]
    return b"".join(parts)


def _expected() -> List[Event]:
    text = "añ€😀 " * 50
    return [
        BinaryMessage(b"one"),
        TextMessage("whole ü"),
        Ping(b"between"),
        Ping(b"between"),
        TextMessage(text),
        BinaryMessage(b""),
        BinaryMessage(bytes(range(256)) * 300),
        BinaryMessage(b""),
    ]


@pytest.mark.parametrize("sizes", [AWKWARD, (1,), (65536,), (4093, 65537)])
@pytest.mark.parametrize("side", ["client", "server"])
def test_messages_come_out_whole_from_a_reused_buffer(side: str, sizes: Sequence[int]) -> None:
    client, server = open_pair()
    receiver, masked = (client, False) if side == "client" else (server, True)
    events = feed_views(receiver, _mixed_stream(masked), sizes)
    assert events == _expected()
    for event in events:
        if isinstance(event, (TextMessage, BinaryMessage)):
            assert type(event.data) is (str if isinstance(event, TextMessage) else bytes)


@pytest.mark.parametrize("sizes", [AWKWARD, (65536,)])
def test_compressed_messages_from_a_reused_buffer(sizes: Sequence[int]) -> None:
    client, server = open_pair(deflate=True)
    text = "compress me, ü € 😀 " * 500
    data = bytes(range(256)) * 100
    stream = server.send_text(text) + server.send_binary(data) + server.send_text(text)
    expected = [TextMessage(text), BinaryMessage(data), TextMessage(text)]
    assert feed_views(client, stream, sizes) == expected


@pytest.mark.parametrize("read", [64 * 1024, 256 * 1024, 65537])
def test_a_large_binary_message_is_copied_once(read: int) -> None:
    client, server = open_pair()
    payload = bytes(range(256)) * (MiB // 256)
    frame = server.send_binary(payload)
    warm = b"".join(fragments(BINARY, b"warm", [2]))  # first-use allocations, not counted
    assert feed_views(client, warm, [3]) == [BinaryMessage(b"warm")]
    tracemalloc.start()
    try:
        events = feed_views(client, frame, [read])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    [message] = events
    assert type(message.data) is bytes and message.data == payload
    # The message, the read buffer and its scribble; a copy per read plus a join took 2 MiB.
    assert peak < MiB + 2 * read + 64 * 1024


def test_a_declared_length_over_the_bound_fails_before_anything_is_allocated() -> None:
    client, _ = open_pair(max_message_bytes=MiB)
    header = raw_frame(FIN | BINARY, length=MiB + 1)
    tracemalloc.start()
    try:
        events = feed_views(client, header, [len(header)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [type(e) for e in events] == [ConnectionFailed] and events[0].code == 1009
    assert peak < 64 * 1024


@pytest.mark.parametrize("sizes", [(1,), (2,), (3,), (5,), AWKWARD])
def test_invalid_utf8_fails_at_its_piece(sizes: Sequence[int]) -> None:
    """Fail fast: nothing after the bad byte is needed to see it."""
    client, _ = open_pair()
    good = "añ€😀".encode("utf-8")
    frame = raw_frame(TEXT, good + b"\xe2\x28\xa1" + b"more")  # not FIN: no end to wait for
    bad_at = frame.index(b"\xe2\x28") + 2
    events = feed_views(client, frame[:bad_at], sizes)
    assert [type(e) for e in events] == [ConnectionFailed] and events[0].code == 1007


@pytest.mark.parametrize("sizes", [(1,), (2,), AWKWARD])
def test_text_ending_inside_a_sequence_fails_with_1007(sizes: Sequence[int]) -> None:
    client, _ = open_pair()
    events = feed_views(client, raw_frame(FIN | TEXT, "añ€".encode("utf-8")[:-1]), sizes)
    assert [type(e) for e in events] == [ConnectionFailed]
    assert events[0].code == 1007 and "ends inside" in events[0].reason


def test_bytes_and_views_give_the_same_events() -> None:
    """The sans-IO callers that feed bytes (the echo server, the tests) see no change."""
    client, _ = open_pair()
    other, _ = open_pair()
    stream = _mixed_stream(False)
    assert feed(client, stream, "chunks") == feed_views(other, stream, AWKWARD)


def _large_stream(masked: bool) -> bytes:
    """A large text message, a large fragmented binary one with a ping between its fragments,
    then a small frame sharing a read with the end of the large one."""
    text = "añ€😀 " * 20000  # 1-4 byte characters: reads cut through them
    split = fragments(BINARY, bytes(range(256)) * 1000, [100000], masked)
    return b"".join(
        [
            raw_frame(FIN | TEXT, text.encode("utf-8"), masked),
            split[0],
            raw_frame(FIN | PING, b"between", masked),
            split[1],
            raw_frame(FIN | BINARY, b"after", masked),
        ]
    )


@pytest.mark.parametrize("read", [VIEW_FROM, VIEW_FROM + 1, 65537])
@pytest.mark.parametrize("side", ["client", "server"])
def test_reads_mostly_of_one_payload_are_parsed_in_place(
    side: str, read: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_place: List[bool] = []
    decide = FrameReader._mostly_payload

    def spy(self: FrameReader, data: memoryview) -> bool:
        in_place.append(decide(self, data))
        return in_place[-1]

    monkeypatch.setattr(FrameReader, "_mostly_payload", spy)
    client, server = open_pair()
    receiver, masked = (client, False) if side == "client" else (server, True)
    events = feed_views(receiver, _large_stream(masked), [read])
    assert events == [
        TextMessage("añ€😀 " * 20000),
        Ping(b"between"),
        BinaryMessage(bytes(range(256)) * 1000),
        BinaryMessage(b"after"),
    ]
    assert any(in_place) and not all(in_place)  # the reads of a frame's start: copied


def test_a_read_of_many_small_frames_is_copied_at_once() -> None:
    """One copy of the read costs less than a view per frame: the codec no longer needs the
    buffer once `receive_data` returns."""
    client, server = open_pair()
    frames = b"".join(server.send_text("message %d" % n) for n in range(5000))
    buf = bytearray(frames[: 4 * VIEW_FROM])
    client.receive_data(memoryview(buf))
    buf[:] = b"\xaa" * len(buf)
    texts = [e.data for e in iter(client.next_event, None) if isinstance(e, TextMessage)]
    assert texts and texts == ["message %d" % n for n in range(len(texts))]
