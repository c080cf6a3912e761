"""Property: whatever the messages, their fragmentation, compression and the cuts in the
byte stream, the receiver yields exactly the messages that were sent."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ftcore_websocket.deflate import DeflateParams, Deflater
from ftcore_websocket.events import BinaryMessage, Ping, TextMessage
from ftcore_websocket.frames import BINARY, FIN, PING, TEXT

from .helpers import fragments, open_pair, raw_frame

message = st.one_of(
    st.text(max_size=300).map(TextMessage),
    st.binary(max_size=3000).map(BinaryMessage),
)
sent = st.lists(
    st.tuples(
        message,
        st.lists(st.integers(0, 400), max_size=6),  # fragment sizes
        st.booleans(),  # compress (when deflate was negotiated)
        st.booleans(),  # a ping before the last fragment
    ),
    max_size=8,
)


def _cut(stream: bytes, sizes):
    pos, i = 0, 0
    while pos < len(stream):
        yield stream[pos : pos + sizes[i % len(sizes)]]
        pos += sizes[i % len(sizes)]
        i += 1


@settings(max_examples=150, deadline=None, database=None)
@given(
    messages=sent,
    deflate=st.booleans(),
    to_server=st.booleans(),
    cuts=st.lists(st.integers(1, 700), min_size=1, max_size=10),
)
def test_crafted_frames_round_trip(messages, deflate, to_server, cuts) -> None:
    client, server = open_pair(deflate=deflate)
    receiver = server if to_server else client
    compressor = Deflater(DeflateParams())  # mirrors the receiver's inflater context
    stream, expected = [], []
    for event, sizes, compress, ping in messages:
        is_text = isinstance(event, TextMessage)
        payload = event.data.encode("utf-8") if is_text else event.data
        compress = compress and deflate
        if compress:
            payload = compressor.compress(payload)
        frames = fragments(TEXT if is_text else BINARY, payload, sizes, to_server, compress)
        if ping:
            frames.insert(len(frames) - 1, raw_frame(FIN | PING, b"ping", to_server))
            expected.append(Ping(b"ping"))
        stream.extend(frames)
        expected.append(event)
    received = []
    for piece in _cut(b"".join(stream), cuts):
        receiver.receive_data(piece)
        received.extend(receiver.events())
    assert received == expected


@settings(max_examples=100, deadline=None, database=None)
@given(
    messages=st.lists(message, max_size=10),
    deflate=st.booleans(),
    cuts=st.lists(st.integers(1, 700), min_size=1, max_size=10),
)
def test_connection_sends_round_trip(messages, deflate, cuts) -> None:
    client, server = open_pair(deflate=deflate)
    for sender, receiver in ((client, server), (server, client)):
        stream = b"".join(
            sender.send_text(m.data) if isinstance(m, TextMessage) else sender.send_binary(m.data)
            for m in messages
        )
        received = []
        for piece in _cut(stream, cuts):
            receiver.receive_data(piece)
            received.extend(receiver.events())
        assert received == messages
