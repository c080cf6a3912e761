"""WebSocket peers built on the real ``websockets`` library (sync API).

Why: ftcore implements RFC 6455/7692 itself; a well-tested independent
implementation on the other end is what catches its mistakes.

Handlers have the signature ``handler(conn, peer)`` (``conn`` a websockets
``ServerConnection``, ``peer`` the ``WSPeer``) and read through
``peer.receive(conn)`` so that every message and close is recorded.
Built in: ``echo``, ``drop_tcp`` and the factories ``close_with(code, reason)``
and ``send_on_open(messages)``. For a server that never completes the handshake
use ``hostile.never_answer``; for raw frames, ``hostile.ws_handshake_then``.

We run our own accept loop around websockets' per-connection handler (the
documented ``Server(socket, handler)`` contract) so that every thread is named
``ftpeer-ws-...`` and teardown can cut every connection at once.
"""

from __future__ import annotations

import os
import queue
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve
from websockets.typing import Subprotocol

from tests.peers.lifecycle import PEER_THREAD_PREFIX, SelectLoop, Tracker, hard_shutdown

Data = Union[str, bytes]
Handler = Callable[[ServerConnection, "WSPeer"], None]


@dataclass
class Handshake:
    """One opening handshake as the server received it."""

    path: str
    headers: List[Tuple[str, str]]
    subprotocols: List[str]  # what the client offered, in order
    extensions: List[str]  # raw Sec-WebSocket-Extensions values offered
    subprotocol: Optional[str] = None  # what was selected (set once open)

    def header(self, name: str) -> Optional[str]:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None


@dataclass
class Closed:
    """How a connection ended, seen from the server: the client's close frame,
    or ``code is None`` when the TCP connection ended without one."""

    code: Optional[int]
    reason: Optional[str]


# --- handlers ---------------------------------------------------------------------


def echo(conn: ServerConnection, peer: WSPeer) -> None:
    """Send every message back: text as text, binary as binary."""
    while True:
        data = peer.receive(conn)
        if data is None:
            return
        conn.send(data)


def drop_tcp(conn: ServerConnection, peer: WSPeer) -> None:
    """After the first message, cut the TCP connection without a close frame."""
    if peer.receive(conn) is not None:
        hard_shutdown(conn.socket)
        peer.receive(conn)  # let websockets see the EOF, and record it


def close_with(code: int, reason: str = "") -> Handler:
    """After the first message, start the closing handshake with ``code``/``reason``."""

    def handler(conn: ServerConnection, peer: WSPeer) -> None:
        if peer.receive(conn) is not None:
            conn.close(code, reason)
            peer.receive(conn)  # records the client's answering close frame

    return handler


def send_on_open(messages: Sequence[Data], then: Optional[Handler] = None) -> Handler:
    """Send ``messages`` as soon as the connection opens, then run ``then`` (echo)."""

    def handler(conn: ServerConnection, peer: WSPeer) -> None:
        for message in messages:
            conn.send(message)
        (then or echo)(conn, peer)

    return handler


HANDLERS: Dict[str, Handler] = {"echo": echo, "drop_tcp": drop_tcp}


