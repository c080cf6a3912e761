"""The TCP half of the mock: scripted peers for `createTCPSocket`, the record of each connection,
and the transport.

A route holds a script, steps run in order on every connection it accepts: `send` bytes,
`expect` bytes from the client, `wait`, then `close` (the peer's EOF) or `reset`. TCP is a
byte stream, so `expect(b"ping")` waits until that many bytes have arrived (however the client
wrote them) and compares them; `expect()` or `expect(callable)` takes the client's next write
whole. Steps run on the runtime's loop and every `TcpEvents` call is made there, as the real
transport does.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Deque, List, Optional, Union

from ..errors import Errno, FtError
from ._errors import transport_error
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
    from ..transports import TcpConnectRequest, TcpEvents

__all__ = ["TcpRoute", "TcpMock", "MockTcpConnection"]

Data = Union[str, bytes]
MOCK_LOCAL_PORT = 50000  # the port the client is said to use (`localInfo`)


def _as_bytes(data: Data) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError("TCP data is bytes or str, not %s" % type(data).__name__)


class TcpRoute(ScriptedRoute["MockTcpConnection"]):
    """A scripted TCP peer for the host and port its rule matches.

    Chain the script: ``mock.tcp.add("chat.example.com", 7000).send(b"hello")
    .expect(b"ping").send(b"pong").close()``. Each connection runs it from the start; when it
    ends the connection stays open, and with ``echo=True`` the peer returns what it receives.
    """

    def __init__(
        self,
        host: Optional[str],
        port: Optional[int],
        error: Union[str, Exception, None] = None,
        delay: float = 0.0,
        echo: bool = False,
        times: Optional[int] = None,
    ) -> None:
        super().__init__(error, delay, echo, times)
        self.host = host
        self.port = port

    def __repr__(self) -> str:
        return "<TcpRoute %s:%s, %d connection(s)>" % (
            self.host or "*",
            self.port or "*",
            len(self.connections),
        )

    def matches(self, host: str, port: int) -> bool:
        return (self.host is None or self.host.lower() == host.lower()) and (
            self.port is None or self.port == port
        )

    def _accepts(self, record: "MockTcpConnection") -> bool:
        return self.matches(record.host, record.port)

    # -- the script ---------------------------------------------------------------------------

    def send(self, data: Data) -> "TcpRoute":
        """Send `data` to the client (str as UTF-8): one onMessage."""
        return self._add("send", _as_bytes(data))

    def expect(self, data: Any = ANY) -> "TcpRoute":
        """Wait for bytes from the client: exactly `data` (bytes or str), or the next write
        whole when `data` is ANY or a callable that must accept it. A mismatch is recorded in
        `MockTcpConnection.mismatches` and the peer resets the connection."""
        if data is not ANY and not callable(data):
            data = _as_bytes(data)
        return self._add("expect", data)

    def close(self) -> "TcpRoute":
        """End the connection from the peer (EOF): the client's onClose follows, no onError."""
        return self._add("close")

    def reset(self) -> "TcpRoute":
        """Reset the connection: the client sees onError -2, then onClose."""
        return self._add("reset")


class MockTcpConnection(PeerRecord[TcpRoute, "_Connection"]):
    """The record of one connection, and the peer's hand on it.

    `received` is every byte the client wrote, `writes` its writes one by one, `sent` what
    the peer sent; `ended` says how the connection ended (``"client"``: the client closed it,
    ``"peer"``: the script or `close()` did, ``"reset"``, ``"refused"``...; None while live).
    `push`, `close` and `reset` act as the peer, from any thread.
    """

    def __init__(self, route: Optional[TcpRoute], request: "TcpConnectRequest") -> None:
        super().__init__(route)
        self.host = request.host
        self.port = request.port
        self.received = b""
        self.writes: List[bytes] = []
        self.sent: List[bytes] = []
        self.mismatches: List[str] = []
        self.ended: Optional[str] = None

    def __repr__(self) -> str:
        return "<MockTcpConnection %s:%d %s>" % (self.host, self.port, self.ended or "live")

    def push(self, data: Data) -> None:
        """Send `data` to the client now (outside the script)."""
        payload = _as_bytes(data)
        self._call(lambda conn: conn._peer_send(payload))

    def close(self) -> None:
        """End the connection from the peer now (EOF)."""
        self._call(lambda conn: conn._peer_close())

    def reset(self) -> None:
        """Reset the connection now."""
        self._call(lambda conn: conn._fail_open(FtError(Errno.CONNECTION_RESET), "reset"))


class TcpMock(ScriptedMock[TcpRoute, MockTcpConnection]):
    """The scripted TCP peers of a `MockTransport` (``mock.tcp``).

    Routes are tried in the order they were added; the first that matches (and is not
    exhausted) accepts. A host and port no route matches refuses the connection.
    """

    def add(
        self,
        host: Optional[str] = None,
        port: Optional[int] = None,
        *,
        error: Union[str, Exception, None] = None,
        delay: float = 0.0,
        echo: bool = False,
        times: Optional[int] = None,
    ) -> TcpRoute:
        """Script a peer for `host`:`port` (None: any); returns it to chain steps.

        `error` fails the connect as the transport would report it (``"refused"``, ``"dns"``,
        ``"network"``, or an exception): onError -4 then onClose. `delay` is how long the
        connect takes in seconds (``math.inf``: it never completes, so the socket's `timeout`
        ends it); `times` limits how many connections the route accepts.
        """
        return self._add_route(TcpRoute(host, port, error, delay, echo, times))


