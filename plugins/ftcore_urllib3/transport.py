"""The urllib3 HTTP transport: one PoolManager per runtime, blocking calls on a worker pool.

Each exchange runs on one worker thread: `urlopen` on the pool `PoolManager.urlopen` would
pick (found through a per-URL cache; no retries, no redirects: the core follows them,
`preload_content=False`), then the body with `read1(64 KiB)` so pieces reach the sink as they
arrive (http.client's, or urllib3's when a Content-Encoding must be decoded), then the
connection goes back to the pool *before* the sink hears `end`, so the next request of a
sequence reuses it.

Abort (loop thread) shuts the socket down (`SHUT_RDWR` on the plain socket, which also wakes a
blocked TLS read) so the worker unblocks within milliseconds, even mid-body or while waiting for
headers; the connection is then closed before urllib3 gets it back, so its socket is never
reused. Ownership of a connection is tracked under one lock (set when an exchange sends on it,
cleared when it returns to the pool), so a late abort can never touch a connection another
exchange is using. An abort during DNS or TCP connect cannot interrupt the system call: that
worker ends at its connect timeout (the task itself is settled at once by the core).

Timeouts: `urllib3.Timeout(connect=, read=)` from the seconds left, plus a small margin so the
core's deadline timer (the authority on "timeout") fires first; blocked workers still end by
themselves.

Profile: `connectStart`/`connectEnd` around the TCP connect, `SSLconnectionStart`/`End` around
the TLS handshake (0 for plain HTTP or a reused connection), `requestStart`/`requestEnd`
around sending, `responseStart` once the head is parsed, `responseEnd`; `socketReused`,
`peerIP`/`port` from the socket, and body byte counts (`receivedBytedCount` counts bytes off
the wire, before content decoding). DNS time is inside connectStart..connectEnd.
"""

from __future__ import annotations

import functools
import http.client
import logging
import queue
import socket
import ssl
import threading
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import urllib3
from urllib3 import exceptions as u3
from urllib3.connection import HTTPConnection, HTTPSConnection, port_by_scheme
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.url import parse_url

from ftcore.errors import Errno, FtError
from ftcore.transports import HttpRequest, HttpSink, TlsSettings

__all__ = ["Urllib3Transport"]

logger = logging.getLogger("ftcore.urllib3")

READ_SIZE = 64 * 1024
BIG_READ_SIZE = 256 * 1024  # a long body with a length: one recv takes what the kernel has
ROUTE_CACHE_SIZE = 512  # URLs whose pool key and request target are kept
TIMEOUT_MARGIN = 0.25  # seconds beyond the core's deadline: the core's timer fires first
JOIN_TIMEOUT = 5.0

_local = threading.local()
_VERIFIED = TlsSettings()  # a request built outside the core (the core fills `tls` in)


def _now_ms() -> float:
    return time.time() * 1000.0


class _Aborted(Exception):
    """The exchange was aborted before it could use a connection."""


# -- connections that report to the exchange running on this thread ----------------------------


class _ConnMixin:
    """Timing, ownership and abort checks, for HTTPConnection and HTTPSConnection."""

    _ft: "Urllib3Transport"
    _ft_owner: Optional["_Exchange"] = None
    _ft_peer: Any = (None, None)  # (socket, (ip, port)): a syscall asked once per socket
    sock: Any

    def _new_conn(self) -> socket.socket:
        exchange: Optional[_Exchange] = getattr(_local, "exchange", None)
        start = _now_ms()
        sock = super()._new_conn()  # type: ignore[misc]
        if exchange is not None:
            info = exchange.info
            info["connectStart"] = start
            info["connectEnd"] = end = _now_ms()
            info["SSLconnectionStart"] = end if isinstance(self, HTTPSConnection) else 0
            exchange.fresh = True
            with self._ft.lock:
                if exchange.aborted:
                    sock.close()
                    raise _Aborted()
                exchange.sock = sock
        return sock

    def connect(self) -> None:
        exchange = self._ft_attach()
        super().connect()  # type: ignore[misc]
        if exchange is not None and isinstance(self, HTTPSConnection):
            exchange.info["SSLconnectionEnd"] = _now_ms()

    def request(self, *args: Any, **kwargs: Any) -> None:
        exchange = self._ft_attach()
        if exchange is not None:
            exchange.info["requestStart"] = _now_ms()
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> Any:
        exchange: Optional[_Exchange] = getattr(_local, "exchange", None)
        if exchange is not None:
            info = exchange.info
            info["requestEnd"] = _now_ms()
            sock = self.sock
            with self._ft.lock:
                if exchange.aborted:
                    raise _Aborted()
                exchange.sock = sock
            known_sock, address = self._ft_peer
            if known_sock is not sock:
                try:
                    peer = sock.getpeername()
                    address = (peer[0], peer[1])
                except (OSError, AttributeError, IndexError):
                    address = None
                self._ft_peer = (sock, address)
            if address is not None:
                info["peerIP"], info["port"] = address
        response = super().getresponse()  # type: ignore[misc]
        if exchange is not None:
            exchange.info["responseStart"] = _now_ms()
        return response

    def _ft_attach(self) -> Optional["_Exchange"]:
        exchange: Optional[_Exchange] = getattr(_local, "exchange", None)
        if exchange is not None:
            with self._ft.lock:
                if exchange.aborted:
                    raise _Aborted()
                self._ft_owner = exchange
                exchange.conn = self  # type: ignore[assignment]
                if self.sock is not None:
                    exchange.sock = self.sock
        return exchange


