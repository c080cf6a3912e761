"""The WebSocket half of the mock: scripted peers, the record of each connection, the transport.

A route holds a script, a list of steps run in order on every connection it accepts:
`send` a message, `expect` the next message from the client, `wait`, then `close` or `drop`.
Steps run on the runtime's loop (`call_soon` / `call_later`) and every `WsEvents` call is made
there, as the real transport does.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Deque,
    Dict,
    List,
    Optional,
    Tuple,
    Union,
)

from ..errors import Errno, FtError
from ._http import HeadersSpec, _header_list, transport_error
from ._match import UrlMatcher, UrlSpec

if TYPE_CHECKING:
    from .._api.runtime import Runtime
    from ..loop import Handle
    from ..transports import WsConnectRequest, WsEvents

__all__ = ["ANY", "WsRoute", "WsMock", "MockWebSocket"]

logger = logging.getLogger("ftcore")

Message = Union[str, bytes]
Expectation = Union[Message, Callable[[Message], bool], Any]


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()
"""Matches any message in `WsRoute.expect`."""

Step = Tuple[Any, ...]


class WsRoute:
    """A scripted WebSocket peer for the URLs its rule matches.

    Build the script by chaining: ``mock.ws.add(url).send("hello").expect("ping")
    .send("pong").close(1000, "bye")``. Each connection runs the script from the start.
    When the script ends the connection stays open; with ``echo=True`` the peer then returns
    every message it receives.
    """

    def __init__(
        self,
        url: UrlSpec,
        prefix: bool = False,
        protocol: Optional[str] = None,
        headers: HeadersSpec = None,
        status: int = 101,
        error: Union[str, Exception, None] = None,
        delay: float = 0.0,
        echo: bool = False,
        times: Optional[int] = None,
    ) -> None:
        self.matcher = UrlMatcher(url, prefix)
        self.protocol = protocol
        self.headers = _header_list(headers)
        self.status = status
        if error is not None:
            transport_error(error)  # validates the kind
        self.error = error
        self.delay = delay
        self.echo = echo
        self.times = times
        self.steps: List[Step] = []
        self.connections: List[MockWebSocket] = []

    def __repr__(self) -> str:
        return "<WsRoute %r, %d connection(s)>" % (self.matcher, len(self.connections))

    # -- the script ---------------------------------------------------------------------------

    def send(self, data: Message) -> "WsRoute":
        """Send `data` to the client (a text message for str, binary for bytes)."""
        if not isinstance(data, (str, bytes)):
            raise TypeError("a message is str or bytes, not %s" % type(data).__name__)
        self.steps.append(("send", data))
        return self

    def expect(self, data: Expectation = ANY) -> "WsRoute":
        """Wait for the next client message; it must equal `data` (or satisfy it, if callable).

        A message that does not match is recorded in `MockWebSocket.mismatches` and the peer
        closes with 1008 (policy violation).
        """
        self.steps.append(("expect", data))
        return self

    def wait(self, seconds: float) -> "WsRoute":
        """Pause the script (a loop timer, not a sleep)."""
        self.steps.append(("wait", float(seconds)))
        return self

    def close(self, code: int = 1000, reason: str = "") -> "WsRoute":
        """Close the connection from the server with `code` and `reason`."""
        self.steps.append(("close", int(code), str(reason)))
        return self

    def drop(self) -> "WsRoute":
        """Cut the TCP connection without a close frame: the client sees code 1006."""
        self.steps.append(("drop",))
        return self

    @property
    def exhausted(self) -> bool:
        return self.times is not None and len(self.connections) >= self.times

    @property
    def called(self) -> bool:
        return bool(self.connections)


class MockWebSocket:
    """The record of one connection, and the server's hand on it.

    `received` lists the client's messages, `sent` the peer's; `client_close` is the
    ``(code, reason)`` the client closed with (None if it did not), `closed` the ``(code,
    reason)`` the client was told when the socket ended. `push`, `close` and `drop` act as the
    server, from any thread.
    """

    def __init__(self, route: Optional[WsRoute], request: "WsConnectRequest") -> None:
        self.route = route
        self.url = request.url
        self.headers: List[Tuple[str, str]] = list(request.headers)
        self.protocols: List[str] = list(request.protocols)
        self.protocol = ""
        self.received: List[Message] = []
        self.sent: List[Message] = []
        self.mismatches: List[str] = []
        self.client_close: Optional[Tuple[int, str]] = None
        self.closed: Optional[Tuple[int, str]] = None
        self._conn: Optional[_Connection] = None

    def __repr__(self) -> str:
        return "<MockWebSocket %s %s>" % (
            self.url,
            "closed %r" % (self.closed,) if self.closed else "live",
        )

    def header(self, name: str) -> Optional[str]:
        """The first value of handshake header `name` (case-insensitive), or None."""
        lower = name.lower()
        return next((v for n, v in self.headers if n.lower() == lower), None)

    @property
    def open(self) -> bool:
        return self._conn is not None and self._conn.state == "open"

    def push(self, data: Message) -> None:
        """Send `data` to the client now (outside the script)."""
        self._call(lambda conn: conn._server_send(data))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close from the server now."""
        self._call(lambda conn: conn._server_close(code, reason))

    def drop(self) -> None:
        """Cut the connection now, without a close frame (1006)."""
        self._call(lambda conn: conn._drop())

    def _call(self, action: Callable[["_Connection"], None]) -> None:
        conn = self._conn
        if conn is None:
            raise RuntimeError("this connection never reached the mock server")
        conn._loop.call_soon_threadsafe(conn._guarded, action)


