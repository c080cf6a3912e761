"""The WebSocket transport: the sans-IO codec driven by the runtime's selectors loop.

One `LoopWsTransport` per runtime; one `WsSocket` per connection. Everything runs on the loop
thread except name resolution (`socket.getaddrinfo` in a short-lived worker thread; skipped for
IP literals). The steps of a connection:

    resolve -> TCP connect (non-blocking, next address on failure) -> TLS (wss://, driven by
    readiness) -> upgrade request/response -> open -> closing handshake -> linger -> closed

Reads go through `recv_into` one buffer shared by every socket of the transport (the loop
thread uses it for one read at a time and the bytes are copied out at once), so an idle
socket costs no buffer. Writes try `send` first; what the kernel does not take waits in a
per-socket queue drained on writability. `send` is refused (605106 "write buffer full") while
more than `WRITE_BUFFER_LIMIT` bytes wait, so a peer that stops reading cannot make the
process grow without bound; the connection stays usable.

After the close handshake (or after we failed the connection) the core hears `closed` at once,
while the socket lingers until the server closes TCP (RFC 6455 §7.1.1: the server closes
first) or `CLOSE_TIMEOUT` passes; our close that gets no answer within `CLOSE_TIMEOUT` ends
with 1006.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple, Union
from urllib.parse import urlsplit

from ftcore.errors import Errno, FtError
from ftcore.transports import TlsSettings, WsConnectRequest

from .connection import Connection
from .connection import State as CodecState
from .errors import LocalProtocolError
from .events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    HandshakeAccepted,
    HandshakeRejected,
    TextMessage,
)

__all__ = ["LoopWsTransport", "WsSocket", "READ_BUFFER_BYTES", "WRITE_BUFFER_LIMIT"]

READ_BUFFER_BYTES = 256 * 1024
WRITE_BUFFER_LIMIT = 64 * 2**20
CLOSE_TIMEOUT = 5.0
ATTEMPT_TIMEOUT = 2.0  # per address while others remain: a blackholed one must not take all
TLS_CHUNK = 256 * 1024

ABNORMAL = 1006
_IN_PROGRESS = frozenset({0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, errno.EINTR})

# Phases of a WsSocket (plain ints: compared on every message).
RESOLVING, CONNECTING, TLS, UPGRADING, OPEN, CLOSING, LINGER, DEAD = range(8)


class LoopWsTransport:
    """`WsTransport` on an `ftcore.loop.EventLoop`."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.buffer = bytearray(READ_BUFFER_BYTES)
        self.view = memoryview(self.buffer)
        self.sockets: "set[WsSocket]" = set()
        self._tls_contexts: Dict[TlsSettings, Any] = {}
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
            text = str(exc)
            if "target" in text:
                raise FtError(Errno.INVALID_URL) from None
            if "subprotocol" in text.lower() or "protocol" in text.lower():
                raise FtError(Errno.INVALID_OPTION, text) from None
            raise FtError(Errno.INVALID_HEADER, text) from None
        ws = WsSocket(self, request, events, codec, hello, host, port, secure)
        self.sockets.add(ws)
        ws.start()
        return ws

    def tls_context(self, settings: TlsSettings) -> Any:
        """One client context per (verify, cafile), made on first use (loading CAs is slow)."""
        context = self._tls_contexts.get(settings)
        if context is None:
            context = self._tls_contexts[settings] = settings.client_context()
        return context

    def close(self) -> None:
        """Drop every socket still held (the core has already closed the live ones)."""
        self._closed = True
        for ws in list(self.sockets):
            ws.abort()


