"""What the core hands a transport, and what a transport reports back.

A transport moves bytes; it knows nothing of errMsg, dataType, redirects, domain lists or
progress. Write one by implementing the protocol classes below and returning an instance
from the matching factory hook in `ftcore.hookspecs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Protocol, Tuple, Union


__all__ = [
    "TlsSettings",
    "HttpRequest",
    "HttpSink",
    "HttpExchange",
    "PausableHttpExchange",
    "HttpTransport",
    "Header",
    "WsConnectRequest",
    "WsEvents",
    "WsConnection",
    "PausableWsConnection",
    "WsTransport",
    "UdpEvents",
    "UdpEndpoint",
    "UdpTransport",
    "TcpConnectRequest",
    "TcpEvents",
    "TcpConnection",
    "TcpTransport",
]

Header = Tuple[str, str]
Body = Union[bytes, Iterable[bytes], None]


@dataclass(frozen=True)
class TlsSettings:
    """`config["tls"]`: verification is on unless the host turns it off."""

    verify: bool = True
    cafile: Optional[str] = None

    def client_context(self) -> Any:
        """A new `ssl.SSLContext` for clients: verified against `cafile` or the system store
        (loading the store costs ~0.2 s: keep the context, one per settings)."""
        import ssl

        if not self.verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        return ssl.create_default_context(cafile=self.cafile)


@dataclass
class HttpRequest:
    """One HTTP exchange (one hop of a redirect chain), already validated and encoded.

    `body` is bytes, or an iterable of bytes chunks whose total is `body_length` (uploads
    stream from disk this way; each iteration starts from the first byte). `timeout` is the
    seconds left at the moment the request was handed over (None: no limit). `tls` None means
    the runtime's `config["tls"]`; the core fills it in before a transport sees the request.
    `fresh_connection` is set when the core retries after a stale keep-alive connection: a
    transport that pools connections must open a new one for this request.
    """

    method: str
    url: str
    headers: List[Header]
    body: Body = None
    body_length: Optional[int] = None
    timeout: Optional[float] = None
    tls: Optional[TlsSettings] = None
    decode_content: bool = True
    fresh_connection: bool = False


class HttpSink(Protocol):
    """The core's receiver for one exchange.

    A transport calls these in this order, never two at once: `sent` (zero or more times, as
    request body bytes leave), `headers` (once), `body` (zero or more times), then exactly one
    of `end` or `error`. Nothing may be called after `end`/`error`. A server may answer before
    it has read the whole body: `sent` calls may then continue after `headers` (RFC 9112: after
    an early 2xx/3xx the body is sent in full before `end`; after an early status >= 400, or
    an answer that closes the connection, the rest is not sent and `sent` stops).
    A transport driven by the runtime's loop calls them on the loop thread and each is handled
    at once (calls made from inside `start()` wait for the next loop pass); a transport with
    its own threads may call them from those, and the core hands them to the loop.
    Calls racing `HttpExchange.abort()` are harmless: the core's sink drops whatever arrives
    once the exchange was aborted, so a transport need not lock around them. A chunk passed
    to `body` may be a view of a buffer the transport reuses: the sink copies what it keeps
    before returning. If `body` raises (the task failed, e.g. a size limit, or was aborted),
    the transport drops the connection (never reuses it) and calls nothing more.
    From a thread other than the loop's, `body` may block briefly (the core may wait until
    its loop has seen the headers).
    """

    def sent(self, nbytes: int) -> None:
        """`nbytes` more of the request body were written (heads excluded): upload progress."""

    def headers(self, status: int, headers: List[Header], info: Dict[str, Any]) -> None:
        """`info`: what the connection did, for `profile` (`peerIP`, `port`, `socketReused`,
        `SSLconnectionStart`/`End`, `connectStart`/`End`, `requestStart`/`End`, as ms floats)."""

    def body(self, chunk: Any) -> None: ...

    def end(self, info: Dict[str, Any]) -> None:
        """`info` as for `headers`, plus `responseEnd`, `sendBytesCount` (bytes of the request
        written: head and body) and `receivedBytedCount` (bytes of the response read: head,
        framing and body as on the wire, before content decoding). Call it once the connection
        is back in the transport's pool, so a following request can reuse it."""

    def error(self, error: Exception, info: Optional[Dict[str, Any]] = None) -> None:
        """An `ftcore.FtError` with its errno, or any exception (reported as a network error).

        `info` gives the facts of the failed exchange the core's retry rule needs:
        `socketReused` (the request went out on a pooled keep-alive connection) and
        `receivedBytedCount` (response bytes read, 0 when none arrived), and may also hold
        `sendBytesCount`. When the connection was reused, nothing of the response arrived, and
        the error is errno 600015 (the peer closed the connection, EOF, or reset it), the
        core sends the request again, once, with `fresh_connection` set (API.md §11: the
        server closed an idle connection as the request went out). Without `info` the core
        never retries.
        """


