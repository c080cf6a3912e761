"""The WebSocket transport: the sans-IO codec between the core and the stream layer.

One `LoopWsTransport` per runtime; one `WsSocket` per connection, all on the loop thread. The
stream layer (`ftcore._net`, the runtime's `net`) dials (the name resolved off the loop, the
addresses raced as RFC 8305 says, TLS for wss:// with the runtime's context for its settings),
reads into one shared buffer, queues what the kernel does not take, and closes. This module
only turns bytes into codec events and codec events into `WsEvents` calls:

    dial (resolve, connect, TLS) -> upgrade request/response -> open -> closing handshake
    -> linger -> closed

`send` is refused (605106 "write buffer full") while more than `WRITE_BUFFER_LIMIT` bytes
wait, so a peer that stops reading cannot make the process grow without bound; the
connection stays usable.

After the close handshake (or after we failed the connection) the core hears `closed` at once,
while the socket lingers until the server closes TCP (RFC 6455 §7.1.1: the server closes
first) or `CLOSE_TIMEOUT` passes; our close that gets no answer within `CLOSE_TIMEOUT` ends
with 1006.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Union
from urllib.parse import urlsplit

from ftcore._net import Connected, Dial, DialError, DialResult, Net, Stream, StreamClosed
from ftcore.errors import Errno, FtError
from ftcore.transports import WsConnectRequest

from .codes import CloseCode
from .connection import Connection
from .connection import State as CodecState
from .errors import LocalProtocolError, Misuse
from .events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    HandshakeAccepted,
    HandshakeRejected,
    TextMessage,
)

__all__ = ["LoopWsTransport", "WsSocket", "WRITE_BUFFER_LIMIT", "CLOSE_TIMEOUT"]

WRITE_BUFFER_LIMIT = 64 * 2**20
CLOSE_TIMEOUT = 5.0

ABNORMAL = int(CloseCode.ABNORMAL_CLOSURE)  # what the core hears when no close frame came

# Phases of a WsSocket (plain ints: compared on every message).
CONNECTING, UPGRADING, OPEN, CLOSING, LINGER, DEAD = range(6)

_DIAL_ERRNOS = {"resolve": Errno.NAME_NOT_RESOLVED, "refused": Errno.CONNECTION_REFUSED}


class LoopWsTransport:
    """`WsTransport` on the runtime's stream layer."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.sockets: "set[WsSocket]" = set()
        self._closed = False

    def connect(self, request: WsConnectRequest, events: Any) -> "WsSocket":
        if self._closed:
            raise FtError(Errno.TRANSPORT_UNAVAILABLE, "transport closed")
        parts = urlsplit(request.url)
        secure = parts.scheme.lower() == "wss"
        host = parts.hostname or ""
        default_port = 443 if secure else 80
        try:
            port = parts.port or default_port
        except ValueError:
            raise FtError(Errno.INVALID_URL) from None
        authority = "[%s]" % host if ":" in host else host
        if port != default_port:
            authority += ":%d" % port
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        codec = Connection("client", request.max_message_bytes)
        try:
            hello = codec.initiate(
                authority, target, request.headers, request.protocols, request.deflate
            )
        except LocalProtocolError as exc:
            raise _connect_refusal(exc) from None
        ws = WsSocket(self, request, events, codec, hello)
        self.sockets.add(ws)
        ws.start(host, port, secure)
        return ws

    def close(self) -> None:
        """Drop every socket still held (the core has already closed the live ones)."""
        self._closed = True
        for ws in list(self.sockets):
            ws.abort()