class _PoolMixin:
    """Counts checked-out connections; clears ownership when one comes back."""

    _ft: "Urllib3Transport"

    def _get_conn(self, timeout: Optional[float] = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        with self._ft.lock:
            self._ft.checked_out += 1
        return conn

    def _put_conn(self, conn: Any) -> None:
        with self._ft.lock:
            self._ft.checked_out -= 1
            if conn is not None:
                conn._ft_owner = None
        super()._put_conn(conn)  # type: ignore[misc]

    def _new_conn(self) -> Any:
        tls = getattr(self, "_ft_tls", None)
        if tls is not None and self.conn_kw.get("ssl_context") is None:  # type: ignore[attr-defined]
            # made on the first HTTPS connection: loading the system store costs ~0.2 s
            self.conn_kw["ssl_context"] = self._ft.ssl_context(tls)  # type: ignore[attr-defined]
        return super()._new_conn()  # type: ignore[misc]

    def _validate_conn(self, conn: Any) -> None:
        # HTTPSConnectionPool's version also warns (InsecureRequestWarning) when verification is
        # off on purpose; the host asked for it in config, so connect without the warning.
        HTTPConnectionPool._validate_conn(self, conn)  # type: ignore[arg-type]
        if conn.is_closed:
            conn.connect()


# -- one exchange ------------------------------------------------------------------------------


class _Exchange:
    """One request/response on a worker; `abort()` from the loop thread."""

    __slots__ = (
        "transport",
        "request",
        "sink",
        "manager",
        "aborted",
        "conn",
        "sock",
        "info",
        "fresh",
        "sent",
    )

    def __init__(
        self, transport: "Urllib3Transport", request: HttpRequest, sink: HttpSink, manager: Any
    ) -> None:
        self.transport = transport
        self.request = request
        self.sink = sink
        self.manager = manager
        self.aborted = False
        self.conn: Optional[HTTPConnection] = None
        self.sock: Optional[socket.socket] = None
        self.info: Dict[str, Any] = {}
        self.fresh = False
        self.sent = 0

    def abort(self) -> None:
        with self.transport.lock:
            if self.aborted:
                return
            self.aborted = True
            conn, sock = self.conn, self.sock
            if conn is None or conn._ft_owner is not self:  # type: ignore[attr-defined]
                return
            if sock is not None:  # under the lock: the connection cannot change hands meanwhile
                try:
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)  # never blocks
                except (OSError, ValueError):
                    pass

    # -- worker thread --------------------------------------------------------------------------

    def run(self) -> None:
        if self.aborted:
            return
        _local.exchange = self
        try:
            self._run()
        except BaseException as error:  # noqa: BLE001 - reported to the sink, never lost
            if not self.aborted:
                try:
                    self.sink.error(map_error(error))
                except Exception:
                    logger.exception("ftcore.urllib3: the sink raised on error")
        finally:
            _local.exchange = None

    def _run(self) -> None:
        request, sink, info = self.request, self.sink, self.info
        body: Any = request.body
        headers = dict(request.headers)
        if body is not None and not isinstance(body, (bytes, bytearray, memoryview)):
            if request.body_length is not None:
                for name in [
                    n for n in headers if n.lower() in ("content-length", "transfer-encoding")
                ]:
                    del headers[name]
                headers["Content-Length"] = str(request.body_length)
            body = self._counting(body)
        seconds = request.timeout
        if seconds is None:
            timeout = urllib3.Timeout(connect=None, read=None)
        else:
            seconds += TIMEOUT_MARGIN
            timeout = urllib3.Timeout(connect=seconds, read=seconds)
        pool, target = self.transport.route(self.manager, request.url)
        response = pool.urlopen(
            request.method,
            target,
            body=body,
            headers=headers,
            redirect=False,
            assert_same_host=False,
            retries=False,
            timeout=timeout,
            preload_content=False,
            decode_content=request.decode_content,
            release_conn=False,
        )
        try:
            if isinstance(body, (bytes, bytearray, memoryview)) and body:
                self.sent = len(body)
                sink.sent(self.sent)
            info["socketReused"] = not self.fresh
            sink.headers(response.status, list(response.headers.items()), dict(info))
            received = self._read_body(response)
        except BaseException:
            self._drop(response)
            raise
        info["receivedBytedCount"] = received
        response.release_conn()
        info["responseEnd"] = _now_ms()
        info["sendBytesCount"] = self.sent
        if not self.aborted:
            sink.end(info)

    def _read_body(self, response: Any) -> int:
        """Hand the body to the sink as it arrives; return the bytes read off the wire.

        A body without Content-Encoding is read with `read1` of the http.client response
        under urllib3's: urllib3's own `read1` does enough bookkeeping per piece to double a
        download's user CPU. (Not `readinto`: http.client's fills the whole buffer before
        it returns, so a slow body would reach the sink late.) An encoded body goes through
        urllib3's `read1`, which decodes it.
        """
        sink = self.sink
        raw = getattr(response, "_fp", None)
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity") or not isinstance(raw, http.client.HTTPResponse):
            read = response.read1 if hasattr(response, "read1") else response.read
            while True:
                data = read(READ_SIZE)
                if not data:
                    return int(response.tell())
                sink.body(data)
        if raw.length is not None and raw.length > READ_SIZE and not raw.chunked:
            received = self._read_into_buffer(raw)
        else:
            received = 0
            while True:
                data = raw.read1(READ_SIZE)
                if not data:
                    break
                received += len(data)
                sink.body(data)
        raw.close()  # as urllib3 does at the end: http.client's read1 leaves it open
        if raw.length:  # http.client ends a short body quietly; urllib3 would raise this
            raise http.client.IncompleteRead(b"", raw.length)
        return received

    def _read_into_buffer(self, raw: http.client.HTTPResponse) -> int:
        """A long body of known length, read into one reused buffer: each `readinto1` is one
        recv of whatever has arrived (so a slow body still reaches the sink piece by piece),
        without a bytes object per piece. `raw.length` is kept current as http.client does."""
        buffer = getattr(_local, "buffer", None)
        if buffer is None:
            buffer = _local.buffer = memoryview(bytearray(BIG_READ_SIZE))
        readinto1 = raw.fp.readinto1  # type: ignore[union-attr]
        body = self.sink.body
        length = remaining = raw.length or 0
        while remaining:
            n = readinto1(buffer[: min(remaining, BIG_READ_SIZE)])
            if not n:
                break  # the peer closed early: the caller raises IncompleteRead
            remaining -= n
            raw.length = remaining
            body(buffer[:n])
        return length - remaining

    def _counting(self, body: Iterable[bytes]) -> Iterator[bytes]:
        sink = self.sink
        for chunk in body:
            yield chunk
            self.sent += len(chunk)  # runs when the next chunk is pulled: this one was sent
            sink.sent(len(chunk))

    def _drop(self, response: Any) -> None:
        """Close the connection so its socket is never reused, then give the slot back."""
        conn = response.connection
        try:
            response.close()
        except Exception:  # noqa: BLE001 - closing a broken response
            pass
        if conn is not None:
            conn.close()
        response.release_conn()