class _Transport(LoopTransport[TcpMock, "_Connection"]):
    """`TcpTransport` over a `TcpMock`, bound to one runtime's loop."""

    def connect(self, request: "TcpConnectRequest", events: "TcpEvents") -> "_Connection":
        record = MockTcpConnection(None, request)
        route = self._mock._accept(record)
        conn = self._track(_Connection(self, record, route, events))
        self._loop.call_soon(conn._guarded, _Connection._connect)
        return conn


class _Connection(ScriptedConnection[TcpRoute, MockTcpConnection]):
    """The `TcpConnection` the core holds; runs the route's script."""

    buffered = 0  # the mock peer takes every write at once
    _what = "TCP"

    def __init__(
        self,
        transport: _Transport,
        record: MockTcpConnection,
        route: Optional[TcpRoute],
        events: "TcpEvents",
    ) -> None:
        super().__init__(transport, record, route)
        self._events = events
        self._inbox = b""  # received, not yet consumed by an `expect`
        self._writes: Deque[bytes] = deque()  # the same bytes, write by write
        self._paused = False
        self._outbox: Deque[bytes] = deque()  # sent while the client paused reading

    # -- TcpConnection (called by the core, loop thread) ----------------------------------------

    def write(self, data: Any) -> None:
        if self.state != "open":
            raise FtError(Errno.CONNECTION_RESET, "not connected")
        payload = bytes(data)
        record = self._record
        record.received += payload
        record.writes.append(payload)
        self._inbox += payload
        self._writes.append(payload)
        self._soon(_Connection._advance)

    def watch_drain(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        self._paused = False
        while self._outbox and not self._paused and self.state == "open":
            self._events.data(memoryview(self._outbox.popleft()))

    def close(self, timeout: float) -> None:
        if self.state in ("closing", "closed"):
            return
        self.state = "closing"
        if self._record.ended is None:
            self._record.ended = "client"
        self._soon(lambda conn: conn._end(notify=True))

    def abort(self) -> None:
        if self._record.ended is None:
            self._record.ended = "client"
        self._end(notify=False)

    # -- the peer -----------------------------------------------------------------------------

    def _connect(self) -> None:
        route = self._route
        if route is None:
            reason = "connection refused (ftcore.testing: no mock route for %s:%d)" % (
                self._record.host,
                self._record.port,
            )
            self._fail(FtError(Errno.CONNECTION_REFUSED, reason), "refused")
            return
        self._soon(_Connection._accept, route.delay)  # the core times the connect out

    def _accept(self) -> None:
        route = self._route
        assert route is not None
        if route.error is not None:
            self._fail(transport_error(route.error), "refused")
            return
        self.state = "open"
        record = self._record
        self._events.connected(("127.0.0.1", MOCK_LOCAL_PORT), (record.host, record.port))
        self._advance()

    def _script_ended(self, echo: bool) -> None:
        if echo:
            while self._writes and self.state == "open":
                self._peer_send(self._writes.popleft())
        else:
            self._writes.clear()
        self._inbox = b""

    def _run_step(self, step: Step) -> None:
        if step[0] == "close":
            self._peer_close()
        elif step[0] == "reset":
            self._fail_open(FtError(Errno.CONNECTION_RESET), "reset")

    def _expect(self, expected: Any) -> bool:
        """Consume what `expected` asks for: that many bytes, or the next write whole."""
        if isinstance(expected, bytes):
            if len(self._inbox) < len(expected):
                return False
            got, self._inbox = self._inbox[: len(expected)], self._inbox[len(expected) :]
            self._drop_writes(len(expected))
        else:
            if not self._writes:
                return False
            got = self._writes.popleft()
            self._inbox = self._inbox[len(got) :]
        ok = satisfies(got, expected)
        if not ok:
            self._record.mismatches.append("expected %r, received %r" % (expected, got))
            self._fail_open(FtError(Errno.CONNECTION_RESET), "reset")
        return ok

    def _drop_writes(self, count: int) -> None:
        """Keep `_writes` in step with `_inbox` after `count` bytes were consumed."""
        while count and self._writes:
            head = self._writes[0]
            if len(head) <= count:
                count -= len(head)
                self._writes.popleft()
            else:
                self._writes[0] = head[count:]
                count = 0

    def _peer_send(self, data: bytes) -> None:
        if self.state != "open":
            return
        self._record.sent.append(data)
        if self._paused:
            self._outbox.append(data)
        else:
            self._events.data(memoryview(data))

    def _peer_close(self) -> None:
        if self.state != "open":
            return
        self._record.ended = "peer"
        self._events.eof()  # the core answers with close(): `closed` follows

    def _fail_open(self, error: Exception, how: str) -> None:
        if self.state != "open":
            return
        self._fail(error, how)

    def _fail(self, error: Exception, how: str) -> None:
        if self._record.ended is None:
            self._record.ended = how
        events = self._events
        self._end(notify=False)
        events.failed(error)

    def _end(self, notify: bool) -> None:
        if self._stop() and notify:
            self._events.closed()
