"""The task lifecycle as data.

Rules: a task starts CREATED and moves to RUNNING when the loop starts it; socket tasks pass
through OPEN. It ends in exactly one of SUCCEEDED, FAILED or ABORTED, and an ended task never
moves again. Anything else is a bug in ftcore and raises `IllegalTransition`.
"""

from __future__ import annotations

import enum
from typing import Dict, FrozenSet

__all__ = ["State", "IllegalTransition", "check_transition", "ENDED"]


class State(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    OPEN = "open"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"

    # Members are singletons compared by identity; Enum's own __hash__ is Python code, and
    # states are looked up in sets and the table several times per request.
    __hash__ = object.__hash__


ENDED: FrozenSet[State] = frozenset({State.SUCCEEDED, State.FAILED, State.ABORTED})

_TRANSITIONS: Dict[State, FrozenSet[State]] = {
    State.CREATED: frozenset({State.RUNNING, State.FAILED, State.ABORTED}),
    State.RUNNING: frozenset({State.OPEN, State.SUCCEEDED, State.FAILED, State.ABORTED}),
    State.OPEN: frozenset({State.SUCCEEDED, State.FAILED, State.ABORTED}),
    State.SUCCEEDED: frozenset(),
    State.FAILED: frozenset(),
    State.ABORTED: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


def check_transition(current: State, new: State) -> State:
    """Return `new` if the table allows current → new, else raise."""
    if new not in _TRANSITIONS[current]:
        raise IllegalTransition("%s -> %s" % (current.name, new.name))
    return new
