"""A scripted streaming server for the real-peer tests: each accepted connection is handed to
a test's handler as a `PeerConn` (over `tests.peers.hostile.HostileServer`, one thread per
connection, joined at teardown), optionally behind TLS.

Why a script and not a framework server: the tests need to cut bytes at chosen points (a
multi-byte character across two chunks), stall mid-event, see the client's `Last-Event-ID`,
and note the moment the client closed the connection.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

from tests.peers.hostile import read_request, request_header, response_head

SSE_HEADERS = (("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"))


class PeerConn:
    """The server's side of one connection."""

    def __init__(self, conn: socket.socket, release: threading.Event, index: int) -> None:
        self.conn = conn
        self.release = release  # set at teardown: a stalled script must wait on it
        self.index = index  # 1 for the first connection accepted
        self.head = b""
        self.chunked = True
        self.accepted_at = time.monotonic()
        self.closed_at: Optional[float] = None  # time.monotonic() the client's close was seen

    def read_request(self) -> bytes:
        self.head = read_request(self.conn)
        return self.head

    def header(self, name: str) -> Optional[str]:
        return request_header(self.head, name)

    def respond(
        self,
        status: int = 200,
        headers: Sequence[Tuple[str, str]] = SSE_HEADERS,
        chunked: bool = True,
        reason: str = "OK",
    ) -> None:
        extra = [("Transfer-Encoding", "chunked")] if chunked else []
        self.chunked = chunked
        self.conn.sendall(response_head(status, reason, list(headers) + extra))

    def send(self, data: bytes) -> None:
        """One chunk (or raw bytes without chunked framing)."""
        if self.chunked:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        self.conn.sendall(data)

    def end(self) -> None:
        if self.chunked:
            self.conn.sendall(b"0\r\n\r\n")

    def client_closed(self, wait: float) -> bool:
        """Whether the client closed (or reset) the connection within `wait` seconds; the
        first time, `closed_at` notes when it was seen."""
        if self.closed_at is not None:
            return True
        readable, _, _ = select.select([self.conn], [], [], wait)
        if not readable:
            return False
        try:
            data = self.conn.recv(4096)
        except (ConnectionError, ssl.SSLError, OSError):
            data = b""
        if data:
            return False  # more of a request: not a close
        self.closed_at = time.monotonic()
        return True

    def drip(self, pieces: Iterable[bytes], interval: float) -> None:
        """Send `pieces` one every `interval` seconds until they run out or the client
        closes the connection (then `closed_at` is set)."""
        for piece in pieces:
            try:
                self.send(piece)
            except OSError:
                self.closed_at = self.closed_at or time.monotonic()
                return
            if self.client_closed(interval) or self.release.is_set():
                return


Handler = Callable[[PeerConn], None]


class StreamPeer:
    """Runs `handler` on each connection; `url`, `conns` (every PeerConn, in order)."""

    def __init__(
        self,
        make_server: Callable[..., str],
        handler: Handler,
        tls: Optional[ssl.SSLContext] = None,
    ) -> None:
        self.handler = handler
        self.tls = tls
        self.conns: List[PeerConn] = []
        self._lock = threading.Lock()
        url = make_server(self._script)
        self.server = url.server  # type: ignore[attr-defined]
        self.url = ("https" + url[4:]) if tls is not None else str(url)

    def _script(self, conn: socket.socket, release: threading.Event) -> None:
        if self.tls is not None:
            conn = self.tls.wrap_socket(conn, server_side=True)
        with self._lock:
            peer = PeerConn(conn, release, len(self.conns) + 1)
            self.conns.append(peer)
        try:
            self.handler(peer)
        finally:
            if self.tls is not None:  # the plain socket (closed by the server) was detached
                conn.close()

    def conn(self, index: int, timeout: float = 5.0) -> PeerConn:
        """The `index`-th connection (1-based), waiting for it to be accepted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.conns) >= index:
                    return self.conns[index - 1]
            time.sleep(0.005)
        raise AssertionError("connection %d never came" % index)
