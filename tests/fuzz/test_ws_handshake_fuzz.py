"""Fuzzing the client side of the WebSocket opening handshake: the server's 101 response
(`http_head`, `handshake.check_response`) and its permessage-deflate answer
(`deflate.accept_response`).

Whatever the server answers, the connection raises nothing (a bad answer is a
`HandshakeRejected` event), reads a valid answer alike at every cut, has ended once the server
closed, and buffers no more of an endless head than its bound; the extension parser raises
nothing but `HandshakeError`.
"""

from __future__ import annotations

import string
from typing import List, Optional, Tuple
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from ftcore_websocket import handshake
from ftcore_websocket.connection import Connection, State
from ftcore_websocket.deflate import DeflateParams, accept_response
from ftcore_websocket.errors import HandshakeError
from ftcore_websocket.events import (
    CloseReceived,
    ConnectionFailed,
    Event,
    HandshakeAccepted,
    HandshakeRejected,
    TextMessage,
)
from ftcore_websocket.frames import FIN, TEXT
from ftcore_websocket.http_head import MAX_HEAD_BYTES

from ..plugins.ftcore_websocket.helpers import raw_frame
from .support import FUZZ, cut, fewer, mutated, peak_memory, piece_sizes, split_every_way

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example: the bytes must not depend on os.urandom
OFFERED = ["chat", "superchat"]

_TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
_VALUE = "".join(map(chr, range(0x20, 0x7F))) + "\t" + "".join(map(chr, range(0x80, 0x100)))
_OWNED = ("upgrade", "connection", "sec-websocket-accept", "sec-websocket-protocol",
          "sec-websocket-extensions")

extra_field = st.tuples(
    st.text(_TCHAR, min_size=1, max_size=10).filter(lambda name: name.lower() not in _OWNED),
    st.text(_VALUE, max_size=20).map(lambda value: value.strip(" \t")),
)


@st.composite
def deflate_answers(draw: st.DrawFn) -> str:
    """A permessage-deflate answer a client that offered it must accept."""
    params = []
    for flag in ("server_no_context_takeover", "client_no_context_takeover"):
        if draw(st.booleans()):
            params.append(flag)
    for name in ("server_max_window_bits", "client_max_window_bits"):
        if draw(st.booleans()):
            value = str(draw(st.integers(8, 15)))
            params.append("%s=%s" % (name, '"%s"' % value if draw(st.booleans()) else value))
    separator = draw(st.sampled_from(["; ", ";", " ;"]))
    return separator.join(["permessage-deflate"] + draw(st.permutations(params)))


@st.composite
def answers(draw: st.DrawFn) -> Tuple[bytes, Optional[str], str, List[Event]]:
    """(the server's 101 and frames after it, the subprotocol chosen, the extensions, the
    events after HandshakeAccepted) for a client that offered OFFERED and deflate."""
    fields = [
        ("Upgrade", draw(st.sampled_from(["websocket", "WebSocket"]))),
        ("Connection", draw(st.sampled_from(["Upgrade", "upgrade", "keep-alive, Upgrade"]))),
        ("Sec-WebSocket-Accept", handshake.accept_value(KEY)),
    ]
    subprotocol = draw(st.none() | st.sampled_from(OFFERED))
    if subprotocol is not None:
        fields.append(("Sec-WebSocket-Protocol", subprotocol))
    extensions = draw(st.none() | deflate_answers())
    if extensions is not None:
        fields.append(("Sec-WebSocket-Extensions", extensions))
    fields = draw(st.permutations(fields + draw(st.lists(extra_field, max_size=3))))
    head = "\r\n".join(["HTTP/1.1 101 Switching Protocols"] + ["%s: %s" % f for f in fields])
    raw = head.encode("latin-1") + b"\r\n\r\n"
    text = draw(st.text(max_size=30))
    after: List[Event] = []
    if draw(st.booleans()):
        raw += raw_frame(FIN | TEXT, text.encode("utf-8"))
        after.append(TextMessage(text))
    return raw, subprotocol, extensions or "", after


