"""A fast threaded HTTP/1.1 keep-alive server running the routes of ``http_app``.

Why: ftcore's HTTP transport must be tested against a real server on loopback
(keep-alive, chunked bodies, TLS, redirects) that a test can also inspect:
``HTTPPeer.requests`` records every request that arrived.

Built on ``http.server`` for request parsing; the accept loop, the response
writer and the TLS wrapping are ours so that teardown is immediate and every
connection thread is joined.
"""

from __future__ import annotations

import socket
import ssl
import threading
import traceback
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any, Iterable, List, Optional, Tuple
from urllib.parse import urlsplit

from tests.peers import http_app
from tests.peers.lifecycle import SelectLoop, Tracker, hard_shutdown

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH")
COALESCE_LIMIT = 64 * 1024  # bodies up to this size go out in the same write as the head


@dataclass
class RecordedRequest:
    """What the server saw of one request (``connection`` equal means same TCP connection)."""

    method: str
    target: str
    path: str
    query: str
    headers: List[Tuple[str, str]]
    client: Tuple[Any, ...]
    connection: int
    body_len: int = 0

    def header(self, name: str) -> Optional[str]:
        """First value of a header, case-insensitively; None when absent."""
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None


class _LengthReader(http_app.BodyReader):
    def __init__(self, rfile: Any, length: int) -> None:
        self._rfile = rfile
        self._left = length
        self.received = 0

    def read(self, size: int) -> bytes:
        if self._left <= 0:
            return b""
        data = self._rfile.read(min(size, self._left))
        if not data:  # peer closed early: the body is what arrived
            self._left = 0
            return b""
        self._left -= len(data)
        self.received += len(data)
        return data


class _ChunkedReader(http_app.BodyReader):
    """Decodes a chunked request body (extensions and trailers are skipped)."""

    def __init__(self, rfile: Any) -> None:
        self._rfile = rfile
        self._left = 0
        self._done = False
        self.received = 0

    def read(self, size: int) -> bytes:
        if self._done:
            return b""
        if self._left == 0:
            line = self._rfile.readline(65537)
            try:
                self._left = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self._done = True
                raise ConnectionError(f"bad chunk size line {line!r}") from None
            if self._left == 0:
                while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                self._done = True
                return b""
        data = self._rfile.read(min(size, self._left))
        if not data:
            self._done = True
            return b""
        self._left -= len(data)
        self.received += len(data)
        if self._left == 0:
            self._rfile.readline(65537)  # the CRLF after the chunk
        return data


class _Handler(BaseHTTPRequestHandler):
    """Parses with http.server, answers with ``http_app.dispatch``."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def __init__(self, request: Any, client_address: Any, server: Any, conn_id: int) -> None:
        self.conn_id = conn_id
        super().__init__(request, client_address, server)

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request logging: it is slow and noisy."""

    def _serve(self) -> None:
        peer = self.server.peer
        split = urlsplit(self.path)
        headers = list(self.headers.items())
        reader = self._body_reader()
        if reader is None:
            return
        record = RecordedRequest(
            self.command,
            self.path,
            split.path or "/",
            split.query,
            headers,
            tuple(self.client_address),
            self.conn_id,
        )
        peer._record(record)
        request = http_app.Request(
            method=self.command,
            target=self.path,
            path=split.path or "/",
            query=split.query,
            headers=headers,
            scheme=peer.scheme,
            host=self.headers.get("Host", peer.authority),
            reader=reader,
            release=peer.release,
            gates=peer.gates,
        )
        if "close" in request.params:
            self.close_connection = True
        try:
            response = http_app.dispatch(request)
        except Exception:  # noqa: BLE001  (a route bug: show it to the test, keep the thread)
            self.close_connection = True
            response = http_app.text_response(traceback.format_exc(), 500)
        while reader.read(65536):  # drain what the route left, so keep-alive stays in sync
            pass
        record.body_len = reader.received
        self._write(response, head_only=self.command == "HEAD")

    def _body_reader(self) -> Optional[http_app.BodyReader]:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return _ChunkedReader(self.rfile)
        declared = self.headers.get("Content-Length")
        try:
            length = int(declared) if declared is not None else 0
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._write(http_app.text_response(f"bad Content-Length {declared!r}", 400), False)
            return None
        return _LengthReader(self.rfile, length)

    def _write(self, response: http_app.Response, head_only: bool) -> None:
        status = response.status
        body = response.body
        is_bytes = isinstance(body, (bytes, bytearray, memoryview))
        length = len(body) if is_bytes else response.length  # type: ignore[arg-type]
        headers = [("Server", "ftpeer")] + list(response.headers)
        no_body = status in (204, 304) or status < 200
        if not no_body:
            if length is None:
                headers.append(("Transfer-Encoding", "chunked"))
            else:
                headers.append(("Content-Length", str(length)))
        if self.close_connection:
            headers.append(("Connection", "close"))
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {status} {phrase}"] + [f"{k}: {v}" for k, v in headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        write = self.wfile.write
        if head_only or no_body:
            write(head)
        elif is_bytes and len(body) <= COALESCE_LIMIT:  # type: ignore[arg-type]
            write(head + bytes(body))  # type: ignore[arg-type]
        elif is_bytes:
            write(head)
            write(body)  # type: ignore[arg-type]
        else:
            write(head)
            self._write_stream(body, chunked=length is None)  # type: ignore[arg-type]
        if not is_bytes and hasattr(body, "close"):
            body.close()  # type: ignore[union-attr]

    def _write_stream(self, pieces: Iterable[bytes], chunked: bool) -> None:
        write = self.wfile.write
        for piece in pieces:
            if not piece:
                continue
            if chunked:
                write(b"%x\r\n" % len(piece) + bytes(piece) + b"\r\n")
            else:
                write(piece)
        if chunked:
            write(b"0\r\n\r\n")


