"""TCP semantics: `createTCPSocket()` returns a `TCPSocket` (API.md §9); the transport only
moves bytes.

Rules:

* A TCPSocket has events, not success/fail (the socket base, `_core/endpoint.py`, and its
  `TCP` table): NEW -connect-> CONNECTING -connected-> OPEN -close() or the peer's EOF->
  CLOSING (what was written is flushed, at most `FLUSH_TIMEOUT_S`) -> CLOSED; a refused or
  failed connect, or a lost connection -> FAILED. onClose fires once, as the socket enters
  CLOSED or FAILED. Methods hop to the loop thread (calls from one thread keep their order);
  events never run inside the call that caused them.
* `connect({"address", "port", "timeout"})` checks, in this order, each failure one onError:
  socket closed, connecting or connected (-2); address (1: missing, not a string, neither an
  IP literal of the socket's family nor a host name); port (2: an integer 1-65535); timeout
  (-1: a positive number of seconds, default 2); banned port (-3, `tcp.bannedPorts`); domain
  list (-3, `tcp://host:port` against `domains.tcp`); creation limit (-3: the socket was made
  past `limits.tcpCreatesPer5Min` in 5 minutes). A 1, 2 or -1 leaves the socket NEW (connect
  may follow again); a -3 ends it: onError, then onClose, and no connection is attempted.
  Then the transport dials (names are resolved off the loop); a dial that fails or outlasts
  `timeout`: onError -4, then onClose.
* `write(data)`: str (UTF-8) or bytes-like; anything else -1. Before `connect`, or once the
  socket is closing or ended: -2. Writes made while connecting wait for the connection;
  everything goes out in order, as the kernel takes it. Bytes accepted and not yet taken by
  the kernel are bounded by `limits.tcpMaxBufferedBytes`: a write past it is dropped whole,
  with -2 "send buffer full". A bytearray or memoryview is copied at the call (the caller may
  reuse it). Python extra, Node's model: `write` returns False once more than `HIGH_WATER`
  bytes wait (or when it was refused at the call); onDrain then fires once they are down to
  `LOW_WATER`.
* onMessage: one event per read, `{"message": bytes, "remoteInfo", "localInfo"}`, in order;
  none once `close()` has returned.
* `close()`, harmless when repeated: before the connection is up the dial is dropped; an open
  connection is flushed, then closed; onClose follows. The peer's EOF is handled the same way,
  without onError. A reset or write failure of an open connection: onError -2, then onClose.
  `Runtime.close()` closes every socket at once (what is queued is dropped): onClose fires.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import deque
from threading import get_ident as _get_ident
from typing import TYPE_CHECKING, Any, Deque, Dict, Optional, Tuple

from . import udp_checks as checks
from .._core.endpoint import TCP, Endpoint, EndpointEvent, EndpointState
from .._core.listeners import event_methods
from .._core.stash import StashKey
from . import messages
from .messages import AsyncMessageIterator, MessageIterator
from ..errors import Errno, FtError
from ..transports import TcpConnectRequest

if TYPE_CHECKING:
    from .runtime import Runtime
    from ..transports import TcpConnection

__all__ = [
    "TCPSocket",
    "SYSTEM_ERROR",
    "SOCKET_ERROR",
    "NO_PERMISSION",
    "CONNECT_FAILED",
    "BAD_ADDRESS",
    "BAD_PORT",
]

logger = logging.getLogger("ftcore")

SYSTEM_ERROR = -1
SOCKET_ERROR = -2
NO_PERMISSION = -3
CONNECT_FAILED = -4
BAD_ADDRESS = 1
BAD_PORT = 2

FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
FAMILY_NAMES = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6"}
DEFAULT_TIMEOUT_S = 2.0  # FinClip's and WeChat's
FLUSH_TIMEOUT_S = 2.0
HIGH_WATER = 2**20
LOW_WATER = 256 * 2**10
CREATION_WINDOW_S = 300.0

_NEW = EndpointState.NEW
_CONNECTING = EndpointState.CONNECTING
_OPEN = EndpointState.OPEN
_CLOSING = EndpointState.CLOSING


class _Creations:
    """When the runtime's last TCPSockets were made (`limits.tcpCreatesPer5Min`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: Deque[float] = deque()

    def admit(self, now: float, limit: int) -> bool:
        """Count one more creation at `now`; False (not counted) past the limit."""
        with self._lock:
            times = self._times
            while times and times[0] <= now - CREATION_WINDOW_S:
                times.popleft()
            if len(times) >= limit:
                return False
            times.append(now)
            return True