class _PeerConnection(ServerConnection):
    """Names websockets' reader thread so leak checks can tell it apart."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recv_events_thread.name = f"{PEER_THREAD_PREFIX}ws-recv"


class WSPeer:
    """A running WebSocket server on 127.0.0.1.

    ``url`` ("ws://127.0.0.1:PORT" or "wss://..."), ``handshakes`` (list of
    ``Handshake``), ``messages`` (queue of every message received), ``closes``
    (queue of ``Closed``), ``connections`` (count of accepted TCP connections),
    ``release`` (set at close, for handlers that wait), ``cafile`` (wss only).
    """

    def __init__(
        self,
        handler: Union[str, Handler] = "echo",
        *,
        compression: bool = True,
        subprotocols: Optional[Sequence[str]] = None,
        tls: Optional[ssl.SSLContext] = None,
        max_size: Optional[int] = 32 * 2**20,
        ping_interval: Optional[float] = None,
        host: str = "127.0.0.1",
        cafile: Optional[str] = None,
    ) -> None:
        self.cafile = cafile
        self._handler = HANDLERS[handler] if isinstance(handler, str) else handler
        self.release = threading.Event()
        self.handshakes: List[Handshake] = []
        self.messages: queue.Queue[Data] = queue.Queue()
        self.closes: queue.Queue[Closed] = queue.Queue()
        self.connections = 0
        self._lock = threading.Lock()
        self._by_conn: Dict[int, Handshake] = {}
        self._tracker = Tracker("ws")
        listener = socket.create_server(
            (host, 0), family=socket.AF_INET6 if ":" in host else socket.AF_INET
        )
        self.port: int = listener.getsockname()[1]
        authority = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self.url = f"{'wss' if tls else 'ws'}://{authority}"
        self._server = serve(
            self._run_handler,
            sock=listener,
            ssl=tls,
            compression="deflate" if compression else None,
            subprotocols=[Subprotocol(p) for p in subprotocols] if subprotocols else None,
            process_request=self._on_request,
            create_connection=_PeerConnection,
            max_size=max_size,
            ping_interval=ping_interval,
            open_timeout=5,
            close_timeout=2,
        )
        self._server.socket.setblocking(False)
        self._loop: Optional[SelectLoop] = SelectLoop(
            self._server.socket, self._accept, self._tracker, "accept"
        )

    # --- for handlers and tests ------------------------------------------------------

    def receive(self, conn: ServerConnection) -> Optional[Data]:
        """Next message (recorded in ``messages``), or None once closed (recorded in ``closes``)."""
        try:
            data = conn.recv()
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            self.closes.put(Closed(rcvd.code, rcvd.reason) if rcvd else Closed(None, None))
            return None
        self.messages.put(data)
        return data

    def close(self) -> None:
        """Stop accepting, cut every connection, join every thread."""
        if self._loop is None:
            return
        self.release.set()
        self._loop.stop()  # also closes the listening socket
        self._loop = None
        _close_wakeup(self._server)
        alive = self._tracker.close()
        if alive:
            raise RuntimeError(f"WebSocket peer threads did not stop: {alive}")

    def __enter__(self) -> WSPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------

    def _accept(self) -> None:
        sock, addr = self._server.socket.accept()
        with self._lock:
            self.connections += 1
        if self._tracker.add_socket(sock):
            self._tracker.spawn("conn", self._serve_connection, sock, addr)
        else:
            sock.close()

    def _serve_connection(self, sock: socket.socket, addr: Any) -> None:
        try:
            self._server.handler(sock, addr)  # websockets: TLS, handshake, our handler, close
        finally:
            sock.close()
            self._tracker.discard_socket(sock)

    def _on_request(self, conn: ServerConnection, request: Any) -> None:
        headers = list(request.headers.raw_items())

        def values(name: str) -> List[str]:
            return [v for k, v in headers if k.lower() == name]

        offered = [p.strip() for v in values("sec-websocket-protocol") for p in v.split(",")]
        handshake = Handshake(
            request.path, headers, [p for p in offered if p], values("sec-websocket-extensions")
        )
        with self._lock:
            self.handshakes.append(handshake)
            self._by_conn[id(conn)] = handshake

    def _run_handler(self, conn: ServerConnection) -> None:
        with self._lock:
            handshake = self._by_conn.pop(id(conn), None)
        if handshake is not None:
            handshake.subprotocol = conn.subprotocol
        self._handler(conn, self)


def _close_wakeup(server: Any) -> None:
    """Close the wake-up pair websockets' Server makes for serve_forever(), which
    we do not use: a socketpair in websockets >= 16, a pipe before."""
    for name in ("shutdown_watcher", "shutdown_notifier"):
        end = getattr(server, name, None)
        if isinstance(end, int):
            try:
                os.close(end)
            except OSError:
                pass
        elif end is not None:
            end.close()