def _route(manager: Any, url: str) -> Tuple[Any, Dict[str, Any], str]:
    """(pool key, pool context, request target) of `url`, as `PoolManager.urlopen` and
    `connection_from_host` work them out."""
    parts = parse_url(url)
    if not parts.host:
        raise u3.LocationValueError("No host specified.")
    scheme = parts.scheme or "http"
    context = dict(manager.connection_pool_kw)
    context["scheme"] = scheme
    context["port"] = parts.port or port_by_scheme.get(scheme.lower(), 80)
    context["host"] = parts.host
    make_key = manager.key_fn_by_scheme.get(scheme.lower())
    if make_key is None:
        raise u3.URLSchemeUnknown(scheme)
    pool_key = make_key(context)
    return pool_key, context, parts.request_uri


# -- error mapping -----------------------------------------------------------------------------


def _chain(error: BaseException) -> List[BaseException]:
    seen: List[BaseException] = []
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is s for s in seen) or len(seen) > 20:
            continue
        seen.append(current)
        pending.extend(
            arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)
        )
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
        pending.append(current.__context__)  # type: ignore[arg-type]
        pending.append(current.__cause__)  # type: ignore[arg-type]
    return seen


def _ssl_reason(error: ssl.SSLError) -> str:
    reason = getattr(error, "reason", None) or ""
    detail = getattr(error, "verify_message", None) or ""
    if not reason and not detail:
        return str(error)
    return ("%s %s" % (reason, detail)).strip()


