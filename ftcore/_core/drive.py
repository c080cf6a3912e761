"""Waiting by running the loop: how a blocking call progresses on a host-driven runtime.

With `Runtime(autostart=False)` no thread runs the loop unless the host does, so a thread
blocked in `result()` or in an iterator would wait for work that only a loop pass can do. As
asyncio's `run_until_complete` does, such a wait runs the passes itself, on the waiting thread,
until what it waits for is there: no other thread is involved, so there is no hand-off at all.

It does so only while no other thread may be running the loop: the runtime has no loop thread
of its own, and no pass is under way (`loop.thread_id` is None between passes). Otherwise, and
as soon as another thread is seen running a pass, it waits as any foreign thread does. A
thread inside a pass (a callback) must not wait at all: the callers raise `RuntimeError` first.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from .._api.runtime import Runtime

__all__ = ["wait", "threaded"]


def threaded(runtime: "Runtime") -> bool:
    """The runtime has its own loop thread (autostart): only that thread runs the loop."""
    return not runtime.host_driven


def wait(
    runtime: "Runtime",
    ready: Callable[[], object],
    block: Callable[[Optional[float]], bool],
    timeout: Optional[float],
) -> bool:
    """True once `ready()` is true; False if `timeout` seconds (None: no limit) passed first.

    `block(seconds)` is the foreign thread's wait (None: no limit), true once ready. `timeout`
    0 only looks: no pass is run. Each pass sleeps in the kernel for at most the time left."""
    if threaded(runtime):
        return block(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    loop = runtime.loop
    while loop.thread_id is None and not loop.closed:
        if ready():
            return True
        if deadline is None:
            loop.run_once(None)
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        loop.run_once(left)
    # another thread runs the loop (the host's own, or a second waiter): wait for it
    return block(None if deadline is None else max(0.0, deadline - time.monotonic()))
