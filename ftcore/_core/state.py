"""Lifecycles as data: one transition table per object kind, and the tables of the tasks.

A `Table` maps (state, event) to the new state, in the shape of h11's `_state.py`. It drives:
an object keeps one state value, changes it only through `table.next(state, event)` and derives
everything else (a flag, `readyState`) from it. A move the table does not list raises
`IllegalTransition` (a bug in ftcore), and a state with no moves is final, so an ended object
stays ended: the error state is sticky. The docs draw their lifecycle diagrams from the tables
(`docs/_ext/ftcore_lifecycles.py`), so they cannot drift from the code. Other kinds use the same
`Table`: the HTTP slot claim (`_core/slots.py`), the UDP and TCP sockets (`_core/endpoint.py`).

Task rules (`TASK`). A task starts CREATED and moves to RUNNING when the loop starts it. It ends
in exactly one of SUCCEEDED, FAILED or ABORTED (its error state is FAILED); success or fail,
then complete, run as it ends.

SocketTask rules (`SOCKET`). `connectSocket` succeeds once the checks pass and the transport
starts connecting (CONNECT: the socket is *created*), then the socket moves through OPEN and
CLOSING (`close()` sent the close frame). A socket that ends before CONNECT reports it through
`fail` (bad options, runtime closed); one that ends after it, through `onClose`: SUCCEEDED for a
close handshake (or `close()` before the handshake), FAILED for a lost or failed connection,
ABORTED for `abort()` or the runtime's close. `readyState` is a view of the state.

Either way, success/fail and complete have run exactly when the state has left `UNSETTLED`.
"""

from __future__ import annotations

import enum
from typing import Dict, FrozenSet, Generic, Iterable, Mapping, Tuple, TypeVar

__all__ = [
    "Table",
    "IllegalTransition",
    "State",
    "Event",
    "TASK",
    "SOCKET",
    "ENDED",
    "UNSETTLED",
]

S = TypeVar("S", bound=enum.Enum)
E = TypeVar("E", bound=enum.Enum)


class IllegalTransition(RuntimeError):
    """An event the table does not allow in the current state: a bug in ftcore."""


class Table(Generic[S, E]):
    """One object kind's lifecycle: `{state: {event: new state}}`, final states mapped to `{}`.

    Tables are built once, at import; `next` is the only thing called per object.
    """

    __slots__ = ("name", "initial", "moves", "final")

    def __init__(self, name: str, initial: S, moves: Mapping[S, Mapping[E, S]]) -> None:
        targets = {new for by_event in moves.values() for new in by_event.values()}
        unlisted = (targets | {initial}) - set(moves)
        if unlisted:
            raise ValueError("%s: states without a row: %s" % (name, _names(unlisted)))
        self.name = name
        self.initial = initial
        self.moves: Dict[S, Dict[E, S]] = {state: dict(by) for state, by in moves.items()}
        self.final: FrozenSet[S] = frozenset(s for s, by in self.moves.items() if not by)

    def next(self, state: S, event: E) -> S:
        """The state after `event` in `state`; `IllegalTransition` if the table has no such move."""
        try:
            return self.moves[state][event]
        except KeyError:
            raise IllegalTransition(
                "%s: %s in %s" % (self.name, event.name, state.name)
            ) from None

    def transitions(self) -> Tuple[Tuple[S, E, S], ...]:
        """Every move as (state, event, new state), in the table's order (for the docs)."""
        return tuple((s, e, new) for s, by in self.moves.items() for e, new in by.items())


def _names(members: Iterable[enum.Enum]) -> str:
    return ", ".join(sorted(member.name for member in members))


class State(enum.Enum):
    """A task's state (`task.state`)."""

    CREATED = "created"
    RUNNING = "running"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"

    # Members are singletons compared by identity; Enum's own __hash__ is Python code, and
    # states are looked up in sets and the tables several times per request.
    __hash__ = object.__hash__


class Event(enum.Enum):
    """What moves a task."""

    START = "start"  # the loop starts the task: its options are checked
    CONNECT = "connect"  # a socket's checks passed, the transport connects (success runs)
    OPEN = "open"  # the WebSocket handshake completed (onOpen)
    CLOSE = "close"  # close() sent the close frame
    SUCCEED = "succeed"  # a response arrived; a socket closed cleanly
    FAIL = "fail"  # the task failed; a socket's connection failed or was lost
    ABORT = "abort"  # abort(), or the runtime closed

    __hash__ = object.__hash__


_ENDS = {Event.SUCCEED: State.SUCCEEDED, Event.FAIL: State.FAILED, Event.ABORT: State.ABORTED}
_REFUSED = {Event.FAIL: State.FAILED, Event.ABORT: State.ABORTED}
_END_ROWS: Dict[State, Dict[Event, State]] = {
    State.SUCCEEDED: {},
    State.FAILED: {},
    State.ABORTED: {},
}

TASK: Table[State, Event] = Table(
    "Task",
    State.CREATED,
    {
        State.CREATED: {Event.START: State.RUNNING, **_REFUSED},
        State.RUNNING: dict(_ENDS),
        **_END_ROWS,
    },
)

SOCKET: Table[State, Event] = Table(
    "SocketTask",
    State.CREATED,
    {
        State.CREATED: {Event.START: State.RUNNING, **_REFUSED},
        State.RUNNING: {Event.CONNECT: State.CONNECTING, **_REFUSED},
        State.CONNECTING: {Event.OPEN: State.OPEN, **_ENDS},
        State.OPEN: {Event.CLOSE: State.CLOSING, **_ENDS},
        State.CLOSING: dict(_ENDS),
        **_END_ROWS,
    },
)

ENDED: FrozenSet[State] = TASK.final
UNSETTLED: FrozenSet[State] = frozenset({State.CREATED, State.RUNNING})
