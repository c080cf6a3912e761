"""Non-blocking datagram sockets on the runtime's selectors loop.

Reading: one reader per socket; each readiness event drains up to `READ_BATCH` datagrams
(until EAGAIN), so a burst costs one `select` and a flooded socket cannot starve the rest
of the loop (the selector is level-triggered: what is left wakes the next pass). The
receive buffer is larger than any datagram, so none is ever truncated.

Writing: `sendto` at once, handing the caller's buffer to the kernel without a copy. When
the kernel's buffer is full (EAGAIN) the datagram is copied into a bounded queue drained by a
writer callback, in order; a datagram that fails on retry is reported to `UdpEvents.error`.

Everything but `bind` runs on the loop thread (see `ftcore.transports.UdpEndpoint`).
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from collections import deque
from typing import Any, Callable, Deque, Optional, Set, Tuple

__all__ = ["LoopUdpTransport", "LoopUdpEndpoint", "READ_BATCH", "RECV_SIZE"]

READ_BATCH = 64
RECV_SIZE = 65536  # > 65,535: the largest datagram fits whole
QUEUE_MAX_DATAGRAMS = 4096
QUEUE_MAX_BYTES = 8 * 2**20

Address = Tuple[Any, ...]


class LoopUdpTransport:
    """Makes endpoints on `loop`; closing it closes every endpoint still open."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._endpoints: Set["LoopUdpEndpoint"] = set()

    def open(self, family: int, events: Any) -> "LoopUdpEndpoint":
        endpoint = LoopUdpEndpoint(self, family, events)
        with self._lock:
            self._endpoints.add(endpoint)
        return endpoint

    def _forget(self, endpoint: "LoopUdpEndpoint") -> None:
        with self._lock:
            self._endpoints.discard(endpoint)

    def close(self) -> None:
        with self._lock:
            endpoints = list(self._endpoints)
        for endpoint in endpoints:
            endpoint.close()


class LoopUdpEndpoint:
    """One UDP socket registered with the loop (`ftcore.transports.UdpEndpoint`)."""

    def __init__(self, transport: LoopUdpTransport, family: int, events: Any) -> None:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        self._transport = transport
        self._loop = transport._loop
        self._sock: Optional[socket.socket] = sock
        self._sendto: Callable[[Any, Address], int] = sock.sendto
        self._fd = sock.fileno()
        self._family = family
        self._events = events
        self._reading = False
        self._local: Address = sock.getsockname()
        self._queue: Deque[Tuple[bytes, Optional[Address]]] = deque()
        self._queued_bytes = 0
        self._writing = False  # the writer callback is registered

    def __repr__(self) -> str:
        return "<LoopUdpEndpoint fd=%d local=%r>" % (self._fd, self._local)

    # -- setup --------------------------------------------------------------------------------

    def bind(self, port: int) -> int:
        sock = self._live()
        sock.bind(("::" if self._family == socket.AF_INET6 else "0.0.0.0", port))
        self._local = sock.getsockname()
        return int(self._local[1])

    def start(self) -> None:
        sock = self._sock
        if sock is None or self._reading:
            return
        self._local = sock.getsockname()
        self._loop.add_reader(self._fd, self._on_readable)
        self._reading = True

    def connect(self, address: Address) -> None:
        sock = self._live()
        sock.connect(address)
        self._local = sock.getsockname()

    def set_ttl(self, ttl: int) -> None:
        if self._family == socket.AF_INET6:
            self._live().setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        else:
            self._live().setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)

    def set_broadcast(self, enabled: bool) -> None:
        self._live().setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1 if enabled else 0)

    # -- moving datagrams ---------------------------------------------------------------------

    def send(self, data: Any, address: Address) -> None:
        if not self._queue:  # else keep the order behind datagrams already waiting
            try:
                self._sendto(data, address)
                return
            except BlockingIOError:
                pass
        self._enqueue(data, address)

    def write(self, data: Any) -> None:
        if self._queue:
            self._enqueue(data, None)
            return
        try:
            self._live().send(data)
        except BlockingIOError:
            self._enqueue(data, None)

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        recvfrom = sock.recvfrom
        message = self._events.message
        for _ in range(READ_BATCH):
            try:
                data, remote = recvfrom(RECV_SIZE)
            except BlockingIOError:
                return
            except ConnectionRefusedError as error:
                # An ICMP port unreachable answered an earlier datagram of this connected
                # socket; reading it cleared it, and the socket goes on.
                self._events.error(error, "recv")
                if self._sock is None:
                    return
                continue
            except OSError as error:
                self._events.error(error, "recv")
                return
            message(data, remote, self._local)
            if self._sock is None:  # a listener closed the socket
                return

    def _enqueue(self, data: Any, address: Optional[Address]) -> None:
        if len(self._queue) >= QUEUE_MAX_DATAGRAMS or self._queued_bytes >= QUEUE_MAX_BYTES:
            raise OSError(errno.ENOBUFS, os.strerror(errno.ENOBUFS))
        self._live()
        kept = bytes(data)  # the caller may reuse its buffer once we return
        if not self._writing:
            self._loop.add_writer(self._fd, self._on_writable)
            self._writing = True
        self._queue.append((kept, address))
        self._queued_bytes += len(kept)

    def _on_writable(self) -> None:
        queue = self._queue
        while queue and self._sock is not None:
            data, address = queue[0]
            try:
                if address is None:
                    self._sock.send(data)
                else:
                    self._sendto(data, address)
            except BlockingIOError:
                return  # still full: wait for the next writable event
            except OSError as error:
                queue.popleft()
                self._queued_bytes -= len(data)
                self._events.error(error, "send" if address is not None else "write")
                continue
            queue.popleft()
            self._queued_bytes -= len(data)
        if self._writing and not queue:
            self._loop.remove_writer(self._fd)
            self._writing = False

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        sock = self._sock
        if sock is None:
            return
        self._sock = None
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        self._queue.clear()
        self._queued_bytes = 0
        sock.close()
        self._sendto = _closed_sendto
        self._transport._forget(self)

    def _live(self) -> socket.socket:
        sock = self._sock
        if sock is None:
            raise OSError(errno.EBADF, "socket is closed")
        return sock


def _closed_sendto(data: Any, address: Address) -> int:
    raise OSError(errno.EBADF, "socket is closed")
