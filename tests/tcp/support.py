"""Helpers for the TCP tests: socket event queues, runtimes, and scripted loopback peers.

No test sleeps to synchronise: events are awaited on queues with timeouts, and "nothing else
happened" is checked after a loop barrier. Peers are `tests.peers.hostile` scripts (one thread
per connection) or, for many connections, `Acceptor` (one selector thread).
"""

from __future__ import annotations

import socket
import threading
from typing import Any, List, Tuple


from tests.peers.lifecycle import SelectLoop, Tracker
from tests.support.events import EventQueue
from tests.support.waits import WAIT

NAMES = ("Connect", "Message", "Error", "Close", "Drain")


def listen(sock: Any, names: Tuple[str, ...] = NAMES) -> EventQueue:
    """The events of `sock`, in order (its Message bytes gather in `received`)."""
    return EventQueue(skip=("Message",)).listen(sock, names)


def connect(
    rt: Any, port: int, address: str = "127.0.0.1", **options: Any
) -> Tuple[Any, EventQueue]:
    """A socket connected to `address`:`port` (onConnect seen), and its events."""
    sock = rt.createTCPSocket()
    events = listen(sock)
    sock.connect({"address": address, "port": port, **options})
    events.expect("Connect")
    return sock, events


# -- scripts for `hostile_server` ---------------------------------------------------------------


def echo(conn: socket.socket, release: threading.Event) -> None:
    """Return every byte until EOF, then close."""
    while True:
        data = conn.recv(1 << 20)
        if not data:
            return
        conn.sendall(data)


def never_read(conn: socket.socket, release: threading.Event) -> None:
    """Accept and never read: the kernel's buffers fill, then the client's queue."""
    release.wait(WAIT * 3)


def send_then(data: bytes, then: str) -> Any:
    """Send `data`, then "eof" (FIN) or "reset" (RST)."""

    def script(conn: socket.socket, release: threading.Event) -> None:
        conn.sendall(data)
        if then == "reset":
            release.wait(0.05)  # let the data leave before the RST overtakes it
            from tests.peers.lifecycle import reset_close

            reset_close(conn)
        else:
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):  # what the client flushes before it closes
                pass

    return script


class Acceptor:
    """Accepts any number of connections on one selector thread and closes each on EOF."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.bind((host, 0))
        self.listener.listen(512)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self._conns: List[socket.socket] = []
        self._tracker = Tracker("acceptor")
        self._loop = SelectLoop(self.listener, self._accept, self._tracker, "accept")

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                break
            self.accepted += 1
            self._conns.append(conn)

    def reap(self) -> None:
        """Close the accepted connections (the clients have closed theirs)."""
        conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()

    def close(self) -> None:
        self._loop.stop()  # closes the listener
        self.reap()
        self._tracker.close()

    def __enter__(self) -> "Acceptor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
