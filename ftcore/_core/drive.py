"""Waiting by running the loop: how a blocking call progresses on a host-driven runtime.

With `Runtime(autostart=False)` no thread runs the loop unless the host does, so a thread
blocked in `result()` or in an iterator would wait for work that only a loop pass can do. As
asyncio's `run_until_complete` does, such a wait runs the passes itself, on the waiting thread,
until what it waits for is there: no other thread is involved, so there is no hand-off at all.

It does so only while no other thread is running the loop: the runtime has no loop thread
of its own, and each pass is taken with `loop.try_run_once`, which refuses while another
thread (the host, or a second waiter) is in a pass or asks for one (a host's `run_once` ends
a waiter's poll and takes the next pass). Then it waits as any foreign thread does, in short
slices, and drives again once the loop is free. A thread inside a pass (a callback) must not
wait at all: the callers raise `RuntimeError` first.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from ..loop import EventLoop

__all__ = ["wait"]

DRIVE_SLICE_S = 0.01  # how long a waiter leaves the loop to another thread before retrying


def wait(
    loop: "EventLoop",
    ready: Callable[[], object],
    block: Callable[[Optional[float]], bool],
    timeout: Optional[float],
) -> bool:
    """True once `ready()` is true; False if `timeout` seconds (None: no limit) passed first.

    `block(seconds)` is the foreign thread's wait (None: no limit), true once ready. `timeout`
    0 only looks: no pass is run. Each pass sleeps in the kernel for at most the time left.
    `ready()` is asked before every pass, and a pass that another thread ran in between (which
    may have made it true) makes it ask again instead of sleeping (`try_run_once`'s `seen`)."""
    if not loop.host_driven:  # its own thread runs it: only that thread may
        return block(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    left = timeout
    while True:
        seen = loop.passes
        if ready():
            return True
        if left is not None and left <= 0:
            return False
        if loop.closed:
            return block(left)
        if not loop.try_run_once(left, seen):
            # another thread is in a pass or wants one: leave the loop to it a while
            if block(DRIVE_SLICE_S if left is None else min(left, DRIVE_SLICE_S)):
                return True
        if deadline is not None:
            left = deadline - time.monotonic()
