"""A complete HTTP transport for ftcore on the standard library's `http.client`.

Register it and every HTTP call of the runtime goes through it:

    import ftcore
    from http_client_transport import HttpClientPlugin

    rt = ftcore.Runtime(plugins=[HttpClientPlugin()])
    rt.request(url="http://127.0.0.1:8000/", success=print)

A transport only moves bytes. The core has already checked and encoded the request (method,
URL, headers, body, domain list) and it will follow redirects, decode `data`, count progress,
enforce the timeout and build the result dict. Here each exchange runs on its own worker
thread (blocking I/O must never run on the loop) and reports through the sink, in order:
`sent` as body bytes leave, `headers` once, `body` per piece, then `end` or `error`. The
byte counts of `profile` are as on the wire: the request's head and body written, the
response's head, framing and body read (`_CountingConnection`).
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import threading
import time
from typing import Any, Dict, Optional, Set
from urllib.parse import urlsplit

import ftcore
from ftcore import Errno, FtError
from ftcore.transports import HttpRequest, HttpSink, TlsSettings

READ_SIZE = 64 * 1024


def now_ms() -> float:
    return time.time() * 1000.0


def map_error(error: BaseException) -> FtError:
    """Turn what http.client and the socket raise into ftcore's errnos."""
    if isinstance(error, FtError):
        return error  # e.g. an upload body whose file changed while it was read
    if isinstance(error, ConnectionRefusedError):
        return FtError(Errno.CONNECTION_REFUSED)
    if isinstance(error, socket.gaierror):
        return FtError(Errno.NAME_NOT_RESOLVED)
    if isinstance(error, ssl.SSLError):
        return FtError(Errno.TLS, "ssl error: %s" % (error.reason or error))
    if isinstance(error, socket.timeout):
        return FtError(Errno.TIMEOUT)
    if isinstance(error, (ConnectionResetError, http.client.IncompleteRead)):
        return FtError(Errno.CONNECTION_RESET)
    if isinstance(error, http.client.HTTPException):
        return FtError(Errno.BAD_RESPONSE, "bad response: %s" % type(error).__name__)
    return FtError(Errno.NETWORK, "network error: %s" % (error,))


class _CountingReader(io.RawIOBase):
    """The socket as http.client reads it, counting every byte (head and framing too)."""

    def __init__(self, sock: socket.socket, counts: Dict[str, int]) -> None:
        super().__init__()
        self.sock, self.counts = sock, counts

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.sock.recv_into(buffer)
        self.counts["received"] += n
        return n


class _CountingSocket:
    """What `HTTPResponse` is given in place of the socket: only `makefile` is used."""

    def __init__(self, sock: socket.socket, counts: Dict[str, int]) -> None:
        self.sock, self.counts = sock, counts

    def makefile(self, mode: str, *args: Any) -> Any:
        return io.BufferedReader(_CountingReader(self.sock, self.counts))


class _CountingConnection:
    """Mixed into http.client's connections: counts what `send` writes (head and body) and
    reads the response through `_CountingSocket`."""

    counts: Dict[str, int]
    sock: Any

    def send(self, data: Any) -> None:
        super().send(data)  # type: ignore[misc]
        self.counts["sent"] += len(data)

    def getresponse(self) -> http.client.HTTPResponse:
        sock = self.sock
        self.sock = _CountingSocket(sock, self.counts)  # HTTPResponse calls sock.makefile
        try:
            return super().getresponse()  # type: ignore[misc,no-any-return]
        finally:
            self.sock = sock


class _HTTPConnection(_CountingConnection, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_CountingConnection, http.client.HTTPSConnection):
    pass


