"""A loopback WebSocket echo server on our own codec (server role), for the demo and benchmarks.

One thread per connection over blocking sockets: simple, and plenty for a demo or a
one-in-flight benchmark. Text is echoed as text, binary as binary; a close is answered.
"""

from __future__ import annotations

import socket
import threading
from typing import List

from .connection import Connection, Role, State
from .events import BinaryMessage, HandshakeRejected, HandshakeRequest, TextMessage

__all__ = ["EchoServer"]


class EchoServer:
    """`with EchoServer() as server:` serves ws://127.0.0.1:`server.port` until the block ends."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._listener = socket.create_server((host, port))
        self.port = self._listener.getsockname()[1]
        self.url = "ws://%s:%d" % (host, self.port)
        self._connections: List[socket.socket] = []
        self._lock = threading.Lock()
        self._threads: List[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="ws-echo", daemon=True)

    def __enter__(self) -> "EchoServer":
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for sock in self._connections:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._acceptor.join(5)
        for thread in self._threads:
            thread.join(5)

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._connections.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        conn = Connection(Role.SERVER)
        try:
            while conn.state is not State.CLOSED:
                data = sock.recv(262144)
                conn.receive_data(data)
                for event in conn.events():
                    if isinstance(event, TextMessage):
                        sock.sendall(conn.send_text(event.data))
                    elif isinstance(event, BinaryMessage):
                        sock.sendall(conn.send_binary(event.data))
                    elif isinstance(event, HandshakeRequest):
                        protocols = event.subprotocols
                        sock.sendall(conn.accept(protocols[0] if protocols else None))
                    elif isinstance(event, HandshakeRejected):
                        break
                pending = conn.data_to_send()
                if pending:
                    sock.sendall(pending)
                if not data:
                    break
        except OSError:
            pass
        finally:
            with self._lock:
                if sock in self._connections:
                    self._connections.remove(sock)
            sock.close()
