"""What the scripted peers of the mock share (WebSocket and TCP), and the live set of every mock
transport.

A route holds a script of steps (``("send", data)``, ``("expect", what)``, ``("wait", s)``,
then the kind's own ending steps); the mock hands each new connection to the first route that
accepts it; the connection runs the script on the runtime's loop, one step after the other,
pausing on loop timers (never a sleeping thread) and on data not yet received.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Deque,
    Dict,
    Generic,
    List,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

from ._errors import transport_error
from .._log import logger

if TYPE_CHECKING:
    from typing import Protocol

    from .._api.runtime import Runtime
    from ..loop import Handle

    class _Abortable(Protocol):
        def abort(self) -> None: ...


__all__ = ["ANY", "Step", "ScriptedRoute", "PeerRecord", "ScriptedMock", "LoopTransport"]


Step = Tuple[Any, ...]


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()
"""Matches anything the client sends, in `WsRoute.expect` and `TcpRoute.expect`."""

RecordT = TypeVar("RecordT", bound="PeerRecord[Any, Any]")
RouteT = TypeVar("RouteT", bound="ScriptedRoute[Any]")
ConnT = TypeVar("ConnT", bound="ScriptedConnection[Any, Any]")
LiveT = TypeVar("LiveT", bound="_Abortable")
MockT = TypeVar("MockT")
SelfRoute = TypeVar("SelfRoute", bound="ScriptedRoute[Any]")


class ScriptedRoute(Generic[RecordT]):
    """A scripted peer: its steps, how it fails or delays the connect, how many it accepts."""

    def __init__(
        self,
        error: Union[str, Exception, None],
        delay: float,
        echo: bool,
        times: Optional[int],
    ) -> None:
        if error is not None:
            transport_error(error)  # validates the kind
        self.error = error
        self.delay = delay
        self.echo = echo
        self.times = times
        self.steps: List[Step] = []
        self.connections: List[RecordT] = []

    def _add(self: SelfRoute, *step: Any) -> SelfRoute:
        self.steps.append(step)
        return self

    def wait(self: SelfRoute, seconds: float) -> SelfRoute:
        """Pause the script (a loop timer, not a sleep)."""
        return self._add("wait", float(seconds))

    def _accepts(self, record: RecordT) -> bool:
        """Whether this route's rule matches the connection `record` asks for."""
        raise NotImplementedError

    @property
    def exhausted(self) -> bool:
        return self.times is not None and len(self.connections) >= self.times

    @property
    def called(self) -> bool:
        return bool(self.connections)


class PeerRecord(Generic[RouteT, ConnT]):
    """The record of one connection; `_call` lets the test act as the peer from any thread."""

    _peer = "mock peer"  # how `_call` names the peer when the connection never reached it

    def __init__(self, route: Optional[RouteT]) -> None:
        self.route = route
        self._conn: Optional[ConnT] = None

    @property
    def open(self) -> bool:
        return self._conn is not None and self._conn.state == "open"

    def _call(self, action: Callable[[ConnT], None]) -> None:
        conn = self._conn
        if conn is None:
            raise RuntimeError("this connection never reached the %s" % self._peer)
        conn._loop.call_soon_threadsafe(conn._guarded, action)