class WsSocket:
    """One connection: implements `ftcore.transports.WsConnection`."""

    __slots__ = (
        "_transport",
        "_loop",
        "_request",
        "_events",
        "_codec",
        "_hello",
        "_host",
        "_port",
        "_secure",
        "_sock",
        "_phase",
        "_addresses",
        "_last_error",
        "_wbuf",
        "_wsize",
        "_timer",
        "_ssl",
        "__weakref__",
    )

    def __init__(
        self,
        transport: LoopWsTransport,
        request: WsConnectRequest,
        events: Any,
        codec: Connection,
        hello: bytes,
        host: str,
        port: int,
        secure: bool,
    ) -> None:
        self._transport = transport
        self._loop = transport.loop
        self._request = request
        self._events: Any = events
        self._codec = codec
        self._hello = hello
        self._host = host
        self._port = port
        self._secure = secure
        self._sock: Optional[socket.socket] = None
        self._phase = RESOLVING
        self._addresses: List[Tuple[int, Any]] = []
        self._last_error: Optional[BaseException] = None
        self._wbuf: Deque[Any] = deque()
        self._wsize = 0
        self._timer: Any = None
        self._ssl: Any = None  # the ssl module, once a wss:// socket is wrapped

    def __repr__(self) -> str:
        return "<WsSocket %s:%d phase=%d>" % (self._host, self._port, self._phase)

    # -- the WsConnection API (loop thread) ---------------------------------------------------

    def send(self, data: Union[str, bytes]) -> None:
        if self._phase != OPEN:
            raise FtError(Errno.WS_NOT_CONNECTED)
        if self._wsize > WRITE_BUFFER_LIMIT:
            raise FtError(Errno.WS_SEND_FAILED, "send failed: write buffer full")
        codec = self._codec
        try:
            if isinstance(data, str):
                frame = codec.send_text(data)
            else:
                frame = codec.send_binary(data)
        except LocalProtocolError:
            raise FtError(Errno.WS_NOT_CONNECTED) from None
        if self._wbuf or self._ssl is not None:
            if not self._write(frame):
                raise FtError(Errno.WS_SEND_FAILED, "send failed: connection lost")
            return
        try:  # inlined _write for the common plain-socket case
            sent = self._sock.send(frame)  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._loop.call_soon(self._lost, exc)
            raise FtError(Errno.WS_SEND_FAILED, "send failed: connection lost") from None
        if sent < len(frame):
            self._queue(memoryview(frame)[sent:])

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
        if code is not None and self._phase == OPEN and self._codec.state is CodecState.OPEN:
            try:
                frame = self._codec.close(code, "")
                if not self._wbuf and self._sock is not None:
                    self._sock.send(frame)
            except Exception:  # best effort: we are dropping the connection anyway
                pass
        self._drop()

    # -- connecting -----------------------------------------------------------------------------

    def start(self) -> None:
        family = _ip_family(self._host)
        if family is not None:
            self._phase = CONNECTING
            self._addresses = [(family, (self._host, self._port))]
            self._connect_next()
            return
        loop, host, port = self._loop, self._host, self._port

        def resolve() -> None:
            try:
                result: Any = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                result = exc
            loop.call_soon_threadsafe(self._resolved, result)

        threading.Thread(target=resolve, name="ftcore-ws-resolve", daemon=True).start()

    def _resolved(self, result: Any) -> None:
        if self._phase != RESOLVING or self._events is None:
            return
        if isinstance(result, BaseException):
            self._fail(FtError(Errno.NAME_NOT_RESOLVED, "name not resolved: %s" % self._host))
            return
        self._phase = CONNECTING
        self._addresses = [(info[0], info[4]) for info in result]
        self._connect_next()

    def _connect_next(self) -> None:
        """Try the next resolved address; callers never hear events synchronously from here."""
        if self._phase != CONNECTING or self._events is None:
            return
        while self._addresses:
            family, address = self._addresses.pop(0)
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError as exc:
                self._last_error = exc
                continue
            sock.setblocking(False)
            if self._request.tcp_nodelay:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            code = sock.connect_ex(address)
            if code in _IN_PROGRESS:
                self._sock = sock
                self._loop.add_writer(sock, self._connected)
                if self._addresses:  # the last address gets the rest of the handshake timeout
                    self._set_timer(ATTEMPT_TIMEOUT, self._attempt_timed_out)
                return
            sock.close()
            self._last_error = OSError(code, errno.errorcode.get(code, str(code)))
        self._loop.call_soon(self._fail, _connect_error(self._last_error))

    def _attempt_timed_out(self) -> None:
        """This address does not answer: give up on it and try the next one."""
        self._timer = None
        sock, self._sock = self._sock, None
        if self._phase != CONNECTING or sock is None:
            return
        self._loop.remove_writer(sock)
        sock.close()
        self._last_error = TimeoutError(errno.ETIMEDOUT, "connect timed out")
        self._connect_next()

    def _connected(self) -> None:
        sock = self._sock
        assert sock is not None
        self._loop.remove_writer(sock)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._sock = None
            sock.close()
            self._last_error = OSError(code, errno.errorcode.get(code, str(code)))
            self._connect_next()
            return
        if self._secure:
            self._start_tls()
        else:
            self._upgrade()

    def _start_tls(self) -> None:
        import ssl

        self._ssl = ssl
        self._phase = TLS
        context = self._transport.tls_context(self._request.tls)
        try:
            self._sock = context.wrap_socket(
                self._sock, server_hostname=self._host, do_handshake_on_connect=False
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            self._fail(FtError(Errno.TLS, "ssl error: %s" % exc))
            return
        self._tls_step()

    def _tls_step(self) -> None:
        ssl = self._ssl
        sock = self._sock
        loop = self._loop
        try:
            sock.do_handshake()  # type: ignore[union-attr]
        except ssl.SSLWantReadError:
            loop.remove_writer(sock)
            loop.add_reader(sock, self._tls_step)
            return
        except ssl.SSLWantWriteError:
            loop.remove_reader(sock)
            loop.add_writer(sock, self._tls_step)
            return
        except ssl.SSLCertVerificationError as exc:
            self._fail(FtError(Errno.TLS, "ssl error: %s" % (exc.verify_message or exc)))
            return
        except (ssl.SSLError, OSError) as exc:
            self._fail(FtError(Errno.TLS, "ssl error: %s" % exc))
            return
        loop.remove_reader(sock)
        loop.remove_writer(sock)
        self._upgrade()

    def _upgrade(self) -> None:
        self._phase = UPGRADING
        hello, self._hello = self._hello, b""
        self._loop.add_reader(self._sock, self._readable_tls if self._ssl else self._readable)
        self._write(hello)

    # -- reading ------------------------------------------------------------------------------

    def _readable(self) -> None:
        try:
            n = self._sock.recv_into(self._transport.buffer)  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        codec = self._codec
        codec.receive_data(self._transport.view[:n].tobytes() if n else b"")
        self._process(codec)

    def _readable_tls(self) -> None:
        ssl = self._ssl
        sock = self._sock
        transport = self._transport
        codec = self._codec
        while True:  # drain what OpenSSL already decrypted: the selector will not signal it
            try:
                n = sock.recv_into(transport.buffer)  # type: ignore[union-attr]
            except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
                break
            except ssl.SSLWantWriteError:
                break  # renegotiation wants to write; the next read retries
            except ssl.SSLZeroReturnError:
                n = 0
            except (ssl.SSLError, OSError) as exc:
                self._lost(exc)
                return
            codec.receive_data(transport.view[:n].tobytes() if n else b"")
            self._process(codec)
            if not n or self._phase >= LINGER or sock is not self._sock:
                break
            if not sock.pending():  # type: ignore[union-attr]
                break

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
                    errno_ = Errno.RESPONSE_TOO_LARGE if event.code == 1009 else Errno.BAD_RESPONSE
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
            if self._wsize > WRITE_BUFFER_LIMIT:  # a peer that floods pings but never reads
                self._loop.call_soon(self._lost, OSError(errno.ENOBUFS, "peer does not read"))
                return
            self._write(out)

    # -- writing ------------------------------------------------------------------------------

    def _write(self, data: bytes) -> bool:
        """Write now, queueing what the kernel does not take; False if the connection is lost."""
        if self._sock is None or self._phase == DEAD:
            return False
        if self._wbuf:
            self._wbuf.append(data)
            self._wsize += len(data)
            return True
        try:
            sent = self._send_some(data)
        except OSError as exc:
            self._loop.call_soon(self._lost, exc)
            return False
        if sent < len(data):
            self._queue(memoryview(data)[sent:] if sent else data)
        return True

    def _send_some(self, data: Any) -> int:
        """One non-blocking send; 0 when the kernel (or OpenSSL) wants us to wait."""
        ssl = self._ssl
        try:
            if ssl is not None:
                return self._sock.send(data[:TLS_CHUNK])  # type: ignore[union-attr]
            return self._sock.send(data)  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            if ssl is not None and isinstance(exc, (ssl.SSLWantWriteError, ssl.SSLWantReadError)):
                return 0
            raise

    def _queue(self, rest: Any) -> None:
        self._wbuf.append(rest)
        self._wsize += len(rest)
        self._loop.add_writer(self._sock, self._writable)

    def _writable(self) -> None:
        wbuf = self._wbuf
        while wbuf:
            chunk = wbuf[0]
            try:
                sent = self._send_some(chunk)
            except OSError as exc:
                self._lost(exc)
                return
            if not sent:
                return
            self._wsize -= sent
            if sent < len(chunk):
                # TLS retries must see the same bytes again: slicing a memoryview keeps them.
                wbuf[0] = (chunk if isinstance(chunk, memoryview) else memoryview(chunk))[sent:]
                return
            wbuf.popleft()
        self._wsize = 0
        self._loop.remove_writer(self._sock)

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
        if self._sock is not None:
            self._loop.add_reader(self._sock, self._linger_readable)
        self._set_timer(CLOSE_TIMEOUT, self._drop)
        if events is not None:
            if error is not None:
                events.failed(error)
            events.closed(code, reason)

    def _linger_readable(self) -> None:
        try:
            n = self._sock.recv_into(self._transport.buffer)  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # a reset (or a TLS error) ends the linger as EOF does
            if self._ssl is not None and isinstance(exc, self._ssl.SSLWantReadError):
                return  # part of a TLS record: wait for the rest
            n = 0
        if not n:
            self._drop()

    def _close_timed_out(self) -> None:
        """Our close frame got no answer in time: no close frame was exchanged (1006)."""
        events, self._events = self._events, None
        self._drop()
        if events is not None:
            events.closed(ABNORMAL, "")

    def _set_timer(self, delay: float, callback: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(delay, callback)

    def _drop(self) -> None:
        """Forget the socket: timers, watchers, fd. Idempotent."""
        if self._phase == DEAD:
            return
        self._phase = DEAD
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sock, self._sock = self._sock, None
        if sock is not None:
            loop = self._loop
            if not loop.closed:
                loop.remove_reader(sock)
                loop.remove_writer(sock)
            try:
                sock.close()
            except OSError:
                pass
        self._wbuf.clear()
        self._wsize = 0
        self._transport.sockets.discard(self)


def _ip_family(host: str) -> Optional[int]:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return family
    return None


def _connect_error(exc: Optional[BaseException]) -> FtError:
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED
    ):
        return FtError(Errno.CONNECTION_REFUSED)
    return FtError(Errno.WS_CONNECT_FAILED, "connect failed: %s" % (exc,))


def _header_dict(headers: Any) -> Dict[str, str]:
    result: Dict[str, str] = {}
    for name, value in headers:
        result[name] = result[name] + ", " + value if name in result else value
    return result