class HttpExchange(Protocol):
    """A running exchange, as returned by `HttpTransport.start`."""

    def abort(self) -> None:
        """Drop the connection now, from the loop thread, without blocking: a worker blocked
        on it must wake up promptly, and the connection must never be reused."""


class PausableHttpExchange(HttpExchange, Protocol):
    """An exchange that can stop reading: optional, for flow control of streamed bodies.

    When a consumer of an `enableChunked` body (an iterator, API.md §10) lags more than
    `limits.streamBufferBytes` behind, the core calls `pause_reading()`; once it caught up,
    `resume_reading()`. Both run on the loop thread, never from inside a sink call other than
    `body`, and are no-ops once the exchange ended (or when already in that state).
    While paused the transport reads nothing more from the socket, so the kernel's receive
    buffer fills and the server's sends block: memory does not grow with the body. Bytes the
    transport already read may still be delivered to `body` after `pause_reading()` returns.

    An exchange without these methods cannot pause: the core then bounds what it buffers and
    fails the task with errno 600022 (`Errno.STREAM_BUFFER_FULL`) when a consumer lags past the
    limit.
    """

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class HttpTransport(Protocol):
    """Made once per runtime by `ftcore_http_transport_make`; closed with the runtime."""

    def start(self, request: HttpRequest, sink: HttpSink) -> HttpExchange: ...

    def close(self) -> None: ...


# -- WebSocket ---------------------------------------------------------------------------------


@dataclass
class WsConnectRequest:
    """One `connectSocket`, validated: the transport connects, handshakes and frames.

    `url` is `ws://` or `wss://`; `headers` are already checked (no CR/LF/NUL, no Referer).
    `timeout` (seconds) is informational: the core enforces the handshake timeout itself by
    calling `WsConnection.abort()` when it passes, so a transport need not time anything but
    its own closing handshake.
    """

    url: str
    headers: List[Header]
    protocols: List[str]
    deflate: bool = False
    tcp_nodelay: bool = False
    timeout: Optional[float] = None
    tls: TlsSettings = field(default_factory=TlsSettings)
    max_message_bytes: int = 16 * 2**20


class WsEvents(Protocol):
    """The core's receiver for one WebSocket; the transport calls it on the loop thread.

    Never from inside `WsTransport.connect()` itself: the first call comes from a later loop
    pass. Order: `opened` once (or `failed` if the handshake did not complete), `message` any
    number of times, `failed` when the connection failed (handshake refused, TLS, protocol
    error we detected), and `closed` exactly once at the very end, whatever ended the socket:
    the code of the close frame received, the code we sent when we failed the connection
    (1002, 1007, 1009...), or 1006 when no close frame was exchanged (a peer that drops the
    TCP connection gives `closed(1006, "")` without `failed`). Nothing is called after
    `closed`, nor after `WsConnection.abort()`.
    """

    def opened(self, headers: Dict[str, str], protocol: str) -> None: ...

    def message(self, data: Union[str, bytes]) -> None: ...

    def failed(self, error: Exception) -> None:
        """The connection failed (an `FtError` with its errno); `closed` follows."""

    def closed(self, code: int, reason: str) -> None: ...