class WsSocket:
    """One connection: `ftcore.transports.WsConnection` for the core, `StreamHandler` for its
    stream."""

    __slots__ = (
        "_transport",
        "_loop",
        "_request",
        "_events",
        "_codec",
        "_hello",
        "_phase",
        "_dial",
        "_stream",
        "_timer",
        "__weakref__",
    )

    def __init__(
        self,
        transport: LoopWsTransport,
        request: WsConnectRequest,
        events: Any,
        codec: Connection,
        hello: bytes,
    ) -> None:
        self._transport = transport
        self._loop = transport.net.loop
        self._request = request
        self._events: Any = events
        self._codec = codec
        self._hello = hello
        self._phase = CONNECTING
        self._dial: Optional[Dial] = None
        self._stream: Optional[Stream] = None
        self._timer: Any = None

    def __repr__(self) -> str:
        return "<WsSocket %s phase=%d>" % (self._request.url, self._phase)

    # -- the WsConnection API (loop thread) ---------------------------------------------------

    def send(self, data: Union[str, bytes]) -> None:
        if self._phase != OPEN:
            raise FtError(Errno.WS_NOT_CONNECTED)
        stream = self._stream
        assert stream is not None
        if stream.buffered > WRITE_BUFFER_LIMIT:
            raise FtError(Errno.WS_SEND_FAILED, "send failed: write buffer full")
        codec = self._codec
        try:
            if isinstance(data, str):
                frame = codec.send_text(data)
            else:
                frame = codec.send_binary(data)
        except LocalProtocolError:
            raise FtError(Errno.WS_NOT_CONNECTED) from None
        try:
            stream.write(frame)
        except StreamClosed:
            raise FtError(Errno.WS_SEND_FAILED, "send failed: connection lost") from None

    def close(self, code: int, reason: str) -> None:
        if self._phase != OPEN:
            raise FtError(Errno.WS_NOT_CONNECTED)
        try:
            frame = self._codec.close(code, reason)
        except LocalProtocolError as exc:
            raise FtError(Errno.WS_INVALID_CLOSE, str(exc)) from None
        self._phase = CLOSING
        self._write(frame)
        self._set_timer(CLOSE_TIMEOUT, self._close_timed_out)

    def abort(self, code: Optional[int] = None) -> None:
        self._events = None
        stream = self._stream
        if (
            code is not None
            and self._phase == OPEN
            and self._codec.state is CodecState.OPEN
            and stream is not None
            and not stream.buffered
        ):
            try:  # best effort, without waiting: we are dropping the connection anyway
                stream.write(self._codec.close(code, ""))
            except Exception:  # noqa: BLE001
                pass
        self._drop()

    def pause_reading(self) -> None:
        """Flow control (`ftcore.transports.PausableWsConnection`): read nothing more from the
        socket while a consumer lags; messages already read are still delivered."""
        if self._stream is not None:
            self._stream.pause_reading()

    def resume_reading(self) -> None:
        if self._stream is not None:
            self._stream.resume_reading()

    # -- connecting -----------------------------------------------------------------------------

    def start(self, host: str, port: int, secure: bool) -> None:
        request = self._request
        self._dial = self._transport.net.dial(
            host,
            port,
            self._dialed,
            tls=request.tls if secure else None,
            nodelay=True if request.tcp_nodelay else None,
        )

    def _dialed(self, result: DialResult) -> None:
        self._dial = None
        if isinstance(result, DialError):
            self._fail(_dial_error(result))
            return
        assert isinstance(result, Connected)
        self._phase = UPGRADING
        self._stream = self._transport.net.stream(result.sock, self)
        hello, self._hello = self._hello, b""
        self._write(hello)

    # -- StreamHandler: what the stream reports -------------------------------------------------

    def data_received(self, data: memoryview) -> None:
        # The view (of the stream's shared read buffer) is parsed in place: `_process` drains
        # the codec or gives up on it before returning, and the codec copies what it keeps.
        codec = self._codec
        codec.receive_data(data)
        self._process(codec)

    def eof_received(self) -> None:
        codec = self._codec
        codec.receive_data(b"")
        self._process(codec)

    def connection_lost(self, error: BaseException) -> None:
        self._lost(error)

    def pause_writing(self) -> None:
        """Nothing to do: `send` refuses past `WRITE_BUFFER_LIMIT`."""

    def resume_writing(self) -> None:
        """Nothing to do (see `pause_writing`)."""

    def _process(self, codec: Connection) -> None:
        """Turn what the codec parsed into events for the core; write its automatic replies."""
        next_event = codec.next_event
        while True:
            event = next_event()
            if event is None:
                break
            if isinstance(event, (TextMessage, BinaryMessage)):
                events = self._events
                if events is not None and self._phase <= CLOSING:
                    events.message(event.data)
                if self._phase == DEAD:
                    return
            elif isinstance(event, HandshakeAccepted):
                self._phase = OPEN
                events = self._events
                if events is not None:
                    events.opened(_header_dict(event.headers), event.subprotocol or "")
                if self._phase == DEAD:  # the onOpen listener dropped the socket
                    return
            elif isinstance(event, CloseReceived):
                self._flush_codec()
                self._finish(event.code, event.reason, None)
                return
            elif isinstance(event, ConnectionFailed):
                self._flush_codec()
                if event.code == ABNORMAL:
                    self._finish(ABNORMAL, "", None)
                else:
                    too_big = event.code == CloseCode.MESSAGE_TOO_BIG
                    errno_ = Errno.RESPONSE_TOO_LARGE if too_big else Errno.BAD_RESPONSE
                    error = FtError(errno_, "protocol error %d: %s" % (event.code, event.reason))
                    self._finish(event.code, event.reason, error)
                return
            elif isinstance(event, HandshakeRejected):
                if event.status_code is None:
                    reason = "connect failed: %s" % event.reason
                else:
                    reason = "connect failed: status %d (%s)" % (event.status_code, event.reason)
                self._fail(FtError(Errno.WS_CONNECT_FAILED, reason))
                return
            # Ping (the pong is already queued) and Pong: nothing to report.
        self._flush_codec()

    def _flush_codec(self) -> None:
        """Write the codec's automatic replies (pongs, close echoes)."""
        out = self._codec.data_to_send()
        if out:
            stream = self._stream
            if stream is not None and stream.buffered > WRITE_BUFFER_LIMIT:
                # a peer that floods pings but never reads: drop it, from the next pass
                self._loop.call_soon(self._lost, OSError("peer does not read"))
                return
            self._write(out)

    def _write(self, data: bytes) -> bool:
        """Queue `data` on the stream; False if the connection is lost (its loss is reported
        from the next pass)."""
        stream = self._stream
        if stream is None or self._phase == DEAD:
            return False
        try:
            stream.write(data)
        except StreamClosed:
            return False
        return True

    # -- ending -------------------------------------------------------------------------------

    def _fail(self, error: FtError) -> None:
        """The connection could not be made: `failed` then `closed(1006)`, and drop."""
        events, self._events = self._events, None
        self._drop()
        if events is not None:
            events.failed(error)
            events.closed(ABNORMAL, "")

    def _lost(self, exc: BaseException) -> None:
        """A read or write error: before open it is a connection failure, after it a drop."""
        if self._phase == DEAD:
            return
        if self._phase < OPEN:
            reason = "connection reset" if isinstance(exc, ConnectionError) else str(exc)
            self._fail(FtError(Errno.CONNECTION_RESET, reason))
            return
        events, self._events = self._events, None  # None while lingering: nothing to report
        self._drop()
        if events is not None:
            events.closed(ABNORMAL, "")

    def _finish(self, code: int, reason: str, error: Optional[FtError]) -> None:
        """The WebSocket is closed: tell the core now, let TCP end in the background."""
        if self._phase == DEAD:  # already dropped (an abort from a listener)
            return
        events, self._events = self._events, None
        self._phase = LINGER
        self._cancel_timer()
        if self._stream is not None:  # flush the close frame, then wait for the server's FIN
            self._stream.close(CLOSE_TIMEOUT, linger=CLOSE_TIMEOUT, on_closed=self._drop)
        if events is not None:
            if error is not None:
                events.failed(error)
            events.closed(code, reason)

    def _close_timed_out(self) -> None:
        """Our close frame got no answer in time: no close frame was exchanged (1006)."""
        self._timer = None
        events, self._events = self._events, None
        self._drop()
        if events is not None:
            events.closed(ABNORMAL, "")

    def _set_timer(self, delay: float, callback: Any) -> None:
        self._cancel_timer()
        self._timer = self._loop.call_later(delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _drop(self) -> None:
        """Forget the connection: the dial or the stream, the timer. Idempotent."""
        if self._phase == DEAD:
            return
        self._phase = DEAD
        self._cancel_timer()
        if self._dial is not None:
            self._dial.cancel()
            self._dial = None
        if self._stream is not None:
            self._stream.close_now()  # a no-op once a lingering close has released it
        self._transport.sockets.discard(self)


def _dial_error(error: DialError) -> FtError:
    errno_ = _DIAL_ERRNOS.get(error.kind)
    if errno_ is not None:
        return FtError(errno_, error.reason if error.kind == "resolve" else None)
    if error.kind == "tls":
        return FtError(Errno.TLS, error.reason)
    return FtError(Errno.WS_CONNECT_FAILED, "connect failed: %s" % error.reason)


def _connect_refusal(exc: LocalProtocolError) -> FtError:
    """What the codec's refusal of the upgrade request's parts means for the user."""
    if exc.misuse is Misuse.TARGET:
        return FtError(Errno.INVALID_URL)
    if exc.misuse is Misuse.SUBPROTOCOL:
        return FtError(Errno.INVALID_OPTION, exc.reason)
    return FtError(Errno.INVALID_HEADER, exc.reason)


def _header_dict(headers: Any) -> Dict[str, str]:
    result: Dict[str, str] = {}
    for name, value in headers:
        result[name] = result[name] + ", " + value if name in result else value
    return result
