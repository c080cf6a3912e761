"""Bounded waits: one bound for everything that should happen at once, so a hang fails the
test instead of the suite, and the bound is the same in every folder."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

WAIT = 20.0  # an upper bound for anything that should happen at once; never a synchronisation
PROMPT = 5.0  # "interrupted, not waited out": far below the 30 s timeouts those tests set


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT, step: float = 0.005) -> bool:
    """Poll `predicate` until it is true or `timeout` passes; True if it became true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


def flush(loop: Any, timeout: float = WAIT) -> None:
    """Return once every callback already queued on a running loop has run."""
    done = threading.Event()
    loop.call_soon_threadsafe(done.set)
    assert done.wait(timeout), "the loop did not run a queued callback"


def barrier(rt: Any, passes: int = 3) -> None:
    """Return once the loop ran what was queued before the call (and what that queued)."""
    for _ in range(passes):
        flush(rt.loop)