for _method in METHODS:
    setattr(_Handler, f"do_{_method}", _Handler._serve)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, peer: HTTPPeer, host: str) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.peer = peer
        super().__init__((host, 0), _Handler)  # type: ignore[arg-type]

    def server_bind(self) -> None:
        """Skip HTTPServer's getfqdn(): a reverse DNS lookup has no place in a test."""
        TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        self.peer._start_connection(request, client_address)


class HTTPPeer:
    """A running HTTP (or HTTPS) peer on loopback.

    ``url`` is the base ("http://127.0.0.1:PORT"), ``requests`` every request seen
    (append-only, read under ``lock`` or via ``requests_to``), ``gates`` the
    barriers of ``/gate/<name>``, ``release`` the event set at close that ends
    every paced or held route, ``cafile`` the PEM of the CA that signed its
    certificate (HTTPS only).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        tls: Optional[ssl.SSLContext] = None,
        cafile: Optional[str] = None,
        name: str = "http",
    ) -> None:
        self.tls = tls
        self.cafile = cafile
        self.scheme = "https" if tls else "http"
        self.release = threading.Event()
        self.gates = http_app.Gates(self.release)
        self.lock = threading.Lock()
        self.requests: List[RecordedRequest] = []
        self.connections_accepted = 0
        self._tracker = Tracker(name)
        self._server = _Server(self, host)
        self.host = host
        self.port: int = self._server.server_address[1]
        self.authority = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self.url = f"{self.scheme}://{self.authority}"
        self._server.socket.setblocking(False)  # accepted sockets still come out blocking
        self._loop: Optional[SelectLoop] = SelectLoop(
            self._server.socket, self._accept, self._tracker, "accept"
        )

    # --- for tests ---------------------------------------------------------------

    def requests_to(self, path: str) -> List[RecordedRequest]:
        """The requests whose path (query excluded) is ``path``, oldest first."""
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    @property
    def live_connections(self) -> int:
        return self._tracker.live_connections

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until the server holds no open connection (the client closed them all)."""
        return self._tracker.wait_idle(timeout)

    def close(self) -> None:
        """Stop accepting, end held routes, shut every connection, join every thread."""
        if self._loop is None:
            return
        self.release.set()
        self.gates.wake_all()
        self._loop.stop()
        self._loop = None
        self._server.server_close()
        alive = self._tracker.close()
        if alive:
            raise RuntimeError(f"HTTP peer threads did not stop: {alive}")

    def __enter__(self) -> HTTPPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ---------------------------------------------------------------

    def _record(self, record: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(record)

    def _accept(self) -> None:
        request, client_address = self._server.get_request()
        self._server.process_request(request, client_address)

    def _start_connection(self, request: socket.socket, client_address: Any) -> None:
        with self.lock:
            self.connections_accepted += 1
            conn_id = self.connections_accepted
        self._tracker.spawn("conn", self._serve_connection, request, client_address, conn_id)

    def _serve_connection(self, request: socket.socket, client_address: Any, conn_id: int) -> None:
        conn = request
        if not self._tracker.add_socket(conn):
            conn.close()
            return
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(request, server_side=True)
                self._tracker.discard_socket(request)
                if not self._tracker.add_socket(conn):
                    return
            _Handler(conn, client_address, self._server, conn_id)
        except (OSError, ssl.SSLError, ValueError):
            pass  # the client went away, or refused our certificate
        finally:
            hard_shutdown(conn)
            conn.close()
            request.close()
            self._tracker.discard_socket(request)  # after closing: wait_idle means "fds gone"
            self._tracker.discard_socket(conn)
