"""UDP semantics: `createUDPSocket()` returns a `UDPSocket`; validation, errCodes, events.

Rules (API.md §5 and the seed's UDP section; the transport only moves datagrams):

* A UDPSocket has events, not success/fail (the socket base, `_core/endpoint.py`, with its
  `UDP` table: NEW, OPEN once receiving, CLOSED; FAILED if it could not be made). Its state
  lives on the loop thread: a method called from another thread hops there
  (`call_soon_threadsafe`, so calls from one thread keep their order), except `bind`, which
  binds on the caller's thread to return the port, and `send`/`write` on a host-driven loop
  between passes, which the caller makes as the loop thread (`EventLoop.run_or_post`).
  Listeners never run inside the API call that caused them, even on the loop thread.
* onError carries `{"errMsg": "<method>:fail <reason>", "errCode"}`. The first failing check
  wins, in this order: socket closed (-2), bad message/offset/length/size (-1), bad address
  (1), bad port (2), domain list or broadcast refused (-3), name not resolved (1), then what
  the kernel says (-2; EACCES/EPERM: -3). The codes are the seed's:

    -1  system error: an argument other than address/port is wrong (message type, offset,
        length, a datagram over 65,507 bytes, TTL), or an internal failure
    -2  socket error: the socket call failed (address in use, connection refused after an
        ICMP port unreachable, socket closed, no buffer space)
    -3  no permission: destination outside the `udp` domain list, broadcast address without
        `setBroadcast: True`, EACCES/EPERM from the kernel
     1  address is not an IP literal of the socket's family nor a resolvable host name
     2  port is not an integer in 1-65535 (0-65535 for bind)

* `bind(port=0)` returns the bound port, then onListening fires (before onClose, even when
  `close()` follows at once). A failed bind (port in use, bad port, closed socket, already
  bound) fires onError and returns 0; the socket stays usable, so another `bind` may follow.
* `send` before `bind` binds a free port implicitly (as the kernel does) and starts receiving;
  onListening is only for `bind`.
* Destinations: IP literals are parsed once and cached per socket; host names are resolved on
  a short-lived worker thread (never on the loop), cached for `NAME_TTL_S`, and sends issued
  meanwhile wait so datagrams leave in call order. The domain list is checked with the name
  as given (`udp://host:port`); a destination allowed once stays allowed for the socket's
  life (the cache is what makes a send cost one syscall).
* A `udp6` socket also reaches IPv4 literals (as v4-mapped `::ffff:a.b.c.d`); a `udp4` socket
  refuses IPv6 literals (errCode 1).
* `connect` fixes the peer; `write` then goes to it. `write` may repeat the address and port
  given to `connect` (the seed's form); a different destination is errCode 1. Without
  `connect`, `write` is `send`.
* bytes are sent without a copy (a view when `offset`/`length` slice them); a mutable buffer
  (bytearray, memoryview) passed from another thread is copied at the call, since the caller
  may reuse it before the loop sends it.
* `close()`: no message event after it; the fd is released on the loop thread at once (calls
  made before it, on the same thread, still run first); onClose fires once; `close()` again
  is harmless; every later call fires onError -2 `"<method>:fail socket is closed"`. Sends
  still waiting for a name lookup are dropped.
  `Runtime.close()` closes every live socket (`_shutdown`).
"""

from __future__ import annotations

import errno as _errno
import logging
import socket
from collections import deque
from threading import get_ident as _get_ident
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Optional, Tuple

from . import udp_checks as checks
from .._core.endpoint import UDP, Endpoint, EndpointEvent, EndpointState
from .._core.listeners import event_methods
from . import messages
from .messages import AsyncMessageIterator, MessageIterator
from .udp_checks import (
    FAMILIES,
    FAMILY_NAMES,
    LIMITED_BROADCAST,
    BAD_ADDRESS,
    BAD_PORT,
    MAX_DATAGRAM,
    NO_PERMISSION,
    SOCKET_ERROR,
    SYSTEM_ERROR,
    Sockaddr,
)
from ..errors import FtError

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = [
    "UDPSocket",
    "SYSTEM_ERROR",
    "SOCKET_ERROR",
    "NO_PERMISSION",
    "BAD_ADDRESS",
    "BAD_PORT",
    "MAX_DATAGRAM",
]

logger = logging.getLogger("ftcore")

NAME_TTL_S = 30.0
DEST_CACHE_MAX = 1024

# A cached destination: (sockaddr, is_broadcast, expires on the loop clock)
_Dest = Tuple[Sockaddr, bool, float]
_WAIT = object()  # a destination being resolved: the operation resumes later
_OPEN = EndpointState.OPEN