class WsConnection(Protocol):
    """A WebSocket being opened or open, as returned by `WsTransport.connect`; loop thread."""

    def send(self, data: Union[str, bytes]) -> None:
        """Frame one message (text for str) and write it, or queue what the kernel did not
        take in the connection's write buffer; raise `FtError` if it cannot be sent (not open,
        connection lost, write buffer over its bound)."""

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; `closed` follows when it ends or times out."""

    def abort(self, code: Optional[int] = None) -> None:
        """Drop the TCP connection now (runtime close, handshake timeout); when `code` is
        given and the connection is open, a close frame with it is attempted first without
        waiting. The events hear nothing more: the core reports the close itself."""


class PausableWsConnection(WsConnection, Protocol):
    """A connection that can stop reading: optional, for flow control of message iterators
    (`SocketTask.iter_messages`). When a consumer lags more than `limits.streamBufferBytes`
    behind, the core calls `pause_reading()`, and `resume_reading()` once it caught up (loop
    thread; no-ops when already in that state or closed). A connection without them cannot
    pause: the lagging iterator then ends with errno 600022 (`Errno.STREAM_BUFFER_FULL`)."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class WsTransport(Protocol):
    def connect(self, request: WsConnectRequest, events: WsEvents) -> WsConnection:
        """Start connecting (never blocking the loop); raise `FtError` for a request that
        cannot be made (e.g. a header the handshake refuses): no connection is attempted."""

    def close(self) -> None:
        """Release every socket the transport still holds (lingering closes included)."""


# -- UDP ---------------------------------------------------------------------------------------


class UdpEvents(Protocol):
    """The core's receiver for one UDP socket; the transport calls it on the loop thread.

    Nothing is called once `UdpEndpoint.close()` has returned.
    """

    def message(self, data: bytes, remote: Tuple[Any, ...], local: Tuple[Any, ...]) -> None:
        """One whole datagram; `remote` and `local` are socket addresses (`(host, port, ...)`)."""

    def error(self, error: OSError, op: str) -> None:
        """A socket error found after the call that caused it: `op` is ``"recv"`` (e.g.
        ECONNREFUSED after an ICMP port unreachable on a connected socket), or ``"send"`` /
        ``"write"`` for a buffered datagram that failed when retried. The socket stays usable."""


class UdpEndpoint(Protocol):
    """One non-blocking datagram socket of the family it was opened with.

    Addresses are resolved socket addresses of that family (the core validates, resolves and
    applies the domain list first). `bind` may be called from any thread; every other method
    runs on the loop thread. A method raises `OSError` for a failure it sees at once; the
    socket stays usable. Nothing ever blocks the loop.
    """

    def bind(self, port: int) -> int:
        """Bind every interface on `port` (0: a free one) and return the port bound."""

    def start(self) -> None:
        """Begin delivering datagrams to `UdpEvents.message`; idempotent; loop thread."""

    def send(self, data: Any, address: Tuple[Any, ...]) -> None:
        """Send one whole datagram (bytes-like, at most 65,507 bytes) to `address`.

        `data` may be a view of the caller's buffer: copy it before returning if it must be
        kept (a datagram the kernel cannot take now is queued and retried when writable)."""

    def connect(self, address: Tuple[Any, ...]) -> None:
        """Fix the peer for `write` (and filter what is received to that peer)."""

    def write(self, data: Any) -> None:
        """`send` to the connected peer."""

    def set_ttl(self, ttl: int) -> None: ...

    def set_broadcast(self, enabled: bool) -> None: ...

    def close(self) -> None:
        """Stop reading and release the fd now (the reader leaves the loop first); idempotent."""


