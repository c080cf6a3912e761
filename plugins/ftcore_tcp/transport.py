"""The TCP transport: `ftcore.transports.TcpTransport` as an adapter over the stream layer.

`ftcore._net` does the work (resolve off the loop, the address race, socket options, the
read pump, the buffered writer with watermarks, flushing closes); this module turns its
results into `TcpEvents` calls and its errors into errnos. Everything runs on the loop thread.
"""

from __future__ import annotations

from typing import Any, Optional, Set

from ftcore._net import Connected, Dial, DialError, DialResult, Net, Stream, StreamClosed
from ftcore.errors import Errno, FtError
from ftcore.transports import TcpConnectRequest, TcpEvents

__all__ = ["LoopTcpTransport", "TcpSocketConnection"]

_DIAL_ERRNOS = {
    "resolve": Errno.NAME_NOT_RESOLVED,
    "refused": Errno.CONNECTION_REFUSED,
    "timeout": Errno.TIMEOUT,
    "tls": Errno.TLS,
}


class LoopTcpTransport:
    """Connections of one runtime, on its `Net`."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.connections: Set["TcpSocketConnection"] = set()

    def connect(self, request: TcpConnectRequest, events: TcpEvents) -> "TcpSocketConnection":
        conn = TcpSocketConnection(self, request, events)
        self.connections.add(conn)
        try:
            conn.start()
        except RuntimeError as error:  # the stream layer is closed: the runtime is going away
            self.connections.discard(conn)
            raise FtError(Errno.TRANSPORT_UNAVAILABLE, str(error)) from None
        return conn

    def close(self) -> None:
        for conn in list(self.connections):
            conn.abort()


class TcpSocketConnection:
    """One connection: `TcpConnection` for the core, `StreamHandler` for its stream."""

    __slots__ = ("_transport", "_request", "_events", "_dial", "_stream", "data_received")

    def __init__(
        self, transport: LoopTcpTransport, request: TcpConnectRequest, events: TcpEvents
    ) -> None:
        self._transport = transport
        self._request = request
        self._events: Optional[TcpEvents] = events
        self._dial: Optional[Dial] = None
        self._stream: Optional[Stream] = None
        # StreamHandler.data_received: the core's receiver itself, one call less per read (the
        # stream delivers nothing once it is closing or released, so no check is needed)
        self.data_received = events.data

    def start(self) -> None:
        request = self._request
        self._dial = self._transport.net.dial(
            request.host,
            request.port,
            self._dialed,
            family=request.family,
            nodelay=request.nodelay,
            keepalive=request.keepalive,
        )

    def _dialed(self, result: DialResult) -> None:
        self._dial = None
        events = self._events
        if isinstance(result, DialError):
            self._end()
            if events is not None:
                events.failed(FtError(_DIAL_ERRNOS.get(result.kind, Errno.NETWORK), result.reason))
            return
        assert isinstance(result, Connected)
        request = self._request
        try:
            local = result.sock.getsockname()
            self._stream = self._transport.net.stream(
                result.sock, self, high_water=request.high_water, low_water=request.low_water
            )
        except (OSError, RuntimeError) as error:
            result.sock.close()
            self._end()
            if events is not None:
                events.failed(FtError(Errno.NETWORK, "connect failed: %s" % error))
            return
        if events is not None:
            events.connected(local, result.peer)

    # -- TcpConnection ------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        stream = self._stream
        return stream.buffered if stream is not None else 0

    def write(self, data: Any) -> None:
        stream = self._stream
        if stream is None:
            raise FtError(Errno.NETWORK, "not connected")
        try:
            stream.write(data)
        except StreamClosed as error:
            raise FtError(Errno.CONNECTION_RESET, str(error)) from None

    def watch_drain(self) -> bool:
        stream = self._stream
        return stream is not None and stream.watch_drain()

    def pause_reading(self) -> None:
        if self._stream is not None:
            self._stream.pause_reading()

    def resume_reading(self) -> None:
        if self._stream is not None:
            self._stream.resume_reading()

    def close(self, timeout: float) -> None:
        stream = self._stream
        if stream is None:
            self.abort()
            return
        stream.close(timeout, on_closed=self._closed)

    def abort(self) -> None:
        self._events = None
        if self._dial is not None:
            self._dial.cancel()
            self._dial = None
        if self._stream is not None:
            self._stream.close_now()
        self._end()

    def _closed(self) -> None:
        events = self._events
        self._end()
        if events is not None:
            events.closed()

    def _end(self) -> None:
        self._events = None
        self._transport.connections.discard(self)

    # -- StreamHandler (and `data_received`, set in __init__) ----------------------------------

    def eof_received(self) -> None:
        events = self._events
        if events is not None:
            events.eof()

    def connection_lost(self, error: BaseException) -> None:
        events = self._events
        self._end()
        if events is not None:
            reason = "connection reset" if isinstance(error, ConnectionError) else str(error)
            events.failed(FtError(Errno.CONNECTION_RESET, reason))

    def pause_writing(self) -> None:
        """Nothing to do: the core tells its writer through `write()`'s result."""

    def resume_writing(self) -> None:
        events = self._events
        if events is not None:
            events.drained()
