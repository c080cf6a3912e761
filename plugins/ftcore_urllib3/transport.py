"""The urllib3 HTTP transport: urllib3 dials and pools; the runtime's loop runs the exchanges.

One `PoolManager` per TLS setting (keep-alive; urllib3's retries and redirects off: the core
follows redirects). A request takes a connection from the pool `PoolManager.urlopen` would
pick (found through a per-URL cache). A connection without a socket is opened by urllib3 on a
worker thread (DNS, TCP and the TLS handshake block), verified against the system store or
`tls.cafile`; everything after that is an `exchange.Exchange` on the loop thread: the socket
becomes a stream of the runtime's stream layer (`runtime.net`: the read pump, the buffered
writer, TLS reads and writes), the request is written as the kernel takes it, the response is
parsed as it arrives (`h1`), and the core hears each event without a thread hop. A keep-alive
connection is given back before the core hears `end`. TLS contexts are the stream layer's
(one per settings per runtime, shared with WebSocket and TCP).

Idle keep-alive connections. Their streams stay open and watched, with `_IdleWatch` as
handler (a server that closes one gets it closed at once), so a request costs no epoll_ctl
calls. The last connection given back on a route is parked here rather than put back in
urllib3's pool, and the route's next request takes it without the pool's lookup, lock and
liveness poll (the idle watcher already knows); other connections go back to the pool.
Measured against dialling with the stream layer's own `Dial` (no pool), urllib3's pool and
dial were kept: see docs/transports.rst.

Abort (loop thread) closes the connection at once. An abort during DNS, TCP connect or the
TLS handshake shuts the socket down if there is one yet (the handshake then fails at once);
a connect in progress cannot be interrupted, so that worker ends at its connect timeout (the
task itself is settled at once by the core). Ownership of a connection being dialled is
tracked under one lock, so a late abort never touches a connection another exchange uses.

Timeouts: the core's deadline timer is the authority; a dial gets the seconds left plus a
small margin as its connect timeout, so blocked workers still end by themselves.

Profile: `connectStart`/`connectEnd` around the TCP connect, `SSLconnectionStart`/`End`
around the TLS handshake (0 for plain HTTP or a reused connection), `requestStart`/
`requestEnd` around sending, `responseStart` once the head is parsed, `responseEnd`;
`socketReused`, `peerIP`/`port` from the socket, and byte counts as on the wire
(`sendBytesCount`: the request's head and body written; `receivedBytedCount`: the response's
head, framing and body read, before content decoding). DNS time is inside
connectStart..connectEnd. A request marked `fresh_connection` (the core's retry after a stale
keep-alive connection) closes the pooled connection it was given and dials a new one.
"""

from __future__ import annotations

import functools
import itertools
import logging
import queue
import socket
import ssl
import threading
import time
from typing import Any, Dict, List, Optional, Set, Tuple

import urllib3
from urllib3 import exceptions as u3
from urllib3.connection import HTTPConnection, HTTPSConnection, port_by_scheme
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.url import parse_url

from ftcore._net import Net, Stream
from ftcore.errors import Errno, FtError
from ftcore.transports import HttpRequest, HttpSink, TlsSettings

from .errors import map_error
from .exchange import Exchange, now_ms

__all__ = ["Urllib3Transport"]

logger = logging.getLogger("ftcore.urllib3")

ROUTE_CACHE_SIZE = 512  # URLs whose pool key, request target and Host are kept
TIMEOUT_MARGIN = 0.25  # seconds beyond the core's deadline: the core's timer fires first
JOIN_TIMEOUT = 5.0

_local = threading.local()
_VERIFIED = TlsSettings()  # a request built outside the core (the core fills `tls` in)


class _Aborted(Exception):
    """The exchange was aborted while its connection was being opened."""


# -- connections that report to the exchange dialling them on this thread ---------------------


