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
    "HttpTransport",
    "Header",
    "WsConnectRequest",
    "WsEvents",
    "WsConnection",
    "WsTransport",
    "UdpEvents",
    "UdpEndpoint",
    "UdpTransport",
]

Header = Tuple[str, str]
Body = Union[bytes, Iterable[bytes], None]


@dataclass(frozen=True)
class TlsSettings:
    """`config["tls"]`: verification is on unless the host turns it off."""

    verify: bool = True
    cafile: Optional[str] = None


@dataclass
class HttpRequest:
    """One HTTP exchange (one hop of a redirect chain), already validated and encoded.

    `body` is bytes, or an iterable of bytes chunks whose total is `body_length` (uploads
    stream from disk this way). `deadline` is on the runtime loop's clock (`loop.time()`);
    `timeout` is the seconds left at the moment the request was handed over.
    """

    method: str
    url: str
    headers: List[Header]
    body: Body = None
    body_length: Optional[int] = None
    timeout: Optional[float] = None
    tls: TlsSettings = field(default_factory=TlsSettings)
    decode_content: bool = True


class HttpSink(Protocol):
    """The core's receiver for one exchange.

    A transport calls these from any thread, in this order, never two at once: `sent`
    (zero or more times, as request body bytes leave), `headers` (once), `body` (zero or more
    times), then exactly one of `end` or `error`. Nothing may be called after `end`/`error`,
    nor after `HttpExchange.abort()` returned. A chunk passed to `body` may be a view of a
    buffer the transport reuses: the sink copies what it keeps before returning.
    """

    def sent(self, nbytes: int) -> None: ...

    def headers(self, status: int, headers: List[Header], info: Dict[str, Any]) -> None:
        """`info`: what the connection did, for `profile` (`peerIP`, `port`, `socketReused`,
        `SSLconnectionStart`/`End`, `connectStart`/`End`, `requestStart`/`End`, as ms floats)."""

    def body(self, chunk: Any) -> None: ...

    def end(self, info: Dict[str, Any]) -> None:
        """`info` as for `headers`, plus `sendBytesCount` and `receivedBytedCount`."""

    def error(self, error: Exception) -> None:
        """An `ftcore.FtError` with its errno, or any exception (reported as a network error)."""


class HttpExchange(Protocol):
    """A running exchange, as returned by `HttpTransport.start`."""

    def abort(self) -> None:
        """Drop the connection now, from the loop thread; the sink hears nothing more."""


class HttpTransport(Protocol):
    """Made once per runtime by `ftcore_http_transport_make`; closed with the runtime."""

    def start(self, request: HttpRequest, sink: HttpSink) -> HttpExchange: ...

    def close(self) -> None: ...


# -- WebSocket ---------------------------------------------------------------------------------


@dataclass
class WsConnectRequest:
    """One `connectSocket`, validated: the transport connects, handshakes and frames."""

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

    Order: `opened` once (or `failed` if the handshake did not complete), `message` any
    number of times, and `closed` exactly once at the very end, whatever ended the socket.
    """

    def opened(self, headers: Dict[str, str], protocol: str) -> None: ...

    def message(self, data: Union[str, bytes]) -> None: ...

    def failed(self, error: Exception) -> None:
        """The connection failed (handshake, timeout, protocol error); `closed` follows."""

    def closed(self, code: int, reason: str) -> None: ...


class WsConnection(Protocol):
    def send(self, data: Union[str, bytes]) -> None:
        """Frame and write (or buffer) one message; raise `FtError` if it cannot be sent."""

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; `closed` follows when it ends or times out."""

    def abort(self) -> None:
        """Drop the TCP connection at once (runtime close); `closed` follows with 1006."""


class WsTransport(Protocol):
    def connect(self, request: WsConnectRequest, events: WsEvents) -> WsConnection: ...

    def close(self) -> None: ...


# -- UDP ---------------------------------------------------------------------------------------


class UdpEvents(Protocol):
    """The core's receiver for one UDP socket; called on the loop thread."""

    def message(self, data: bytes, remote: Tuple[Any, ...], local: Tuple[Any, ...]) -> None: ...

    def error(self, error: OSError) -> None: ...


class UdpEndpoint(Protocol):
    """A datagram socket on the loop; addresses are already resolved literals."""

    def bind(self, port: int) -> int: ...

    def send(self, data: Any, address: Tuple[Any, ...]) -> None: ...

    def connect(self, address: Tuple[Any, ...]) -> None: ...

    def write(self, data: Any) -> None: ...

    def set_ttl(self, ttl: int) -> None: ...

    def set_broadcast(self, enabled: bool) -> None: ...

    def close(self) -> None: ...


class UdpTransport(Protocol):
    def open(self, family: int, events: UdpEvents) -> UdpEndpoint: ...

    def close(self) -> None: ...
