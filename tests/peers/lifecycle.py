"""Thread, socket and shutdown plumbing shared by every peer.

Why: each peer must stop promptly and leave no socket or thread behind, and tests
that count file descriptors and threads need to tell peer threads from the
library's. All peer threads are daemon threads named with ``PEER_THREAD_PREFIX``.
"""

from __future__ import annotations

import os
import selectors
import socket
import struct
import threading
from typing import Callable, List, Optional, Set

PEER_THREAD_PREFIX = "ftpeer-"
JOIN_TIMEOUT_S = 5.0


def open_fd_count() -> int:
    """Number of file descriptors this process has open (Linux /proc, else /dev/fd)."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(directory):
            return len(os.listdir(directory))
    raise RuntimeError("cannot count open file descriptors on this platform")


def peer_threads() -> List[threading.Thread]:
    """Live threads that belong to a peer."""
    return [t for t in threading.enumerate() if t.name.startswith(PEER_THREAD_PREFIX)]


def non_peer_threads() -> List[threading.Thread]:
    """Live threads that do not belong to a peer (what a leak check should count)."""
    return [t for t in threading.enumerate() if not t.name.startswith(PEER_THREAD_PREFIX)]


def hard_shutdown(sock: socket.socket) -> None:
    """Shut both directions of ``sock`` so a thread blocked on it wakes up.

    Calls the plain ``socket.socket.shutdown`` even for an SSLSocket: that
    interrupts a blocked TLS read without tearing the SSL object down under it.
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def reset_close(sock: socket.socket) -> None:
    """Close with SO_LINGER 0 so the kernel sends RST instead of FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Tracker:
    """The live connection sockets and worker threads of one peer.

    Why: teardown must wake every blocked worker (by shutting its socket down),
    then join it; ``wait_idle`` lets tests wait for the peer to drop connections
    without sleeping.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Condition()
        self._sockets: Set[socket.socket] = set()
        self._threads: Set[threading.Thread] = set()
        self._closing = False

    def spawn(self, role: str, target: Callable[..., None], *args: object) -> threading.Thread:
        """Start a named daemon worker that unregisters itself when it ends."""

        def run() -> None:
            try:
                target(*args)
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())
                    self._lock.notify_all()

        thread = threading.Thread(
            target=run, name=f"{PEER_THREAD_PREFIX}{self.name}-{role}", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return thread

    def adopt_thread(self, thread: threading.Thread) -> None:
        """Track a thread someone else started (websockets' handler threads)."""
        with self._lock:
            self._threads.add(thread)

    def add_socket(self, sock: socket.socket) -> bool:
        """Register a live connection; False (and the socket is shut) when closing."""
        with self._lock:
            if not self._closing:
                self._sockets.add(sock)
                return True
        hard_shutdown(sock)
        return False

    def discard_socket(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
            self._lock.notify_all()

    @property
    def live_connections(self) -> int:
        with self._lock:
            return len(self._sockets)

    def wait_idle(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Block until no connection is live; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._sockets, timeout)

    def close(self, timeout: float = JOIN_TIMEOUT_S) -> List[threading.Thread]:
        """Shut every live socket, join every worker; return the ones still alive."""
        with self._lock:
            self._closing = True
            sockets = list(self._sockets)
        for sock in sockets:
            hard_shutdown(sock)
        with self._lock:
            self._lock.wait_for(lambda: not any(t.is_alive() for t in self._threads), timeout)
            alive = [t for t in self._threads if t.is_alive()]
            self._threads = set(alive)
        return alive


class SelectLoop:
    """One thread waiting for ``sock`` to be readable, woken up for shutdown.

    Why: ``socketserver.serve_forever`` polls its shutdown flag every 0.5 s; a
    socketpair wake-up makes closing a peer immediate and poll-free.
    """

    def __init__(
        self, sock: socket.socket, on_readable: Callable[[], None], tracker: Tracker, role: str
    ) -> None:
        self.sock = sock
        self._on_readable = on_readable
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread: Optional[threading.Thread] = tracker.spawn(role, self._run)

    def _run(self) -> None:
        while True:
            for key, _ in self._selector.select():
                if key.fileobj is self._wake_r:
                    return
                try:
                    self._on_readable()
                except OSError:
                    pass

    def stop(self) -> None:
        """Wake the loop, wait for it to end, then close its sockets."""
        if self._thread is None:
            return
        self._wake_w.send(b"x")
        self._thread.join(JOIN_TIMEOUT_S)
        self._thread = None
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
        self.sock.close()