def map_error(error: BaseException) -> FtError:
    """The errno and reason of a urllib3/socket/http.client failure."""
    if isinstance(error, FtError):
        return error
    chain = _chain(error)

    def find(*kinds: type) -> Optional[BaseException]:
        for item in chain:
            if isinstance(item, kinds):
                return item
        return None

    found = find(ssl.CertificateError, ssl.SSLError)
    if found is not None and not isinstance(found, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        if isinstance(found, ssl.SSLError):
            return FtError(Errno.TLS, "ssl error: %s" % _ssl_reason(found))
        return FtError(Errno.TLS, "ssl error: %s" % found)
    if find(socket.gaierror, u3.NameResolutionError):
        return FtError(Errno.NAME_NOT_RESOLVED)
    if find(ConnectionRefusedError):
        return FtError(Errno.CONNECTION_REFUSED)
    if find(socket.timeout, u3.ReadTimeoutError, u3.ConnectTimeoutError) and not find(
        u3.NewConnectionError
    ):
        return FtError(Errno.TIMEOUT)
    found = find(http.client.LineTooLong)
    if found is not None or any(
        "more than" in str(item) and "headers" in str(item) for item in chain
    ):
        return FtError(Errno.RESPONSE_TOO_LARGE, "response header too large")
    found = find(http.client.IncompleteRead, u3.IncompleteRead)
    if found is not None:
        return FtError(Errno.CONNECTION_RESET, "connection closed early: short body")
    if find(http.client.RemoteDisconnected):
        return FtError(Errno.CONNECTION_RESET, "connection closed without response")
    found = find(http.client.BadStatusLine, http.client.UnknownProtocol, u3.HeaderParsingError)
    if found is not None:
        return FtError(Errno.BAD_RESPONSE, "bad response: malformed status line or headers")
    if find(ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return FtError(Errno.CONNECTION_RESET)
    if find(u3.ProtocolError, ConnectionError, http.client.HTTPException):
        return FtError(Errno.CONNECTION_RESET, "connection reset: %s" % error)
    if find(u3.LocationValueError, u3.LocationParseError):
        return FtError(Errno.INVALID_URL)
    return FtError(Errno.NETWORK, "network error: %s" % (error,))


# -- the worker pool ---------------------------------------------------------------------------


class _Workers:
    """Named daemon threads running exchanges; started on demand, joined at close.

    `size` threads serve live exchanges (the core's slots never run more); up to `size` more
    may start while aborted exchanges are still unwinding (a blocked connect ends only at its
    timeout), so a new task never waits behind one.
    """

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._jobs: "queue.SimpleQueue[Optional[_Exchange]]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: List[threading.Thread] = []
        self._busy = 0
        self._idle = threading.Condition(self._lock)
        self._closed = False

    def submit(self, exchange: _Exchange) -> None:
        with self._lock:
            if self._closed:
                raise FtError(Errno.TRANSPORT_UNAVAILABLE, "the HTTP transport is closed")
            self._busy += 1
            if self._busy > len(self._threads) and len(self._threads) < 2 * self._size:
                thread = threading.Thread(
                    target=self._work,
                    name="%s-%d" % (self._name, len(self._threads) + 1),
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
        self._jobs.put(exchange)

    def _work(self) -> None:
        jobs, lock = self._jobs, self._lock
        while True:
            exchange = jobs.get()
            if exchange is None:
                return
            try:
                exchange.run()
            except BaseException:  # noqa: BLE001 - never let a worker die
                logger.exception("ftcore.urllib3: exchange crashed")
            finally:
                with lock:
                    self._busy -= 1
                    if not self._busy:
                        self._idle.notify_all()

    def wait_idle(self, timeout: Optional[float] = None) -> bool:
        """Block until no exchange is running or queued; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._busy, timeout)

    def close(self) -> List[threading.Thread]:
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        current = threading.current_thread()
        deadline = time.monotonic() + JOIN_TIMEOUT  # one wait for all, not one per thread
        for thread in threads:
            if thread is not current:
                thread.join(max(0.0, deadline - time.monotonic()))
        return [thread for thread in threads if thread.is_alive()]


# -- the transport -----------------------------------------------------------------------------


class Urllib3Transport:
    """`ftcore.transports.HttpTransport` on urllib3 2.x."""

    def __init__(self, max_concurrent: int = 10) -> None:
        self.lock = threading.Lock()
        self.checked_out = 0
        self._size = max(1, max_concurrent)
        self._managers: Dict[TlsSettings, Any] = {}
        self._workers = _Workers(self._size, "ftcore-http")
        transport = self
        conn_attrs: Dict[str, Any] = {"_ft": transport}
        self._http_conn = type("FtHTTPConnection", (_ConnMixin, HTTPConnection), dict(conn_attrs))
        self._https_conn = type(
            "FtHTTPSConnection", (_ConnMixin, HTTPSConnection), dict(conn_attrs)
        )
        self._http_pool = type(
            "FtHTTPConnectionPool",
            (_PoolMixin, HTTPConnectionPool),
            {"_ft": transport, "ConnectionCls": self._http_conn},
        )
        self._contexts: Dict[TlsSettings, ssl.SSLContext] = {}
        self._routes = functools.lru_cache(maxsize=ROUTE_CACHE_SIZE)(_route)

    def route(self, manager: Any, url: str) -> Tuple[HTTPConnectionPool, str]:
        """The pool and request target `manager.urlopen(url)` would use; any thread.

        Parsing the URL and building the pool key cost more than the rest of a small
        keep-alive request on the client, so both are cached per URL; the pool itself is
        still looked up in the manager, which may have closed and replaced it since.
        """
        pool_key, context, target = self._routes(manager, url)
        # a copy: the manager consumes the context when it makes a new pool
        return manager.connection_from_pool_key(pool_key, dict(context)), target

    def _manager(self, tls: TlsSettings) -> Any:
        manager = self._managers.get(tls)
        if manager is not None:
            return manager
        with self.lock:
            manager = self._managers.get(tls)
            if manager is None:
                https_pool = type(
                    "FtHTTPSConnectionPool",
                    (_PoolMixin, HTTPSConnectionPool),
                    {"_ft": self, "_ft_tls": tls, "ConnectionCls": self._https_conn},
                )
                manager = urllib3.PoolManager(
                    num_pools=32,
                    maxsize=self._size,
                    block=False,
                    retries=False,
                    cert_reqs="CERT_REQUIRED" if tls.verify else "CERT_NONE",
                )
                manager.pool_classes_by_scheme = {"http": self._http_pool, "https": https_pool}
                self._managers[tls] = manager
            return manager

    def ssl_context(self, tls: TlsSettings) -> ssl.SSLContext:
        """The client context for `tls`: verified against `cafile` or the system store."""
        with self.lock:
            context = self._contexts.get(tls)
            if context is None:
                if not tls.verify:
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                elif tls.cafile:
                    context = ssl.create_default_context(cafile=tls.cafile)
                else:
                    context = ssl.create_default_context()
                self._contexts[tls] = context
            return context

    def start(self, request: HttpRequest, sink: HttpSink) -> _Exchange:
        exchange = _Exchange(self, request, sink, self._manager(request.tls or _VERIFIED))
        self._workers.submit(exchange)
        return exchange

    def wait_idle(self, timeout: Optional[float] = None) -> bool:
        """Block until every exchange, aborted ones included, has left its worker (tests,
        graceful shutdown); then `checked_out` is 0. False on timeout."""
        return self._workers.wait_idle(timeout)

    def close(self) -> None:
        alive = self._workers.close()
        if alive:
            logger.warning("ftcore.urllib3: worker threads still running at close: %s", alive)
        for manager in list(self._managers.values()):
            # close every pool now: urllib3 >= 2.8 no longer closes pools in clear() but in a
            # GC finalizer, so idle keep-alive sockets would outlive the runtime
            for key in list(manager.pools.keys()):
                pool = manager.pools.get(key)
                if pool is not None:
                    pool.close()
            manager.clear()
