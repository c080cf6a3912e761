"""The base of the socket kinds (`UDPSocket`, `TCPSocket`): their lifecycle tables, events,
errors as events, and tracking by the runtime.

A socket is not a task: it has no success/fail/complete, only events (`onError` carries the
seed's errCode), and it lives until it is closed. What the kinds share:

* The state changes only through the kind's table (`_table`, a `ftcore._core.state.Table`):
  `_fire(event)` moves it, on the loop thread (or in the constructor, before anyone else holds
  the socket); a move the table does not list raises
  `IllegalTransition`. CLOSED and FAILED are final (FAILED, the error state, is sticky), and
  entering one of them makes the runtime forget the socket, so `onClose`, fired by the kind
  as it enters a final state, fires once.
* `close()` may come from any thread: it sets `_closed` under the socket's lock, so no
  message event is delivered once it has returned, and hops to the loop for the rest.
* Events never run inside the call that caused them, even on the loop thread (`_later`), and
  listeners attached right after the socket was made see every event (`Listeners` backlogs).

UDP rules (`UDP`). A socket starts NEW; it is OPEN (receiving) from its first `bind`,
`send` or `connect`; `close()` ends it CLOSED. A socket the transport could not make (bad
type, no descriptor) is FAILED from the start.

TCP rules (`TCP`). NEW, then CONNECTING on `connect`, OPEN once connected. `close()` and the
peer's EOF move an open socket to CLOSING while what was written is flushed, then CLOSED. A
refused or failed connect, or a lost connection, ends it FAILED. `close()` before the
connection is up, and the runtime's close in any live state, end it CLOSED at once.
"""

from __future__ import annotations

import enum
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict

from .listeners import Listeners
from .state import Table
from .task import new_id

if TYPE_CHECKING:
    from .._api.runtime import Runtime

__all__ = ["Endpoint", "EndpointState", "EndpointEvent", "UDP", "TCP"]


class EndpointState(enum.Enum):
    """A socket's state (`sock.state`)."""

    NEW = "new"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"

    __hash__ = object.__hash__  # identity: looked up on every move


class EndpointEvent(enum.Enum):
    """What moves a socket."""

    OPEN = "open"  # UDP: receiving starts (bind, first send, connect)
    CONNECT = "connect"  # TCP: the checks passed, the transport dials
    CONNECTED = "connected"  # TCP: the connection is up (onConnect)
    CLOSE = "close"  # close() on the loop
    PEER_CLOSED = "peer_closed"  # TCP: the peer's EOF
    FLUSHED = "flushed"  # TCP: the closing connection is released
    FAIL = "fail"  # refused, failed or lost
    SHUTDOWN = "shutdown"  # the runtime is closing

    __hash__ = object.__hash__


_S, _E = EndpointState, EndpointEvent
_FINAL_ROWS: Dict[EndpointState, Dict[EndpointEvent, EndpointState]] = {
    _S.CLOSED: {},
    _S.FAILED: {},
}

UDP: Table[EndpointState, EndpointEvent] = Table(
    "UDPSocket",
    _S.NEW,
    {
        _S.NEW: {_E.OPEN: _S.OPEN, _E.CLOSE: _S.CLOSED, _E.FAIL: _S.FAILED},
        _S.OPEN: {_E.CLOSE: _S.CLOSED},
        **_FINAL_ROWS,
    },
)

TCP: Table[EndpointState, EndpointEvent] = Table(
    "TCPSocket",
    _S.NEW,
    {
        _S.NEW: {
            _E.CONNECT: _S.CONNECTING,
            _E.CLOSE: _S.CLOSED,
            _E.FAIL: _S.FAILED,
            _E.SHUTDOWN: _S.CLOSED,
        },
        _S.CONNECTING: {
            _E.CONNECTED: _S.OPEN,
            _E.CLOSE: _S.CLOSED,
            _E.FAIL: _S.FAILED,
            _E.SHUTDOWN: _S.CLOSED,
        },
        _S.OPEN: {
            _E.CLOSE: _S.CLOSING,
            _E.PEER_CLOSED: _S.CLOSING,
            _E.FAIL: _S.FAILED,
            _E.SHUTDOWN: _S.CLOSED,
        },
        _S.CLOSING: {_E.FLUSHED: _S.CLOSED, _E.SHUTDOWN: _S.CLOSED},
        **_FINAL_ROWS,
    },
)


class Endpoint:
    """A socket of the mini-program API; safe to use from any thread."""

    _table: Table[EndpointState, EndpointEvent]

    def __init__(self, runtime: "Runtime") -> None:
        self._runtime = runtime
        self._loop = runtime.loop
        self.id = new_id()
        self._listeners = Listeners(self._loop.call_soon_threadsafe)
        self._lock = threading.Lock()
        self._closed = False  # close() was called (any thread): no more message events
        self._state = self._table.initial
        runtime._track(self)  # raises RuntimeError on a closed runtime

    def __repr__(self) -> str:
        return "<%s #%d %s>" % (type(self).__name__, self.id, self._state.name)

    @property
    def state(self) -> EndpointState:
        return self._state

    @property
    def _ended(self) -> bool:
        return self._state in self._table.final

    def _fire(self, event: EndpointEvent) -> EndpointState:
        """Move along the table (loop thread); a final state untracks the socket and stops
        the listener dispatch under way (a listener that closed it: no event after onClose)."""
        new = self._state = self._table.next(self._state, event)
        if new in self._table.final:
            self._listeners.interrupt()
            self._runtime._untrack(self)
        return new

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the socket (the kind says how); harmless when repeated."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._hop(self._close_now)

    def _close_now(self) -> None:
        """close() on the loop thread."""
        raise NotImplementedError

    def _shutdown(self) -> None:
        """The runtime is closing: end now, on the loop thread (onClose fires)."""
        raise NotImplementedError

    # -- events -------------------------------------------------------------------------------

    def _error(self, method: str, code: int, reason: str) -> None:
        """Fire onError `{"errMsg": "<method>:fail <reason>", "errCode"}` soon."""
        res = {"errMsg": "%s:fail %s" % (method, reason), "errCode": code}
        self._later(self._listeners.emit, "Error", res)

    def _later(self, fn: Callable[..., Any], *args: Any) -> None:
        """`call_soon` from the loop thread; from another thread, hop there first, so that
        events keep the order of the calls that caused them."""
        if self._loop.in_loop_thread():
            self._loop.call_soon(fn, *args)
        else:
            self._loop.call_soon_threadsafe(self._loop.call_soon, fn, *args)

    def _hop(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn` on the loop thread: now if already there, else next pass."""
        if self._loop.in_loop_thread():
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)