_CREATIONS: "StashKey[_Creations]" = StashKey()


class TCPSocket(Endpoint):
    """A TCP socket of the mini-program API (`createTCPSocket`); safe to use from any thread."""

    _table = TCP

    onConnect, offConnect = event_methods("Connect")  # noqa: N815
    onClose, offClose = event_methods("Close")  # noqa: N815
    onError, offError = event_methods("Error")  # noqa: N815
    onMessage, offMessage = event_methods("Message")  # noqa: N815
    onDrain, offDrain = event_methods("Drain")  # noqa: N815

    def __init__(self, runtime: "Runtime", options: Any, kwargs: Dict[str, Any]) -> None:
        super().__init__(runtime)  # tracked by the runtime from here
        if isinstance(options, str):  # createTCPSocket("ipv6"), as createUDPSocket("udp6")
            options = {"type": options}
        opts = dict(options) if isinstance(options, dict) else {}
        opts.update(kwargs)
        self.type = opts.get("type", "ipv4")
        family = FAMILIES.get(self.type) if isinstance(self.type, str) else None
        self._family = family or socket.AF_INET
        self._family_name = FAMILY_NAMES[self._family]
        self._limit: int = runtime.config["limits"]["tcpMaxBufferedBytes"]
        self._conn: "Optional[TcpConnection]" = None
        self._timer: Any = None
        self._pending: Deque[bytes] = deque()  # written while connecting
        self._accepted = 0  # bytes accepted by write(), not yet handed to the connection
        self._want_drain = False  # write() said False: onDrain is owed
        self._remote: Tuple[Any, ...] = ()
        self._local: Tuple[Any, ...] = ()
        if family is None or not (options is None or isinstance(options, dict)):
            self._admitted = False
            self._closed = True
            self._fire(EndpointEvent.FAIL)
            what = "type" if family is None else "options"
            self._error("createTCPSocket", SYSTEM_ERROR, "invalid " + what)
            self._later(self._listeners.emit, "Close", {})
            return
        creations = runtime.stash.setdefault(_CREATIONS, _Creations())
        self._admitted = creations.admit(
            runtime.loop.time(), runtime.config["limits"]["tcpCreatesPer5Min"]
        )

    # -- caller side --------------------------------------------------------------------------

    def connect(self, options: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        """Connect to `address`:`port` within `timeout` seconds (default 2); onConnect."""
        opts = dict(options) if isinstance(options, dict) else {}
        opts.update(kwargs)
        self._hop(self._connect_now, opts)

    def write(self, data: Any) -> bool:
        """Queue `data` (str: UTF-8; bytes-like) for the connection; errors go to onError.
        Returns False once more than `HIGH_WATER` bytes wait (then wait for onDrain)."""
        conn = self._conn
        if (  # the fast path: bytes written by a listener on the loop thread to an open socket
            type(data) is bytes
            and self._state is _OPEN
            and self._loop.thread_id == _get_ident()
            and not self._closed
            and conn is not None
        ):
            queued = self._accepted + conn.buffered + len(data)
            if queued <= HIGH_WATER:
                try:
                    conn.write(data)
                except FtError:
                    pass  # the connection is lost: its failed event follows
                return True
        payload = _payload(data)
        if payload is None:
            self._error("write", SYSTEM_ERROR, "invalid data")
            return False
        size = len(payload)
        with self._lock:
            if self._closed:
                refused: Optional[str] = "socket is closed"
            else:
                conn = self._conn
                queued = self._accepted + (conn.buffered if conn is not None else 0) + size
                if queued > self._limit:
                    refused = "send buffer full"
                else:
                    refused = None
                    self._accepted += size
                    if queued > HIGH_WATER:
                        self._want_drain = True
        if refused is not None:
            self._error("write", SOCKET_ERROR, refused)
            return False
        self._loop.run_or_post(self._write_now, payload)
        return queued <= HIGH_WATER

    def close(self) -> None:
        """Flush what was written (at most 2 s), close, then onClose; harmless when repeated."""
        super().close()

    def iter_messages(self, timeout: Optional[float] = None) -> MessageIterator:
        """Iterate over the onMessage dicts from now on, in any thread but the loop's. It ends
        at a clean close (ours, or the peer's EOF) and raises the `FtError` of a failed
        connect or a lost connection; `timeout` (seconds) bounds each wait (`TimeoutError`).
        Leaving early detaches it; the socket goes on. Rules and memory:
        `ftcore._api.messages`."""
        return messages.iterate(self, messages.TCP, timeout)

    def aiter_messages(self) -> AsyncMessageIterator:
        """`async for` form of `iter_messages()`, inside asyncio."""
        return messages.aiterate(self, messages.TCP)

    # -- loop side ----------------------------------------------------------------------------

    def _connect_now(self, opts: Dict[str, Any]) -> None:
        try:
            if self._closed or self._state is not _NEW:
                reason = "socket is closed" if self._closed or self._ended else "already connected"
                raise checks.Refused(SOCKET_ERROR, reason)
            host, port, timeout = self._checked(opts)
            self._check_rules(host, port)
        except checks.Refused as refused:
            self._error("connect", refused.code, refused.reason)
            if refused.code == NO_PERMISSION:
                self._end(EndpointEvent.FAIL)
            return
        except Exception as error:  # a policy plugin's bug: report it, never break the caller
            logger.exception("ftcore: connect on %r raised", self)
            self._error("connect", SYSTEM_ERROR, "internal error: %s" % error)
            return
        self._fire(EndpointEvent.CONNECT)
        request = TcpConnectRequest(
            host=host,
            port=port,
            family=self._family,
            timeout=timeout,
            high_water=HIGH_WATER,
            low_water=LOW_WATER,
        )
        try:
            self._conn = self._runtime.transport("tcp").connect(request, _Events(self))
        except FtError as error:
            self._on_failed(error)
            return
        self._timer = self._loop.call_later(timeout, self._connect_timed_out)

    def _checked(self, opts: Dict[str, Any]) -> Tuple[str, int, float]:
        """The host (brackets stripped), port and timeout of connect's options."""
        address = opts.get("address")
        if not isinstance(address, str) or not address:
            raise checks.Refused(BAD_ADDRESS, "invalid address")
        host = address[1:-1] if address.startswith("[") and address.endswith("]") else address
        checks.literal(host, self._family)  # raises for what is neither a literal nor a name
        port = checks.port(opts.get("port"), allow_zero=False)
        timeout = opts.get("timeout")
        if timeout is None:
            return host, port, DEFAULT_TIMEOUT_S
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise checks.Refused(SYSTEM_ERROR, "invalid timeout")
        return host, port, float(timeout)

    def _check_rules(self, host: str, port: int) -> None:
        """FinClip's restrictions: banned ports, the domain list, the creation limit (-3)."""
        if _banned(port, self._runtime.config["tcp"]["bannedPorts"]):
            raise checks.Refused(NO_PERMISSION, "port not allowed")
        url = "tcp://%s:%d" % ("[%s]" % host if ":" in host else host, port)
        try:
            self._runtime.check_url("tcp", url)
        except FtError as error:
            raise checks.Refused(NO_PERMISSION, error.reason) from None
        if not self._admitted:
            raise checks.Refused(NO_PERMISSION, "too many sockets created")

    def _write_now(self, payload: bytes) -> None:
        state = self._state
        if state is _CONNECTING:
            self._pending.append(payload)  # still counted in _accepted
            return
        if state is _OPEN:
            try:
                self._conn.write(payload)  # type: ignore[union-attr]
            except FtError:
                pass  # the connection is lost: its failed event follows
        else:
            reason = "socket is not connected" if state is _NEW else "socket is closed"
            self._error("write", SOCKET_ERROR, reason)
        with self._lock:
            self._accepted -= len(payload)
        self._check_drain()

    def _check_drain(self) -> None:
        """Fire onDrain once what write() said False for has drained to LOW_WATER."""
        with self._lock:
            if not self._want_drain or self._accepted:
                return
        conn = self._conn
        if self._state is not _OPEN or conn is None or conn.watch_drain():
            return  # not open (no drain to wait for), or `drained` will call back
        with self._lock:
            self._want_drain = False
        self._later(self._listeners.emit, "Drain", {})

    def _connect_timed_out(self) -> None:
        self._timer = None
        if self._state is _CONNECTING:
            self._on_failed(FtError(Errno.TIMEOUT))

    def _close_now(self) -> None:
        state = self._state
        if state is _OPEN:
            self._fire(EndpointEvent.CLOSE)
            self._conn.close(FLUSH_TIMEOUT_S)  # type: ignore[union-attr]
        elif state is _NEW or state is _CONNECTING:
            self._end(EndpointEvent.CLOSE)

    def _shutdown(self) -> None:
        self._closed = True
        if not self._ended:
            self._end(EndpointEvent.SHUTDOWN)

    def _end(self, event: EndpointEvent) -> None:
        """Drop the connection and its queue, enter a final state, fire onClose (loop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()
        self._pending.clear()
        self._fire(event)
        self._later(self._listeners.emit, "Close", {})

    # -- events from the transport (loop thread) -----------------------------------------------

    def _on_connected(self, local: Tuple[Any, ...], remote: Tuple[Any, ...]) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._fire(EndpointEvent.CONNECTED)
        self._local, self._remote = local, remote
        conn = self._conn
        assert conn is not None
        pending, self._pending = self._pending, deque()
        try:
            for payload in pending:
                conn.write(payload)
        except FtError:
            pass  # the connection is lost: its failed event follows
        finally:
            with self._lock:
                self._accepted -= sum(len(payload) for payload in pending)
        self._listeners.emit("Connect", {})
        self._check_drain()

    def _on_data(self, chunk: Any) -> None:
        if self._closed:
            return
        family, remote, local = self._family_name, self._remote, self._local
        self._listeners.emit(
            "Message",
            {
                "message": bytes(chunk),
                "remoteInfo": {"address": remote[0], "family": family, "port": remote[1]},
                "localInfo": {"address": local[0], "family": family, "port": local[1]},
            },
        )

    def _on_eof(self) -> None:
        if self._state is _OPEN:
            self._fire(EndpointEvent.PEER_CLOSED)
            self._conn.close(FLUSH_TIMEOUT_S)  # type: ignore[union-attr]

    def _on_failed(self, error: Exception) -> None:
        if self._ended:
            return
        if self._state is _CLOSING:  # lost while flushing: the close is over all the same
            self._on_closed()
            return
        connecting = self._state is _CONNECTING
        reason = error.reason if isinstance(error, FtError) else str(error)
        if not connecting:
            code, method = SOCKET_ERROR, "read"
        elif isinstance(error, FtError) and error.errno == Errno.TRANSPORT_UNAVAILABLE:
            code, method = SYSTEM_ERROR, "connect"
        else:
            code, method = CONNECT_FAILED, "connect"
        self._error(method, code, reason)
        self._end(EndpointEvent.FAIL)

    def _on_closed(self) -> None:
        if self._state is _CLOSING:
            self._conn = None
            self._fire(EndpointEvent.FLUSHED)
            self._later(self._listeners.emit, "Close", {})


class _Events:
    """`ftcore.transports.TcpEvents` of one socket: its bound handlers, called directly."""

    __slots__ = ("connected", "data", "drained", "eof", "failed", "closed")

    def __init__(self, sock: TCPSocket) -> None:
        self.connected = sock._on_connected
        self.data = sock._on_data
        self.drained = sock._check_drain
        self.eof = sock._on_eof
        self.failed = sock._on_failed
        self.closed = sock._on_closed


def _payload(data: Any) -> Optional[bytes]:
    """What `write` sends: UTF-8 for str, bytes as given, a copy of a mutable buffer."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    return None


def _banned(port: int, banned: Any) -> bool:
    for entry in banned:
        if isinstance(entry, int):
            if port == entry:
                return True
        elif entry[0] <= port <= entry[1]:
            return True
    return False
