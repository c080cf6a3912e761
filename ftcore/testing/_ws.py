"""The WebSocket half of the mock: scripted peers, the record of each connection, the transport.

A route holds a script, a list of steps run in order on every connection it accepts:
`send` a message, `expect` the next message from the client, `wait`, then `close` or `drop`.
Steps run on the runtime's loop (`call_soon` / `call_later`) and every `WsEvents` call is made
there, as the real transport does.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Deque, List, Optional, Tuple, Union

from ..errors import Errno, FtError
from ._errors import transport_error
from ._http import HeadersSpec, _header_list
from ._match import UrlMatcher, UrlSpec
from ._script import (
    ANY,
    LoopTransport,
    PeerRecord,
    ScriptedConnection,
    ScriptedMock,
    ScriptedRoute,
    Step,
    satisfies,
)

if TYPE_CHECKING:
    from ..transports import WsConnectRequest, WsEvents

__all__ = ["ANY", "WsRoute", "WsMock", "MockWebSocket"]

Message = Union[str, bytes]
Expectation = Union[Message, Callable[[Message], bool], Any]


class WsRoute(ScriptedRoute["MockWebSocket"]):
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
        super().__init__(error, delay, echo, times)
        self.matcher = UrlMatcher(url, prefix)
        self.protocol = protocol
        self.headers = _header_list(headers)
        self.status = status

    def __repr__(self) -> str:
        return "<WsRoute %r, %d connection(s)>" % (self.matcher, len(self.connections))

    def _accepts(self, record: "MockWebSocket") -> bool:
        return self.matcher.matches(record.url)

    # -- the script ---------------------------------------------------------------------------

    def send(self, data: Message) -> "WsRoute":
        """Send `data` to the client (a text message for str, binary for bytes)."""
        if not isinstance(data, (str, bytes)):
            raise TypeError("a message is str or bytes, not %s" % type(data).__name__)
        return self._add("send", data)

    def expect(self, data: Expectation = ANY) -> "WsRoute":
        """Wait for the next client message; it must equal `data` (or satisfy it, if callable).

        A message that does not match is recorded in `MockWebSocket.mismatches` and the peer
        closes with 1008 (policy violation).
        """
        return self._add("expect", data)

    def close(self, code: int = 1000, reason: str = "") -> "WsRoute":
        """Close the connection from the server with `code` and `reason`."""
        return self._add("close", int(code), str(reason))

    def drop(self) -> "WsRoute":
        """Cut the TCP connection without a close frame: the client sees code 1006."""
        return self._add("drop")


class MockWebSocket(PeerRecord[WsRoute, "_Connection"]):
    """The record of one connection, and the server's hand on it.

    `received` lists the client's messages, `sent` the peer's; `client_close` is the
    ``(code, reason)`` the client closed with (None if it did not), `closed` the ``(code,
    reason)`` the client was told when the socket ended. `push`, `close` and `drop` act as the
    server, from any thread.
    """

    _peer = "mock server"

    def __init__(self, route: Optional[WsRoute], request: "WsConnectRequest") -> None:
        super().__init__(route)
        self.url = request.url
        self.headers: List[Tuple[str, str]] = list(request.headers)
        self.protocols: List[str] = list(request.protocols)
        self.protocol = ""
        self.received: List[Message] = []
        self.sent: List[Message] = []
        self.mismatches: List[str] = []
        self.client_close: Optional[Tuple[int, str]] = None
        self.closed: Optional[Tuple[int, str]] = None

    def __repr__(self) -> str:
        return "<MockWebSocket %s %s>" % (
            self.url,
            "closed %r" % (self.closed,) if self.closed else "live",
        )

    def header(self, name: str) -> Optional[str]:
        """The first value of handshake header `name` (case-insensitive), or None."""
        lower = name.lower()
        return next((v for n, v in self.headers if n.lower() == lower), None)

    def push(self, data: Message) -> None:
        """Send `data` to the client now (outside the script)."""
        self._call(lambda conn: conn._peer_send(data))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close from the server now."""
        self._call(lambda conn: conn._server_close(code, reason))

    def drop(self) -> None:
        """Cut the connection now, without a close frame (1006)."""
        self._call(lambda conn: conn._drop())


class WsMock(ScriptedMock[WsRoute, MockWebSocket]):
    """The scripted WebSocket server of a `MockTransport` (``mock.ws``).

    Routes are tried in the order they were added; the first that matches (and is not
    exhausted) accepts. A URL no route matches fails the handshake (``connection refused``).
    """

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
        return self._add_route(
            WsRoute(url, prefix, protocol, headers, status, error, delay, echo, times)
        )


class _Transport(LoopTransport[WsMock, "_Connection"]):
    """`WsTransport` over a `WsMock`, bound to one runtime's loop."""

    def connect(self, request: "WsConnectRequest", events: "WsEvents") -> "_Connection":
        record = MockWebSocket(None, request)
        route = self._mock._accept(record)
        conn = self._track(_Connection(self, record, route, request, events))
        self._loop.call_soon_threadsafe(conn._guarded, _Connection._handshake)
        return conn


class _Connection(ScriptedConnection[WsRoute, MockWebSocket]):
    """The `WsConnection` the core holds; runs the route's script."""

    _what = "WebSocket"

    def __init__(
        self,
        transport: _Transport,
        record: MockWebSocket,
        route: Optional[WsRoute],
        request: "WsConnectRequest",
        events: "WsEvents",
    ) -> None:
        super().__init__(transport, record, route)
        self._request = request
        self._events = events
        self._inbox: Deque[Message] = deque()

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

    def _script_ended(self, echo: bool) -> None:
        if echo:
            while self._inbox and self.state == "open":
                self._peer_send(self._inbox.popleft())
        else:
            self._inbox.clear()

    def _run_step(self, step: Step) -> None:
        if step[0] == "close":
            self._server_close(step[1], step[2])
        elif step[0] == "drop":
            self._drop()

    def _expect(self, expected: Expectation) -> bool:
        """Take the client's next message; a mismatch closes with 1008."""
        if not self._inbox:
            return False
        message = self._inbox.popleft()
        if not satisfies(message, expected):
            self._record.mismatches.append("expected %r, received %r" % (expected, message))
            self._server_close(1008, "ftcore.testing: unexpected message")
            return False
        return True

    def _peer_send(self, data: Message) -> None:
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
        if not self._stop():
            return
        self._record.closed = (code, reason)
        if notify:
            self._events.closed(code, reason)