class UdpTransport(Protocol):
    def open(self, family: int, events: UdpEvents) -> UdpEndpoint:
        """A new endpoint (`socket.AF_INET` or `AF_INET6`); any thread; raises `OSError`."""

    def close(self) -> None:
        """The runtime is closing: close every endpoint still open."""


# -- TCP ---------------------------------------------------------------------------------------


@dataclass
class TcpConnectRequest:
    """One `TCPSocket.connect`, checked by the core (address, port, banned ports, domain list,
    creation limit): the transport dials and moves bytes.

    `host` is an IP literal (no brackets) or a host name to resolve off the loop; `family` is
    `socket.AF_INET` or `AF_INET6` (an IPv6 socket reaches IPv4 addresses as v4-mapped ones).
    `timeout` (seconds) is informational: the core times the connect out itself by calling
    `TcpConnection.abort()`. `high_water`/`low_water` are the write queue's watermarks (see
    `TcpConnection.watch_drain`).
    """

    host: str
    port: int
    family: int
    timeout: Optional[float] = None
    nodelay: bool = True
    keepalive: bool = True
    high_water: int = 2**20
    low_water: int = 256 * 2**10


class TcpEvents(Protocol):
    """The core's receiver for one TCP connection; the transport calls it on the loop thread,
    never from inside `TcpTransport.connect()` itself.

    Order: `connected` once (or `failed` if the connection could not be made), then `data`
    any number of times, `drained` when asked for, `eof` when the peer ended its side. `failed`
    (a connect that failed, or a connection lost: reset, write error) and `closed` (the end
    of a `close()`) are final: nothing is called after them, nor after `abort()`.
    """

    def connected(self, local: Tuple[Any, ...], remote: Tuple[Any, ...]) -> None:
        """The connection is up; `local` and `remote` are socket addresses."""

    def data(self, chunk: Any) -> None:
        """Bytes read, in order: a view valid only during the call (copy what you keep)."""

    def drained(self) -> None:
        """The write queue fell back to `low_water` after `watch_drain()` returned True."""

    def eof(self) -> None:
        """The peer closed its side: no more `data` (the core then calls `close`)."""

    def failed(self, error: Exception) -> None:
        """An `FtError`: CONNECTION_REFUSED, NAME_NOT_RESOLVED, TIMEOUT or NETWORK while
        connecting; CONNECTION_RESET (or NETWORK) once connected. The connection is released."""

    def closed(self) -> None:
        """What `close()` began is over: the queue flushed (or its time ran out), the socket
        released."""


class TcpConnection(Protocol):
    """A connection being made or made, as returned by `TcpTransport.connect`; loop thread.
    The core calls `write`, `close` and the rest only once `connected` has been heard."""

    @property
    def buffered(self) -> int:
        """Bytes accepted by `write` that the kernel has not taken yet."""

    def write(self, data: Any) -> None:
        """Queue `data` (bytes-like; it will not change) and send it as the kernel takes it;
        raise `FtError` if the connection is lost."""

    def watch_drain(self) -> bool:
        """Call `TcpEvents.drained` once `buffered` falls to `low_water`; False (and no call)
        if it is there already."""

    def pause_reading(self) -> None:
        """Stop delivering `data` (the peer's sends then block); `resume_reading` undoes it."""

    def resume_reading(self) -> None: ...

    def close(self, timeout: float) -> None:
        """Flush the queue (at most `timeout` seconds), then close; `TcpEvents.closed` follows,
        from a later loop pass."""

    def abort(self) -> None:
        """Drop the connection (or the dial) now; nothing is reported afterwards."""


class TcpTransport(Protocol):
    def connect(self, request: TcpConnectRequest, events: TcpEvents) -> TcpConnection:
        """Start connecting (never blocking the loop); raise `FtError` for a request that
        cannot be made: the core reports it as a failed connect."""

    def close(self) -> None:
        """The runtime is closing: drop every connection still held."""
