"""The closing handshake, both directions, and what the API allows around it."""

from __future__ import annotations

import pytest

from ftcore_websocket.connection import State
from ftcore_websocket.errors import LocalProtocolError, Misuse
from ftcore_websocket.events import BinaryMessage, CloseReceived, ConnectionFailed, TextMessage
from ftcore_websocket.frames import CLOSE, FIN, PING, TEXT

from .helpers import close_code, feed, frames_in, open_pair, raw_frame


@pytest.mark.parametrize("closer", ["client", "server"])
def test_closing_handshake(closer: str) -> None:
    client, server = open_pair()
    first, second = (client, server) if closer == "client" else (server, client)
    assert feed(second, first.close(4001, "done")) == [CloseReceived(4001, "done")]
    assert first.state is State.CLOSING and second.state is State.CLOSED
    echo = second.data_to_send()
    assert close_code(echo) == 4001
    assert feed(first, echo) == [CloseReceived(4001, "")]
    assert first.state is State.CLOSED


def test_close_without_code_is_echoed_without_code() -> None:
    client, server = open_pair()
    assert feed(server, client.close(None)) == [CloseReceived(1005, "")]
    echo = server.data_to_send()
    assert frames_in(echo) == [(FIN | CLOSE, b"")]


def test_messages_still_arrive_while_closing() -> None:
    client, server = open_pair()
    client.close()
    assert feed(client, server.send_binary(b"late")) == [BinaryMessage(b"late")]
    feed(client, raw_frame(FIN | PING, b"x"))
    assert client.data_to_send() == b""  # no pong once our close is out
    with pytest.raises(LocalProtocolError):
        client.send_text("too late")


def test_close_in_the_middle_of_a_fragmented_message_is_answered_normally() -> None:
    client, server = open_pair()
    stream = raw_frame(TEXT, b"part one") + raw_frame(FIN | CLOSE, b"\x03\xe8")
    assert feed(client, stream) == [CloseReceived(1000, "")]
    assert close_code(client.data_to_send()) == 1000


def test_data_after_the_close_is_ignored() -> None:
    client, server = open_pair()
    stream = raw_frame(FIN | CLOSE, b"\x03\xe8") + raw_frame(FIN | TEXT, b"ignored")
    assert feed(client, stream) == [CloseReceived(1000, "")]
    assert feed(client, raw_frame(FIN | TEXT, b"ignored too")) == []
    assert feed(client, b"") == []


@pytest.mark.parametrize("state", ["open", "closing"])
def test_eof_without_close_frame_is_abnormal(state: str) -> None:
    client, server = open_pair()
    if state == "closing":
        client.close()
    client.receive_data(raw_frame(FIN | TEXT, b"last"))
    client.receive_data(b"")
    assert list(client.events()) == [
        TextMessage("last"),
        ConnectionFailed(1006, "connection closed without a close frame"),
    ]
    assert client.data_to_send() == b""
    assert client.state is State.CLOSED


@pytest.mark.parametrize(
    "code, reason",
    [
        (999, ""),
        (1005, ""),
        (1006, ""),
        (1015, ""),
        (5000, ""),
        (None, "reason without code"),
        (1000, "é" * 62),
    ],
)
def test_bad_local_close_is_refused(code, reason) -> None:
    client, server = open_pair()
    with pytest.raises(LocalProtocolError) as info:
        client.close(code, reason)
    assert info.value.misuse is Misuse.CLOSE
    assert client.state is State.OPEN


def test_close_reason_of_123_bytes_is_fine() -> None:
    client, server = open_pair()
    assert feed(server, client.close(3000, "x" * 123)) == [CloseReceived(3000, "x" * 123)]


@pytest.mark.parametrize("action", ["send_text", "send_binary", "send_ping", "close"])
def test_nothing_goes_out_once_closed_or_before_open(action: str) -> None:
    client, server = open_pair()
    feed(server, client.close())
    arg = {"send_text": ("x",), "send_binary": (b"x",), "send_ping": (), "close": ()}[action]
    for conn in (client, server):
        with pytest.raises(LocalProtocolError) as info:
            getattr(conn, action)(*arg)
        assert info.value.misuse is Misuse.STATE
