"""UDP peers on loopback: an echo that returns each datagram to its sender,
and a sink that only records.

Why: ftcore's UDPSocket must be tested against a real socket on the other end
of the kernel, for IPv4 (127.0.0.1) and IPv6 (::1) alike.
"""

from __future__ import annotations

import queue
import socket
import threading
from typing import Any, List, Optional, Tuple

from tests.peers.lifecycle import SelectLoop, Tracker

MAX_DATAGRAM = 65536
FAMILIES = {"udp4": (socket.AF_INET, "127.0.0.1"), "udp6": (socket.AF_INET6, "::1")}

Datagram = Tuple[bytes, Tuple[Any, ...]]


class UDPPeer:
    """A UDP socket on loopback served by one thread.

    ``address``/``port``: where to send; ``count``: datagrams received;
    ``datagrams``: every (data, sender address) received, oldest first;
    ``received``: the same as a queue, for ``get(timeout=...)``;
    ``send_to(data, address)``: send an unsolicited datagram from this socket.
    """

    def __init__(self, family: str = "udp4", echo: bool = True) -> None:
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
        af, host = FAMILIES[family]
        self.family = family
        self.echo = echo
        self.address = host
        self.count = 0
        self.datagrams: List[Datagram] = []
        self.received: queue.Queue[Datagram] = queue.Queue()
        self._lock = threading.Lock()
        self._sock = socket.socket(af, socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 2**20)
            self._sock.bind((host, 0))
            self._sock.setblocking(False)
        except OSError:
            self._sock.close()
            raise
        self.port: int = self._sock.getsockname()[1]
        self._tracker = Tracker("udp6" if af == socket.AF_INET6 else "udp4")
        self._loop: Optional[SelectLoop] = SelectLoop(
            self._sock, self._on_readable, self._tracker, "echo" if echo else "sink"
        )

    def send_to(self, data: bytes, address: Tuple[Any, ...]) -> None:
        self._sock.sendto(data, address)

    def close(self) -> None:
        if self._loop is None:
            return
        self._loop.stop()  # also closes the socket
        self._loop = None
        alive = self._tracker.close()
        if alive:
            raise RuntimeError(f"UDP peer thread did not stop: {alive}")

    def __enter__(self) -> UDPPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_readable(self) -> None:
        while True:  # drain everything queued, then go back to select
            try:
                data, sender = self._sock.recvfrom(MAX_DATAGRAM)
            except BlockingIOError:
                return
            with self._lock:
                self.count += 1
                self.datagrams.append((data, sender))
            self.received.put((data, sender))
            if self.echo:
                try:
                    self._sock.sendto(data, sender)
                except OSError:
                    pass  # the sender is gone; an echo peer does not care


def ipv6_available() -> bool:
    """Whether ::1 can be bound here (containers sometimes disable IPv6)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False