class Exchange:
    """One request and its response, run by `run()` on a worker thread."""

    def __init__(self, transport: "HttpClientTransport", request: HttpRequest, sink: HttpSink):
        self.transport = transport
        self.request = request
        self.sink = sink
        self.conn: Optional[http.client.HTTPConnection] = None
        self.counts = {"sent": 0, "received": 0}
        self.aborted = False
        self.lock = threading.Lock()

    def abort(self) -> None:
        """Loop thread: drop the connection; the worker wakes up and reports nothing more."""
        with self.lock:
            self.aborted = True
            conn = self.conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self) -> None:
        try:
            self._run()
        except Exception as error:  # noqa: BLE001 - every failure goes to the sink
            if not self.aborted:  # the facts the core's retry rule reads: never a reused one
                facts = {"socketReused": False, "receivedBytedCount": self.counts["received"]}
                self.sink.error(map_error(error), facts)
        finally:
            if self.conn is not None:
                self.conn.close()
            self.transport.live.discard(self)

    def _run(self) -> None:
        request = self.request
        url = urlsplit(request.url)
        secure = url.scheme == "https"
        timeout = request.timeout if request.timeout and request.timeout > 0 else None
        host, port = url.hostname or "", url.port or (443 if secure else 80)
        if secure:
            tls = request.tls or TlsSettings()
            context = ssl.create_default_context(cafile=tls.cafile)
            if not tls.verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            conn: Any = _HTTPSConnection(host, port, timeout=timeout, context=context)
        else:
            conn = _HTTPConnection(host, port, timeout=timeout)
        conn.counts = self.counts
        with self.lock:
            if self.aborted:
                return
            self.conn = conn

        info: Dict[str, Any] = {"connectStart": now_ms(), "port": port, "socketReused": False}
        conn.connect()
        info["connectEnd"] = now_ms()
        if secure:  # http.client wraps the socket inside connect()
            info["SSLconnectionStart"], info["SSLconnectionEnd"] = (
                info["connectStart"],
                info["connectEnd"],
            )
        info["peerIP"] = conn.sock.getpeername()[0]

        # The request: the head, then the body (bytes, or an iterable of chunks for uploads).
        info["requestStart"] = now_ms()
        target = (url.path or "/") + ("?" + url.query if url.query else "")
        conn.putrequest(request.method, target, skip_accept_encoding=True)
        for name, value in request.headers:
            conn.putheader(name, value)
        body = request.body
        if body is not None or request.method in ("POST", "PUT"):
            length = len(body) if isinstance(body, (bytes, bytearray)) else request.body_length
            conn.putheader("Content-Length", str(length or 0))
        conn.endheaders()
        chunks = [body] if isinstance(body, (bytes, bytearray)) else (body or [])
        for chunk in chunks:
            if chunk:
                conn.send(chunk)
                self.sink.sent(len(chunk))
        info["requestEnd"] = now_ms()

        # The response: the head, then the body as it arrives.
        response = conn.getresponse()
        info["responseStart"] = now_ms()
        self.sink.headers(response.status, response.getheaders(), dict(info))
        while True:
            piece = response.read1(READ_SIZE)
            if not piece:
                break
            self.sink.body(piece)  # raises if the task is over: we stop, `run` cleans up
        counts = self.counts
        info.update(
            responseEnd=now_ms(),
            sendBytesCount=counts["sent"],
            receivedBytedCount=counts["received"],
        )
        if not self.aborted:
            self.sink.end(info)


class HttpClientTransport:
    """The `HttpTransport`: one worker thread per exchange (a real one would pool them)."""

    def __init__(self) -> None:
        self.live: Set[Exchange] = set()

    def start(self, request: HttpRequest, sink: HttpSink) -> Exchange:
        exchange = Exchange(self, request, sink)
        self.live.add(exchange)
        threading.Thread(target=exchange.run, name="http-client-transport", daemon=True).start()
        return exchange

    def close(self) -> None:
        for exchange in list(self.live):
            exchange.abort()


class HttpClientPlugin:
    """The plugin: a factory hook. Registered with `Runtime(plugins=[...])`, it wins over the
    builtin transport (which is ``trylast``)."""

    @ftcore.hookimpl
    def ftcore_http_transport_make(self, runtime: ftcore.Runtime) -> HttpClientTransport:
        return HttpClientTransport()