def client() -> Connection:
    conn = Connection("client")
    with mock.patch.object(handshake, "new_key", lambda: KEY):
        conn.initiate("h", "/", subprotocols=OFFERED, deflate=True)
    return conn


def receive(pieces: List[bytes], eof: bool = False) -> Tuple[List[Event], Connection]:
    """Feed the pieces to a fresh client, draining events after each, then EOF if asked; any
    exception escapes."""
    conn = client()
    events: List[Event] = []
    for piece in [piece for piece in pieces if piece] + ([b""] if eof else []):  # b"" is EOF
        conn.receive_data(piece)
        events += conn.events()
    return events, conn


@fewer(2)  # each example opens a connection per cut of a 200-byte answer
@given(answer=answers())
def test_a_valid_answer_opens_the_connection_at_every_cut(answer) -> None:
    raw, subprotocol, extensions, after = answer
    events, conn = receive([raw])
    [accepted, *rest] = events
    assert isinstance(accepted, HandshakeAccepted), accepted
    assert (accepted.subprotocol, accepted.extensions, rest) == (subprotocol, extensions, after)
    assert conn.state is State.OPEN
    for pieces in split_every_way(raw):
        assert receive(pieces)[0] == events, pieces


# What a status code can be mangled into: digits, and the latin-1 characters str calls digits.
_CODE = "0123456789\xb2\xb3\xb9\xbc x-+"
status_lines = st.one_of(
    st.just(b"HTTP/1.1 101 Switching Protocols"),
    st.text(_CODE, min_size=1, max_size=4).map(
        lambda code: b"HTTP/1.1 %s OK" % code.encode("latin-1")
    ),
    st.binary(max_size=40),
)


@FUZZ
@given(
    raw=st.one_of(
        mutated(answers().map(lambda answer: answer[0])),
        st.tuples(status_lines, st.binary(max_size=100)).map(b"\r\n".join),
    ),
    sizes=piece_sizes,
)
def test_any_answer_is_an_event_read_alike_at_any_cut_and_ends_at_eof(
    raw: bytes, sizes: List[int]
) -> None:
    events, conn = receive([raw], eof=True)
    assert receive(cut(raw, sizes), eof=True)[0] == events
    assert conn.state is State.CLOSED
    assert isinstance(events[0], (HandshakeAccepted, HandshakeRejected)), events
    final = (HandshakeRejected, ConnectionFailed, CloseReceived)
    ends = [event for event in events if isinstance(event, final)]
    assert ends == events[-1:], events  # one end, the last event


@FUZZ
@given(header=st.one_of(st.text(max_size=80), mutated(deflate_answers().map(str.encode)).map(
    lambda raw: raw.decode("latin-1"))))
def test_the_extension_answer_parser_raises_only_handshake_errors(header: str) -> None:
    try:
        params = accept_response(header)
    except HandshakeError:
        return
    assert isinstance(params, DeflateParams)
    assert 8 <= params.our_max_window_bits <= 15 and 8 <= params.their_max_window_bits <= 15


@fewer(6)
@given(piece=st.integers(256, 16 * 1024), endless=st.sampled_from([b"X: " + b"a" * 97,
                                                                    b"X: a\r\n" * 16]))
def test_an_endless_head_is_rejected_at_its_bound(piece: int, endless: bytes) -> None:
    conn = client()
    fed = 0
    pending = b"HTTP/1.1 101 Switching Protocols\r\n"
    events: List[Event] = []
    with peak_memory() as peak:
        while not events and fed <= 4 * MAX_HEAD_BYTES:
            while len(pending) < piece:
                pending += endless
            conn.receive_data(pending[:piece])
            pending = pending[piece:]
            fed += piece
            events = list(conn.events())
    assert [type(event) for event in events] == [HandshakeRejected], events
    assert fed <= MAX_HEAD_BYTES + piece
    assert peak[0] < 2 * MAX_HEAD_BYTES + 4 * piece, peak[0]