class _ConnMixin:
    """Timing and abort checks while urllib3 opens a connection, for HTTP(S)Connection."""

    _ft: "Urllib3Transport"
    _ft_tls: Optional[TlsSettings] = None  # set on HTTPS connections by their pool
    _ft_peer: Optional[Tuple[str, int]] = None  # (ip, port), asked once per socket (`new_stream`)
    _ft_stream: Optional[Stream] = None  # the socket on the loop, from the first exchange on
    _ft_idle: Any = None  # the stream's handler while the connection waits in its pool
    sock: Any
    ssl_context: Optional[ssl.SSLContext]

    def close(self) -> None:
        """Close the stream first (it takes the socket off the loop: a closed descriptor left
        in the selector would shadow the next socket given its number)."""
        stream, self._ft_stream = self._ft_stream, None
        if stream is not None:
            loop = self._ft.loop
            if loop.closed or loop.thread_id in (None, threading.get_ident()):
                stream.close_now()
            else:  # another thread (a pool's GC finalizer): the loop closes it
                self.sock = None
                loop.call_soon_threadsafe(stream.close_now)
        super().close()  # type: ignore[misc]

    def _new_conn(self) -> socket.socket:
        exchange: Optional[Exchange] = getattr(_local, "exchange", None)
        start = now_ms()
        sock = super()._new_conn()  # type: ignore[misc]
        if exchange is not None:
            info = exchange.info
            info["connectStart"] = start
            info["connectEnd"] = end = now_ms()
            info["SSLconnectionStart"] = end if isinstance(self, HTTPSConnection) else 0
            with self._ft.lock:
                if exchange.aborted:
                    sock.close()
                    raise _Aborted()
                # a second descriptor of the socket: the TLS wrap detaches `sock` itself
                exchange.dial_handle = sock.dup()
        return sock

    def connect(self) -> None:
        tls = self._ft_tls
        if tls is not None and getattr(self, "ssl_context", None) is None:
            # made by the first HTTPS dial: loading the system store costs ~0.2 s
            self.ssl_context = self._ft.net.tls.get(tls)
        super().connect()  # type: ignore[misc]
        exchange: Optional[Exchange] = getattr(_local, "exchange", None)
        if exchange is not None and isinstance(self, HTTPSConnection):
            exchange.info["SSLconnectionEnd"] = now_ms()


