"""The scripted HTTP peer checked with raw sockets, so a failure of the reliability tests
(tests/http/test_keepalive_retry.py, test_byte_counts.py, test_early_answers.py) can be
blamed on ftcore and not on the peer."""

from __future__ import annotations

import socket
import threading
from typing import Iterator

import pytest

from tests.peers.scripted_http import ScriptedPeer, early, response

pytestmark = pytest.mark.timeout(30)

REQUEST = b"POST /x HTTP/1.1\r\nHost: peer\r\nContent-Length: 5\r\n\r\nhello"


@pytest.fixture
def connect() -> Iterator:
    sockets = []

    def make(peer: ScriptedPeer) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", peer.port), timeout=5.0)
        sockets.append(sock)
        return sock

    yield make
    for sock in sockets:
        sock.close()


def read_response(sock: socket.socket) -> bytes:
    """One Content-Length response."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_counts_both_directions_byte_for_byte(connect) -> None:
    with ScriptedPeer() as peer:
        sock = connect(peer)
        sock.sendall(REQUEST)
        raw = read_response(sock)
        (seen,) = peer.wait_done(1)
        assert (seen.received, seen.body_received, seen.sent) == (len(REQUEST), 5, len(raw))
        assert (seen.method, seen.target, seen.connection, seen.index) == ("POST", "/x", 1, 1)


@pytest.mark.parametrize("how", ["eof", "reset"])
def test_an_expired_connection_closes_at_its_next_request(connect, how) -> None:
    with ScriptedPeer() as peer:
        sock = connect(peer)
        sock.sendall(REQUEST)
        read_response(sock)
        peer.expire_idle(how)
        sock.sendall(REQUEST)
        if how == "eof":
            assert sock.recv(65536) == b""
        else:
            with pytest.raises(ConnectionResetError):
                sock.recv(65536)
        fresh = connect(peer)  # a connection opened after the expiry is served
        fresh.sendall(REQUEST)
        assert read_response(fresh).startswith(b"HTTP/1.1 200")
        assert [s.outcome for s in peer.wait_done(3)] == ["answered", how, "answered"]


def test_an_early_answer_comes_before_the_body_is_read(connect) -> None:
    gate = threading.Event()
    raw = response(200, b"early")
    with ScriptedPeer(lambda seen: early(raw, "read", gate)) as peer:
        sock = connect(peer)
        sock.sendall(REQUEST[: REQUEST.index(b"hello")])  # the head only
        assert read_response(sock) == raw
        gate.set()
        sock.sendall(b"hello")
        (seen,) = peer.wait_done(1)
        assert seen.body_received == 5