class ScriptedMock(Generic[RouteT, RecordT]):
    """The routes of one kind of peer, tried in the order they were added; the first that
    accepts (and is not exhausted) takes the connection. `connections` records them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.routes: List[RouteT] = []
        self.connections: List[RecordT] = []

    def _add_route(self, route: RouteT) -> RouteT:
        with self._lock:
            self.routes.append(route)
        return route

    def reset(self) -> None:
        """Forget every route and every recorded connection."""
        with self._lock:
            self.routes.clear()
            self.connections.clear()

    def _accept(self, record: RecordT) -> Optional[RouteT]:
        with self._lock:
            self.connections.append(record)
            for route in self.routes:
                if not route.exhausted and route._accepts(record):
                    route.connections.append(record)
                    record.route = route
                    return route
        return None


class LoopTransport(Generic[MockT, LiveT]):
    """A mock transport bound to one runtime's loop; `close` aborts whatever is still live."""

    def __init__(self, mock: MockT, runtime: "Runtime") -> None:
        self._mock = mock
        self._loop = runtime.loop
        self._live: Dict[int, LiveT] = {}

    def _track(self, item: LiveT) -> LiveT:
        self._live[id(item)] = item
        return item

    def _forget(self, item: object) -> None:
        self._live.pop(id(item), None)

    def close(self) -> None:
        for item in list(self._live.values()):
            item.abort()


class ScriptedConnection(Generic[RouteT, RecordT]):
    """The connection the core holds: runs its route's script on the loop.

    A subclass sets `state` to ``"open"`` when the peer accepts, then calls `_advance`, and
    provides `_expect` (consume what an expect step asks for), `_peer_send`, `_run_step` (its
    own ending steps) and `_script_ended` (what the peer does with data once the script is over).
    """

    _what = "mock"  # names the peer in the log when a step raises

    def __init__(
        self,
        transport: "LoopTransport[Any, Any]",
        record: RecordT,
        route: Optional[RouteT],
    ) -> None:
        self._transport = transport
        self._loop = transport._loop
        self._record = record
        self._route = route
        self.state = "connecting"
        self._steps: Deque[Step] = deque(route.steps if route else ())
        self._waiting = False  # a `wait` step is pending
        self._handles: List["Handle"] = []
        record._conn = self

    def _guarded(self: ConnT, action: Callable[[ConnT], None]) -> None:
        if self.state == "closed":
            return
        try:
            action(self)
        except Exception:
            logger.exception("ftcore.testing: a %s mock step raised", self._what)

    def _soon(self: ConnT, action: Callable[[ConnT], None], delay: float = 0.0) -> None:
        """Run `action` on the loop after `delay` seconds (``math.inf``: never)."""
        if math.isinf(delay):
            return
        if delay:
            self._handles.append(self._loop.call_later(delay, self._guarded, action))
        else:
            self._handles.append(self._loop.call_soon(self._guarded, action))

    def _advance(self) -> None:
        """Run script steps until one must wait (a timer, or data not yet received)."""
        while self.state == "open" and not self._waiting:
            if not self._steps:
                self._script_ended(self._route is not None and self._route.echo)
                return
            step = self._steps[0]
            if step[0] == "expect":
                if not self._expect(step[1]):
                    return
                self._steps.popleft()
                continue
            self._steps.popleft()
            if step[0] == "send":
                self._peer_send(step[1])
            elif step[0] == "wait":
                self._waiting = True
                self._soon(ScriptedConnection._wake, step[1])
            else:
                self._run_step(step)

    def _wake(self) -> None:
        self._waiting = False
        self._advance()

    def _stop(self) -> bool:
        """Mark the connection closed, cancel its timers, leave the transport; False when it
        already was closed."""
        if self.state == "closed":
            return False
        self.state = "closed"
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
        self._transport._forget(self)
        return True

    # -- what each kind of peer provides --------------------------------------------------------

    def _expect(self, expected: Any) -> bool:
        """Consume what `expected` asks for; False while it has not arrived, or on a mismatch
        (after the subclass has ended the connection)."""
        raise NotImplementedError

    def _peer_send(self, data: Any) -> None:
        raise NotImplementedError

    def _run_step(self, step: Step) -> None:
        raise NotImplementedError

    def _script_ended(self, echo: bool) -> None:
        raise NotImplementedError


def satisfies(got: Any, expected: Any) -> bool:
    """Whether `got` is what an expect step asked for: ANY, a predicate, or an equal value."""
    if expected is ANY:
        return True
    if callable(expected):
        return bool(expected(got))
    return bool(got == expected)