class WsMock:
    """The scripted WebSocket server of a `MockTransport` (``mock.ws``).

    Routes are tried in the order they were added; the first that matches (and is not
    exhausted) accepts. A URL no route matches fails the handshake (``connection refused``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.routes: List[WsRoute] = []
        self.connections: List[MockWebSocket] = []

    def add(
        self,
        url: UrlSpec,
        *,
        prefix: bool = False,
        protocol: Optional[str] = None,
        headers: HeadersSpec = None,
        status: int = 101,
        error: Union[str, Exception, None] = None,
        delay: float = 0.0,
        echo: bool = False,
        times: Optional[int] = None,
    ) -> WsRoute:
        """Script a peer for `url` (see `UrlMatcher` for the rules); returns it to chain steps.

        `protocol` is the subprotocol the server picks (default: the client's first offer),
        `headers` the handshake response headers, `status` anything but 101 rejects the
        handshake, `error` fails the connection as the transport would report it
        (``"refused"``, ``"tls"``, ``"dns"``, ``"network"`` or an exception), `delay` is the
        handshake's duration in seconds (``math.inf``: it never completes), `times` limits how
        many connections the route accepts.
        """
        route = WsRoute(url, prefix, protocol, headers, status, error, delay, echo, times)
        with self._lock:
            self.routes.append(route)
        return route

    def reset(self) -> None:
        with self._lock:
            self.routes.clear()
            self.connections.clear()

    def _accept(self, record: MockWebSocket) -> Optional[WsRoute]:
        with self._lock:
            self.connections.append(record)
            for route in self.routes:
                if not route.exhausted and route.matcher.matches(record.url):
                    route.connections.append(record)
                    record.route = route
                    return route
        return None


class _Transport:
    """`WsTransport` over a `WsMock`, bound to one runtime's loop."""

    def __init__(self, mock: WsMock, runtime: "Runtime") -> None:
        self._mock = mock
        self._loop = runtime.loop
        self._live: Dict[int, _Connection] = {}

    def connect(self, request: "WsConnectRequest", events: "WsEvents") -> "_Connection":
        record = MockWebSocket(None, request)
        route = self._mock._accept(record)
        conn = _Connection(self, record, route, request, events)
        self._live[id(conn)] = conn
        self._loop.call_soon_threadsafe(conn._guarded, _Connection._handshake)
        return conn

    def close(self) -> None:
        for conn in list(self._live.values()):
            conn.abort()


class _Connection:
    """The `WsConnection` the core holds; runs the route's script."""

    def __init__(
        self,
        transport: _Transport,
        record: MockWebSocket,
        route: Optional[WsRoute],
        request: "WsConnectRequest",
        events: "WsEvents",
    ) -> None:
        self._transport = transport
        self._loop = transport._loop
        self._record = record
        self._route = route
        self._request = request
        self._events = events
        self.state = "connecting"
        self._steps: Deque[Step] = deque(route.steps if route else ())
        self._inbox: Deque[Message] = deque()
        self._waiting = False  # a `wait` step or the handshake is pending
        self._handles: List["Handle"] = []
        record._conn = self

    # -- WsConnection (called by the core, loop thread) -----------------------------------------

    def send(self, data: Union[str, bytes]) -> None:
        if self.state != "open":
            raise FtError(Errno.WS_NOT_CONNECTED)
        message: Message = data if isinstance(data, str) else bytes(data)
        self._record.received.append(message)
        self._inbox.append(message)
        self._soon(_Connection._advance)

    def close(self, code: int, reason: str) -> None:
        if self.state in ("closing", "closed"):
            return
        self._record.client_close = (code, reason)
        if self.state == "connecting":
            self.abort()
            return
        self.state = "closing"
        self._soon(lambda conn: conn._end(code, reason))

    def abort(self, code: Optional[int] = None) -> None:
        """Drop the connection now; `code` is the close frame attempted when open (the core
        reports the close itself: the events hear nothing more)."""
        if self.state == "closed":
            return
        if code is not None and self.state == "open":
            self._record.client_close = (code, "")
        self._end(code if code is not None and self.state == "open" else 1006, "", notify=False)

    # -- the server side --------------------------------------------------------------------

    def _guarded(self, action: Callable[["_Connection"], None]) -> None:
        if self.state == "closed":
            return
        try:
            action(self)
        except Exception:
            logger.exception("ftcore.testing: a WebSocket mock step raised")

    def _soon(self, action: Callable[["_Connection"], None], delay: float = 0.0) -> None:
        if math.isinf(delay):
            return
        if delay:
            self._handles.append(self._loop.call_later(delay, self._guarded, action))
        else:
            self._handles.append(self._loop.call_soon(self._guarded, action))

    def _handshake(self) -> None:
        route = self._route
        if route is None:
            self._fail(
                FtError(
                    Errno.CONNECTION_REFUSED,
                    "connection refused (ftcore.testing: no mock route for %s)" % self._record.url,
                )
            )
            return
        self._soon(_Connection._accept, route.delay)  # the core times the handshake out

    def _accept(self) -> None:
        route = self._route
        assert route is not None
        if route.error is not None:
            self._fail(transport_error(route.error))
            return
        if route.status != 101:
            self._fail(
                FtError(
                    Errno.WS_CONNECT_FAILED,
                    "connect failed: unexpected HTTP status %d in the handshake" % route.status,
                )
            )
            return
        offered = self._request.protocols
        protocol = route.protocol if route.protocol is not None else (offered[0] if offered else "")
        self._record.protocol = protocol
        self.state = "open"
        headers = {"Upgrade": "websocket", "Connection": "Upgrade"}
        if protocol:
            headers["Sec-WebSocket-Protocol"] = protocol
        headers.update(dict(route.headers))
        self._events.opened(headers, protocol)
        self._advance()

    def _advance(self) -> None:
        """Run script steps until one must wait (a timer, or a message not yet received)."""
        while self.state == "open" and not self._waiting:
            if not self._steps:
                if self._route is not None and self._route.echo:
                    while self._inbox and self.state == "open":
                        self._server_send(self._inbox.popleft())
                else:
                    self._inbox.clear()
                return
            step = self._steps[0]
            kind = step[0]
            if kind == "expect":
                if not self._inbox:
                    return
                self._steps.popleft()
                message = self._inbox.popleft()
                if not _satisfies(message, step[1]):
                    self._record.mismatches.append("expected %r, received %r" % (step[1], message))
                    self._server_close(1008, "ftcore.testing: unexpected message")
                    return
                continue
            self._steps.popleft()
            if kind == "send":
                self._server_send(step[1])
            elif kind == "wait":
                self._waiting = True
                self._soon(_Connection._wake, step[1])
            elif kind == "close":
                self._server_close(step[1], step[2])
            elif kind == "drop":
                self._drop()

    def _wake(self) -> None:
        self._waiting = False
        self._advance()

    def _server_send(self, data: Message) -> None:
        if self.state != "open":
            return
        self._record.sent.append(data)
        self._events.message(data)

    def _server_close(self, code: int, reason: str) -> None:
        if self.state in ("connecting", "closed"):
            return
        self.state = "closing"
        self._end(code, reason)

    def _drop(self) -> None:
        if self.state == "connecting":
            self._fail(FtError(Errno.CONNECTION_RESET))
            return
        self._end(1006, "")  # not an error, as in browsers: onClose alone

    def _fail(self, error: Exception) -> None:
        self._events.failed(error)
        self._end(1006, "")

    def _end(self, code: int, reason: str, notify: bool = True) -> None:
        if self.state == "closed":
            return
        self.state = "closed"
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
        self._transport._live.pop(id(self), None)
        self._record.closed = (code, reason)
        if notify:
            self._events.closed(code, reason)


def _satisfies(message: Message, expected: Expectation) -> bool:
    if expected is ANY:
        return True
    if callable(expected):
        return bool(expected(message))
    return bool(message == expected)