class UDPSocket(Endpoint):
    """A UDP socket of the mini-program API (`createUDPSocket`); safe to use from any thread."""

    _table = UDP

    def __init__(self, runtime: "Runtime", type: Any = "udp4") -> None:  # noqa: A002
        super().__init__(runtime)  # tracked by the runtime from here
        self.type = type
        self._bound = 0
        self._broadcast = False
        self._peer: Optional[Tuple[Any, Any, int]] = None  # (address given, ip, port)
        self._dests: Dict[Tuple[Any, Any], _Dest] = {}
        self._waiting = False  # a name lookup is in flight: later sends/connects queue
        self._pending: Deque[Tuple[Callable[..., None], Tuple[Any, ...]]] = deque()
        self._endpoint: Any = None
        family = FAMILIES.get(type) if isinstance(type, str) else None
        self._family = family or socket.AF_INET
        self._family_name = FAMILY_NAMES[self._family]
        try:
            if family is None:
                raise checks.Refused(SYSTEM_ERROR, "invalid type")
            self._endpoint = runtime.transport("udp").open(
                family, _Events(self._on_message, self._on_error)
            )
        except (checks.Refused, FtError, OSError) as error:
            if isinstance(error, checks.Refused):
                code, reason = error.code, error.reason
            elif isinstance(error, FtError):
                code, reason = SYSTEM_ERROR, error.reason
            else:
                code, reason = checks.os_error(error)
            self._closed = True
            self._fire(EndpointEvent.FAIL)
            self._error("createUDPSocket", code, reason)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("bound :%d" % self._bound if self._bound else "new")
        return "<UDPSocket #%d %s %s>" % (self.id, self.type, state)

    onClose, offClose = event_methods("Close")  # noqa: N815
    onError, offError = event_methods("Error")  # noqa: N815
    onListening, offListening = event_methods("Listening")  # noqa: N815
    onMessage, offMessage = event_methods("Message")  # noqa: N815

    # -- caller side --------------------------------------------------------------------------

    def bind(self, port: Any = 0) -> int:
        """Bind every interface on `port` (0: a free one); return the port, 0 on failure."""
        try:
            number = checks.port(port, allow_zero=True)
            with self._lock:
                if self._closed:
                    raise checks.Refused(SOCKET_ERROR, "socket is closed")
                if self._bound:
                    raise checks.Refused(SOCKET_ERROR, "socket already bound")
                try:
                    self._bound = self._endpoint.bind(number)
                except OSError as error:
                    if error.errno == _errno.EINVAL:  # a send or connect bound it already
                        raise checks.Refused(SOCKET_ERROR, "socket already bound") from None
                    raise checks.Refused(*checks.os_error(error)) from None
        except checks.Refused as refused:
            self._error("bind", refused.code, refused.reason)
            return 0
        self._later(self._listening)
        return self._bound

    def setTTL(self, ttl: Any) -> None:  # noqa: N802
        """Set the IP TTL (IPv6: unicast hops) of outgoing datagrams: 1-255 (udp6: 0-255)."""
        self._hop(self._set_ttl_now, ttl)

    def send(self, options: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        """Send `message` to `address`:`port` as one datagram (errors: onError)."""
        # The fast path: a listener on the loop thread sending bytes, whole, to an IP literal
        # this socket has sent to before (a reply, a ping-pong). It makes exactly the checks
        # `_send_now` would make on this input, with the destination's cached verdict.
        if (
            not kwargs
            and type(options) is dict
            and self._loop.thread_id == _get_ident()
            and self._state is _OPEN
            and not (self._closed or self._waiting or self._broadcast)
        ):
            data = options.get("message")
            port = options.get("port")
            try:
                dest = self._dests.get((options.get("address"), port))
            except TypeError:
                dest = None
            if (
                dest is not None
                and type(port) is int  # not True, which equals 1
                and dest[2] == 0.0  # a literal: never expires
                and not dest[1]  # not a broadcast address
                and type(data) is bytes
                and len(data) <= MAX_DATAGRAM
                and "offset" not in options
                and "length" not in options
                and not options.get("setBroadcast")
            ):
                try:
                    self._endpoint.send(data, dest[0])
                except OSError as error:
                    self._error("send", *checks.os_error(error))
                return
        self._submit("send", options, kwargs)

    def write(self, options: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        """`send` to the peer fixed by `connect` (address and port may be omitted)."""
        self._submit("write", options, kwargs)

    def connect(self, options: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        """Fix the peer (`address`, `port`) for `write`; only its datagrams are received."""
        self._hop(self._connect_now, _options(options, kwargs))

    def close(self) -> None:
        """Stop receiving, release the socket and fire onClose once; harmless when repeated."""
        super().close()

    def iter_messages(self, timeout: Optional[float] = None) -> MessageIterator:
        """Iterate over the onMessage dicts from now on, in any thread but the loop's. It ends
        when the socket closes; a consumer more than `limits.streamBufferBytes` behind loses
        the oldest datagrams (counted in `dropped`); `timeout` (seconds) bounds each wait
        (`TimeoutError`). Leaving early detaches it; the socket goes on. Rules and memory:
        `ftcore._api.messages`."""
        return messages.iterate(self, messages.UDP, timeout)

    def aiter_messages(self) -> AsyncMessageIterator:
        """`async for` form of `iter_messages()`, inside asyncio."""
        return messages.aiterate(self, messages.UDP)

    # -- loop side ----------------------------------------------------------------------------

    def _submit(self, method: str, options: Any, kwargs: Dict[str, Any]) -> None:
        in_loop = self._loop.in_loop_thread()
        opts = _options(options, kwargs)
        if not in_loop and opts is options:
            opts = dict(opts)  # the caller may change its dict before the loop reads it
        try:
            data: Any = checks.message(opts, copy_mutable=not in_loop)
        except checks.Refused as refused:
            data = refused
        self._loop.run_or_post(self._send_now, method, opts, data)

    def _send_now(self, method: str, opts: Dict[str, Any], data: Any) -> None:
        if self._waiting:
            self._pending.append((self._send_now, (method, opts, data)))
            return
        with checks.Reported(self._error, method):
            if self._ended:
                raise checks.Refused(SOCKET_ERROR, "socket is closed")
            if isinstance(data, checks.Refused):
                raise data
            if method == "write" and self._peer is not None:
                self._check_peer(opts)
                self._endpoint.write(data)
            else:
                dest = self._destination(method, opts, self._send_now, (method, opts, data))
                if dest is _WAIT:
                    return
                sockaddr, broadcast, _ = dest
                want = bool(opts.get("setBroadcast"))
                if broadcast and not want:
                    raise checks.Refused(NO_PERMISSION, "broadcast not enabled")
                if want != self._broadcast:
                    self._endpoint.set_broadcast(want)
                    self._broadcast = want
                self._endpoint.send(data, sockaddr)
            if self._state is not _OPEN:
                self._start_reading()

    def _connect_now(self, opts: Dict[str, Any]) -> None:
        if self._waiting:
            self._pending.append((self._connect_now, (opts,)))
            return
        with checks.Reported(self._error, "connect"):
            if self._ended:
                raise checks.Refused(SOCKET_ERROR, "socket is closed")
            dest = self._destination("connect", opts, self._connect_now, (opts,))
            if dest is _WAIT:
                return
            sockaddr = dest[0]
            self._endpoint.connect(sockaddr)
            self._peer = (opts.get("address"), sockaddr[0], sockaddr[1])
            self._start_reading()

    def _check_peer(self, opts: Dict[str, Any]) -> None:
        assert self._peer is not None
        given, ip, port = self._peer
        address = opts.get("address")
        if address is not None and address != given and address != ip:
            raise checks.Refused(BAD_ADDRESS, "not the connected address")
        if opts.get("port") is not None and checks.port(opts["port"], allow_zero=False) != port:
            raise checks.Refused(BAD_PORT, "not the connected port")

    def _destination(
        self, method: str, opts: Dict[str, Any], resume: Callable[..., None], args: Tuple[Any, ...]
    ) -> Any:
        """The cached (sockaddr, broadcast, expires) of `opts`, or `_WAIT` while resolving."""
        address = opts.get("address")
        port = opts.get("port")
        key = (address, port)
        dest = None
        if type(port) is int:  # not True, which equals 1
            try:
                dest = self._dests.get(key)
            except TypeError:  # an unhashable address: refused below
                pass
        if dest is not None and (dest[2] == 0.0 or dest[2] > self._loop.time()):
            return dest
        if not isinstance(address, str) or not address:
            raise checks.Refused(BAD_ADDRESS, "invalid address")
        host = address[1:-1] if address.startswith("[") and address.endswith("]") else address
        template = checks.literal(host, self._family)
        number = checks.port(port, allow_zero=False)
        self._check_domain(host, number)
        if template is None:
            self._resolve(method, host, number, key, resume, args)
            return _WAIT
        sockaddr = (template[0], number) + tuple(template[2:])
        dest = (sockaddr, sockaddr[0] == LIMITED_BROADCAST, 0.0)
        self._remember(key, dest)
        return dest

    def _check_domain(self, host: str, port: int) -> None:
        url = "udp://%s:%d" % ("[%s]" % host if ":" in host else host, port)
        try:
            self._runtime.check_url("udp", url)
        except FtError as error:
            raise checks.Refused(NO_PERMISSION, error.reason) from None

    def _remember(self, key: Tuple[Any, Any], dest: _Dest) -> None:
        if len(self._dests) >= DEST_CACHE_MAX:
            self._dests.clear()
        self._dests[key] = dest

    def _resolve(
        self,
        method: str,
        host: str,
        port: int,
        key: Tuple[Any, Any],
        resume: Callable[..., None],
        args: Tuple[Any, ...],
    ) -> None:
        """Look `host` up off the loop (the runtime's resolver, shared with TCP and WebSocket);
        `resume(*args)` runs on the loop afterwards."""
        self._waiting = True
        family = self._family
        flags = socket.AI_V4MAPPED if family == socket.AF_INET6 else 0

        def resolved(result: Any) -> None:
            if not isinstance(result, BaseException):
                result = result[0][1] if result else OSError("no address")
            self._resolved(method, key, result, resume, args)

        try:
            self._runtime.net.resolver.lookup(host, port, family, flags, resolved)
        except (RuntimeError, FtError) as error:  # the runtime is closing
            self._loop.call_soon(self._resolved, method, key, error, resume, args)

    def _resolved(
        self,
        method: str,
        key: Tuple[Any, Any],
        result: Any,
        resume: Callable[..., None],
        args: Tuple[Any, ...],
    ) -> None:
        self._waiting = False
        if self._ended:
            return
        if isinstance(result, BaseException):
            self._error(method, BAD_ADDRESS, "address not resolved")
        else:
            broadcast = result[0] == LIMITED_BROADCAST
            self._remember(key, (result, broadcast, self._loop.time() + NAME_TTL_S))
            resume(*args)
        pending = self._pending
        while pending and not self._waiting:
            fn, fn_args = pending.popleft()
            fn(*fn_args)

    def _set_ttl_now(self, ttl: Any) -> None:
        with checks.Reported(self._error, "setTTL"):
            if self._ended:
                raise checks.Refused(SOCKET_ERROR, "socket is closed")
            if isinstance(ttl, float) and ttl.is_integer():
                ttl = int(ttl)
            low = 0 if self._family == socket.AF_INET6 else 1
            if not isinstance(ttl, int) or isinstance(ttl, bool) or not low <= ttl <= 255:
                raise checks.Refused(SYSTEM_ERROR, "invalid ttl")
            self._endpoint.set_ttl(ttl)

    def _listening(self) -> None:
        # Fires for every successful bind, before onClose even if close() followed at once.
        self._start_reading()
        self._listeners.emit("Listening", {})

    def _start_reading(self) -> None:
        if self._state is EndpointState.NEW:
            self._endpoint.start()
            self._fire(EndpointEvent.OPEN)

    def _close_now(self) -> None:
        """Close the endpoint now and schedule onClose; loop thread, once."""
        if self._ended:
            return
        self._pending.clear()
        try:
            self._endpoint.close()
        except Exception:
            logger.exception("ftcore: closing %r raised", self)
        self._fire(EndpointEvent.CLOSE)
        self._loop.call_soon(self._listeners.emit, "Close", {})

    def _shutdown(self) -> None:
        """The runtime is closing: close now (loop thread); onClose fires."""
        self._closed = True
        self._close_now()

    # -- events from the transport (loop thread) -----------------------------------------------

    def _on_message(self, data: bytes, remote: Sockaddr, local: Sockaddr) -> None:
        if self._closed:
            return
        size = len(data)
        family = self._family_name
        self._listeners.emit(
            "Message",
            {
                "message": data,
                "remoteInfo": {
                    "address": remote[0],
                    "family": family,
                    "port": remote[1],
                    "size": size,
                },
                "localInfo": {
                    "address": local[0],
                    "family": family,
                    "port": local[1],
                    "size": size,
                },
            },
        )

    def _on_error(self, error: OSError, op: str) -> None:
        if self._closed:
            return
        self._error(op, *checks.os_error(error))


class _Events:
    """`ftcore.transports.UdpEvents` for one socket: its bound methods, called directly."""

    __slots__ = ("message", "error")

    def __init__(self, message: Callable[..., None], error: Callable[..., None]) -> None:
        self.message = message
        self.error = error


def _options(options: Any, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    if options is None:
        return kwargs
    if not isinstance(options, dict):
        return {"__invalid__": options, **kwargs}
    if kwargs:
        merged = dict(options)
        merged.update(kwargs)
        return merged
    return options