class _PoolMixin:
    """Counts checked-out connections; tells HTTPS connections their TLS settings."""

    _ft: "Urllib3Transport"

    def _get_conn(self, timeout: Optional[float] = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        self._ft.checked_out += 1
        return conn

    def _put_conn(self, conn: Any) -> None:
        self._ft.checked_out -= 1
        super()._put_conn(conn)  # type: ignore[misc]

    def _new_conn(self) -> Any:
        conn = super()._new_conn()  # type: ignore[misc]
        conn._ft_tls = getattr(self, "_ft_tls", None)
        return conn


class _IdleWatch:
    """The stream handler of a pooled connection between exchanges: anything the server
    sends then (its EOF, a reset, bytes no request asked for) ends the connection now, so
    the next request dials instead of meeting a stale one. A TLS record without data (a TLS
    1.3 session ticket) never reaches it."""

    __slots__ = ("conn",)

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def data_received(self, data: memoryview) -> None:
        self.conn.close()

    def eof_received(self) -> None:
        self.conn.close()

    def connection_lost(self, error: BaseException) -> None:
        self.conn.close()

    def pause_writing(self) -> None:
        """Nothing is written while idle."""

    def resume_writing(self) -> None:
        """Nothing is written while idle."""


def _route(manager: Any, url: str) -> Tuple[Any, Dict[str, Any], str, str]:
    """(pool key, pool context, request target, Host header) of `url`, as
    `PoolManager.urlopen` and `connection_from_host` work them out."""
    parts = parse_url(url)
    if not parts.host:
        raise u3.LocationValueError("No host specified.")
    scheme = (parts.scheme or "http").lower()
    default_port = port_by_scheme.get(scheme, 80)
    context = dict(manager.connection_pool_kw)
    context["scheme"] = scheme
    context["port"] = parts.port or default_port
    context["host"] = parts.host
    make_key = manager.key_fn_by_scheme.get(scheme)
    if make_key is None:
        raise u3.URLSchemeUnknown(scheme)
    pool_key = make_key(context)
    host = parts.host if parts.port in (None, default_port) else "%s:%d" % (parts.host, parts.port)
    return pool_key, context, parts.request_uri, host


def _peer_address(sock: Any) -> Optional[Tuple[str, int]]:
    """(ip, port) of the peer, for `peerIP`/`port`; None if the kernel cannot tell."""
    try:
        peer = sock.getpeername()
        return (peer[0], peer[1])
    except (OSError, AttributeError, IndexError):
        return None


# -- dialling on workers ------------------------------------------------------------------------


class _Dialers:
    """Named daemon threads opening connections; started on demand, joined at close.

    `size` threads serve live dials (the core's slots never run more); up to `size` more may
    start while aborted dials are still unwinding (a blocked connect ends only at its timeout),
    so a new task never waits behind one.
    """

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._jobs: "queue.SimpleQueue[Optional[Exchange]]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: List[threading.Thread] = []
        self._busy = 0
        self._closed = False

    def submit(self, exchange: Exchange) -> None:
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
        jobs = self._jobs
        while True:
            exchange = jobs.get()
            if exchange is None:
                return
            _local.exchange = exchange
            try:
                error = exchange.dial()
            finally:
                _local.exchange = None
                with exchange.transport.lock:
                    handle, exchange.dial_handle = exchange.dial_handle, None
                if handle is not None:
                    handle.close()
                with self._lock:
                    self._busy -= 1
            exchange.transport.dialed(exchange, error)

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
    """`ftcore.transports.HttpTransport` on urllib3 2.x and the runtime's loop."""

    timeout_margin = TIMEOUT_MARGIN

    def __init__(self, net: Net, max_concurrent: int = 10) -> None:
        self.net = net
        self.loop = net.loop
        self.lock = threading.Lock()
        self.checked_out = 0
        self.user_agent = "python-urllib3/%s" % urllib3.__version__
        self._size = max(1, max_concurrent)
        self._managers: Dict[TlsSettings, Any] = {}
        self._dialers = _Dialers(self._size, "ftcore-http")
        self._live: Set[Exchange] = set()
        # per route (the manager of the TLS settings, pool key): the connections exchanges
        # gave back, the last one on top, kept out of urllib3's pool (up to the pool's size)
        # so that the next requests skip the pool lookup, get and put, ten in flight as well
        # as one. The manager stands for its settings: it hashes by identity, in C, where the
        # settings' dataclass hash runs Python at every lookup. A route is listed only while
        # a connection is parked for it.
        self._parked: Dict[Tuple[Any, Any], List[Tuple[Any, Any]]] = {}
        self._idle = threading.Condition(self.lock)
        self._idle_waiters = 0  # threads in `wait_idle`: without any, nobody is notified
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
        self._routes = functools.lru_cache(maxsize=ROUTE_CACHE_SIZE)(_route)

    # -- HttpTransport --------------------------------------------------------------------------

    def start(self, request: HttpRequest, sink: HttpSink) -> Exchange:
        """Loop thread: take a connection and run the exchange on it."""
        tls = request.tls or _VERIFIED
        manager = self._manager(tls)
        try:
            pool_key, context, target, host = self._routes(manager, request.url)
            route = (manager, pool_key)
            parked = self._parked.get(route)
            if parked is None:
                # a copy: the manager consumes the context when it makes a new pool
                pool, conn = manager.connection_from_pool_key(pool_key, dict(context)), None
            else:
                pool, conn = parked.pop()
                if not parked:
                    del self._parked[route]
                self.checked_out += 1
        except Exception as error:  # noqa: BLE001 - a URL urllib3 refuses
            raise map_error(error) from None
        exchange = Exchange(self, request, sink, pool, target, host)
        exchange.route = route
        with self.lock:
            self._live.add(exchange)
        try:
            exchange.start(conn)
        except FtError:
            exchange.release(reuse=False)
            raise
        except Exception as error:  # noqa: BLE001 - e.g. a pool closed meanwhile
            exchange.release(reuse=False)
            raise map_error(error) from None
        return exchange

    def close(self) -> None:
        alive = self._dialers.close()
        if alive:
            logger.warning("ftcore.urllib3: dialling threads still running at close: %s", alive)
        with self.lock:
            live = list(self._live)
        for exchange in live:  # the runtime's tasks have ended: nothing reads these any more
            if exchange.conn is not None:
                exchange.conn.close()
        parked, self._parked = list(self._parked.values()), {}
        for _, conn in itertools.chain.from_iterable(parked):
            conn.close()
        for manager in list(self._managers.values()):
            # close every pool now: urllib3 >= 2.8 no longer closes pools in clear() but in a
            # GC finalizer, so idle keep-alive sockets would outlive the runtime
            for key in list(manager.pools.keys()):
                pool = manager.pools.get(key)
                if pool is not None:
                    pool.close()
            manager.clear()

    def wait_idle(self, timeout: Optional[float] = None) -> bool:
        """Block until every exchange, aborted ones included, has given its connection back
        (tests, graceful shutdown); then `checked_out` is 0. False on timeout."""
        with self.lock:
            self._idle_waiters += 1
            try:
                return self._idle.wait_for(lambda: not self._live, timeout)
            finally:
                self._idle_waiters -= 1

    # -- for Exchange ---------------------------------------------------------------------------

    def dial(self, exchange: Exchange) -> None:
        self._dialers.submit(exchange)

    def dialed(self, exchange: Exchange, error: Optional[BaseException]) -> None:
        """Worker thread: hand the dial's outcome to the loop."""
        try:
            self.loop.call_soon_threadsafe(exchange.dialed, error)
        except Exception:  # noqa: BLE001 - the loop is gone: nobody waits for this exchange
            exchange.conn.close()

    def interrupt_dial(self, exchange: Exchange) -> None:
        """Loop thread: shut down the socket being opened, if there is one yet; the dial then
        fails and `Exchange.dialed` gives the connection back closed."""
        with self.lock:
            handle = exchange.dial_handle
            if handle is not None:
                try:
                    handle.shutdown(socket.SHUT_RDWR)  # never blocks; ends the handshake too
                except OSError:
                    pass

    def new_stream(self, conn: Any, exchange: Exchange) -> Stream:
        """Loop thread: the stream of a connection urllib3 has just opened, for its whole life
        in the pool. The exchange writes each chunk once the last one left (no high water)
        and still reads the answer after a write failed (a server refusing the body)."""
        conn.sock.setblocking(False)
        stream = self.net.stream(
            conn.sock, exchange, high_water=0, low_water=0, keep_reading_on_write_error=True
        )
        conn._ft_stream = stream
        conn._ft_idle = _IdleWatch(conn)
        conn._ft_peer = _peer_address(conn.sock)
        return stream

    @staticmethod
    def take_stream(conn: Any, exchange: Exchange) -> Stream:
        """Loop thread: the stream of a pooled connection, handed to its next exchange."""
        stream: Stream = conn._ft_stream
        stream.handler = exchange
        return stream

    def give_back(self, exchange: Exchange, reuse: bool) -> None:
        """Loop thread: the exchange is over; its connection is closed unless `reuse`. A
        reused one's stream goes on watching the socket (`_IdleWatch`) and is parked for the
        route's next requests, or goes back to the pool if the route has a pool's worth parked
        already."""
        conn, pool, route = exchange.conn, exchange.pool, exchange.route
        if conn is not None:
            if not reuse:
                conn.close()
                pool._put_conn(None)
            else:
                stream = conn._ft_stream
                stream.handler = conn._ft_idle
                stream.resume_reading()  # a streaming consumer may have paused it
                if len(self._parked.get(route, ())) >= self._size or pool.pool is None:
                    pool._put_conn(conn)  # a pool's worth parked, or the pool was closed
                else:
                    self._parked.setdefault(route, []).append((pool, conn))
                    self.checked_out -= 1
        with self.lock:
            self._live.discard(exchange)
            if not self._live and self._idle_waiters:
                self._idle.notify_all()

    # -- pools ----------------------------------------------------------------------------------

    def _manager(self, tls: TlsSettings) -> Any:
        manager = self._managers.get(tls)
        if manager is not None:
            return manager
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
