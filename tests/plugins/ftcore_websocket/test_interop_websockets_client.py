"""Our server Connection over a blocking socket, driven by the real `websockets` client."""

from __future__ import annotations

import socket
import threading
from typing import Iterator, List

import pytest
from websockets.sync.client import connect

from ftcore_websocket.connection import Connection, State
from ftcore_websocket.events import BinaryMessage, CloseReceived, HandshakeRequest, TextMessage

pytestmark = pytest.mark.timeout(30)


class OneShotEchoServer:
    """Accepts one connection in a thread and echoes with a server Connection."""

    def __init__(self, deflate: bool) -> None:
        self.deflate = deflate
        self.closes: List[CloseReceived] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(
            target=self._serve, name="ftpeer-ws-codec-server", daemon=True
        )
        self.thread.start()

    def _serve(self) -> None:
        sock, _ = self.listener.accept()
        sock.settimeout(10)
        conn = Connection("server")
        with sock:
            while conn.state is not State.CLOSED:
                data = sock.recv(65536)
                conn.receive_data(data)
                for event in conn.events():
                    if isinstance(event, HandshakeRequest):
                        sock.sendall(conn.accept(deflate=self.deflate))
                    elif isinstance(event, TextMessage):
                        sock.sendall(conn.send_text(event.data))
                    elif isinstance(event, BinaryMessage):
                        sock.sendall(conn.send_binary(event.data))
                    elif isinstance(event, CloseReceived):
                        self.closes.append(event)
                sock.sendall(conn.data_to_send())
                if not data:
                    break
            self.extensions = conn.extensions

    def stop(self) -> None:
        self.thread.join(10)
        self.listener.close()
        assert not self.thread.is_alive()


@pytest.fixture(params=[False, True], ids=["plain", "deflate"])
def server(request: pytest.FixtureRequest) -> Iterator[OneShotEchoServer]:
    peer = OneShotEchoServer(request.param)
    yield peer
    peer.stop()


def test_websockets_client_against_our_server(server: OneShotEchoServer) -> None:
    text, blob = "héllo " * 5000, bytes(range(256)) * 300
    with connect("ws://127.0.0.1:%d/x" % server.port, max_size=None, open_timeout=10) as ws:
        for _ in range(2):
            ws.send(text)
            assert ws.recv(timeout=10) == text
            ws.send(blob)
            assert ws.recv(timeout=10) == blob
        ws.close(4003, "done")
    server.stop()
    assert server.closes == [CloseReceived(4003, "done")]
    assert server.extensions.startswith("permessage-deflate") is server.deflate
