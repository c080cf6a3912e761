"""Our client Connection over a plain blocking socket against the real `websockets` server
(loopback only): an independent implementation catches what in-memory tests cannot."""

from __future__ import annotations

import socket
import threading
from typing import Iterator, List, Optional, Tuple

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from ftcore_websocket.connection import Connection, State
from ftcore_websocket.events import (
    BinaryMessage,
    CloseReceived,
    Event,
    HandshakeAccepted,
    Pong,
    TextMessage,
)

pytestmark = pytest.mark.timeout(30)


class EchoServer:
    """websockets' sync server in a thread; records how each connection was closed."""

    def __init__(self, deflate: bool) -> None:
        self.closes: List[Tuple[Optional[int], str]] = []
        self._closed = threading.Event()
        self._server = serve(
            self._handle,
            "127.0.0.1",
            0,
            compression="deflate" if deflate else None,
            max_size=None,
        )
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ftpeer-ws-codec-interop", daemon=True
        )
        self._thread.start()

    def _handle(self, ws: ServerConnection) -> None:
        try:
            for message in ws:
                if message == "close me":
                    ws.close(4002, "as asked")
                    break
                ws.send(message)
        except ConnectionClosed:
            pass
        self.closes.append((ws.close_code, ws.close_reason))
        self._closed.set()

    def wait_closed(self) -> None:
        assert self._closed.wait(10), "the server never saw the connection end"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(10)
        assert not self._thread.is_alive()


class BlockingClient:
    """The smallest transport: one blocking socket driving a client Connection."""

    def __init__(self, port: int, deflate: bool) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = Connection("client")
        self.pending: List[Event] = []
        self.sock.sendall(self.conn.initiate("127.0.0.1:%d" % port, "/echo", deflate=deflate))

    def next_event(self) -> Event:
        while not self.pending:
            data = self.sock.recv(65536)
            self.conn.receive_data(data)
            self.pending.extend(self.conn.events())
            self.sock.sendall(self.conn.data_to_send())
            if not data and not self.pending:
                raise EOFError("connection closed with no event")
        return self.pending.pop(0)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def finish(self) -> None:
        """After the closing handshake: the server ends TCP first, then we do."""
        assert self.sock.recv(1) == b""
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=[False, True], ids=["plain", "deflate"])
def deflate(request: pytest.FixtureRequest) -> bool:
    return request.param


@pytest.fixture
def server(deflate: bool) -> Iterator[EchoServer]:
    peer = EchoServer(deflate)
    yield peer
    peer.stop()


@pytest.fixture
def client(server: EchoServer, deflate: bool) -> Iterator[BlockingClient]:
    peer = BlockingClient(server.port, deflate)
    yield peer
    peer.close()


def test_handshake(client: BlockingClient, deflate: bool) -> None:
    event = client.next_event()
    assert isinstance(event, HandshakeAccepted)
    assert client.conn.state is State.OPEN
    if deflate:
        assert client.conn.extensions.startswith("permessage-deflate")
        assert "client_max_window_bits=" in client.conn.extensions
    else:
        assert client.conn.extensions == ""


@pytest.mark.parametrize("size", [0, 125, 126, 70000, 2**20])
def test_text_and_binary_echo(client: BlockingClient, size: int) -> None:
    assert isinstance(client.next_event(), HandshakeAccepted)
    text = ("ü€x" * size)[:size]
    blob = bytes(range(256)) * (size // 256) + bytes(size % 256)
    for _ in range(2):  # the second time through reuses the compression context
        client.send(client.conn.send_text(text))
        assert client.next_event() == TextMessage(text)
        client.send(client.conn.send_binary(blob))
        assert client.next_event() == BinaryMessage(blob)


def test_ping(client: BlockingClient) -> None:
    assert isinstance(client.next_event(), HandshakeAccepted)
    client.send(client.conn.send_ping(b"hello"))
    assert client.next_event() == Pong(b"hello")


def test_close_with_a_custom_code(client: BlockingClient, server: EchoServer) -> None:
    assert isinstance(client.next_event(), HandshakeAccepted)
    client.send(client.conn.close(4001, "bye"))
    assert client.next_event() == CloseReceived(4001, "bye")
    assert client.conn.state is State.CLOSED
    client.finish()
    server.wait_closed()
    assert server.closes == [(4001, "bye")]


def test_server_initiated_close(client: BlockingClient, server: EchoServer) -> None:
    assert isinstance(client.next_event(), HandshakeAccepted)
    client.send(client.conn.send_text("close me"))
    assert client.next_event() == CloseReceived(4002, "as asked")
    assert client.conn.state is State.CLOSED  # and the echo went out in next_event()
    client.finish()
    server.wait_closed()
    assert server.closes == [(4002, "")]  # what it received: our echo, code only
