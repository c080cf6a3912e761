"""Concurrency slots: at most `limit` tasks run, the rest wait in order (loop thread only).

Each task asks through a `Claim`, whose state the `CLAIM` table drives: WAITING (made, or in the
queue), HELD (granted: counted in `used` until released), RELEASED (final). A claim is granted
when it is taken with a slot free, or when a released slot passes to it; it is released once,
when its task ends, whether it waits (it leaves the queue) or holds (the slot passes on).

A slot passed on reaches the next waiter's `start` on the next loop pass, never inside the
releasing task's own teardown: a waiter that fails at once would otherwise release into the
next one, and a long queue would recurse (and run B's callbacks before A's complete). The
waiter holds it from the moment it is passed, so a task that ends before its `start` ran gives
it back like any holder.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Any, Callable, Deque

from .state import Table

__all__ = ["Slots", "Claim", "ClaimState", "ClaimEvent", "CLAIM"]


class ClaimState(enum.Enum):
    WAITING = "waiting"
    HELD = "held"
    RELEASED = "released"

    __hash__ = object.__hash__


class ClaimEvent(enum.Enum):
    GRANT = "grant"  # a slot is the claim's: free when taken, or passed on by a release
    RELEASE = "release"  # its task ended: leave the queue, or pass the slot on

    __hash__ = object.__hash__


CLAIM: Table[ClaimState, ClaimEvent] = Table(
    "HTTP slot claim",
    ClaimState.WAITING,
    {
        ClaimState.WAITING: {
            ClaimEvent.GRANT: ClaimState.HELD,
            ClaimEvent.RELEASE: ClaimState.RELEASED,
        },
        ClaimState.HELD: {ClaimEvent.RELEASE: ClaimState.RELEASED},
        ClaimState.RELEASED: {},
    },
)


class Slots:
    """The pool: `used` of `limit` slots held, and the claims waiting in order. The claims
    themselves take and release (`Claim`)."""

    def __init__(self, limit: int, call_soon: Callable[..., Any]) -> None:
        self._call_soon = call_soon
        self.limit = limit
        self.used = 0
        self._waiting: Deque[Claim] = deque()


class Claim:
    """One task's turn for a slot of `slots`: its `start()` runs once it holds one; loop
    thread."""

    __slots__ = ("_slots", "_start", "state")

    def __init__(self, slots: Slots, start: Callable[[], Any]) -> None:
        self._slots = slots
        self._start = start
        self.state = CLAIM.initial

    def take(self) -> None:
        """Hold a free slot and call `start()` now, or wait in the queue for one."""
        slots = self._slots
        if slots.used < slots.limit:
            slots.used += 1
            self.state = CLAIM.next(self.state, ClaimEvent.GRANT)
            self._start()
        else:
            slots._waiting.append(self)

    def release(self) -> None:
        """The task is done with its claim: leave the queue, or pass the held slot on (to
        the next waiter, which holds it from now and starts on the next pass), or free it."""
        was = self.state
        self.state = CLAIM.next(was, ClaimEvent.RELEASE)
        slots = self._slots
        if was is not ClaimState.HELD:
            slots._waiting.remove(self)
        elif slots._waiting:
            heir = slots._waiting.popleft()
            heir.state = CLAIM.next(heir.state, ClaimEvent.GRANT)
            slots._call_soon(heir._run)
        else:
            slots.used -= 1

    def _run(self) -> None:
        if self.state is ClaimState.HELD:  # not released between the grant and this pass
            self._start()
