"""Bounded runs for the re-entrancy tests: a deadlock fails the test, with every thread's stack.

A test body runs on a daemon thread joined with a deadline. If it does not return in time the
test fails with the stacks of all threads (the loop thread's shows which lock it waits on); the
stuck threads are left behind as daemons, so the rest of the suite still runs.
"""

from __future__ import annotations

import sys
import threading
import traceback
from typing import Any, Callable, Dict, TypeVar

import ftcore

__all__ = ["WAIT", "Hang", "thread_stacks", "run_bounded", "close_bounded", "on_loop", "Journal"]

WAIT = 10.0  # the bound on anything that should happen at once; a deadlock takes forever

T = TypeVar("T")


class Hang(AssertionError):
    """Something that should have returned at once did not: most likely a deadlock."""


def thread_stacks(depth: int = 14) -> str:
    """The innermost `depth` frames of every live thread, named, most recent call last."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        stack = "".join(traceback.format_stack(frame)[-depth:])
        parts.append("--- thread %r (%d)\n%s" % (names.get(ident, "?"), ident, stack))
    return "\n".join(parts)


def run_bounded(fn: Callable[[], T], timeout: float, what: str) -> T:
    """`fn()` run on a daemon thread: its value or its exception; `Hang` (with every thread's
    stack) if it has not returned after `timeout` seconds."""
    box: Dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as error:  # noqa: BLE001 - re-raised on the caller's thread
            box["error"] = error

    thread = threading.Thread(target=target, name="reentrancy-bounded", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise Hang("%s did not return within %.0f s\n%s" % (what, timeout, thread_stacks()))
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def close_bounded(rt: ftcore.Runtime, timeout: float = WAIT) -> None:
    """`rt.close()`, failing with the threads' stacks if it does not return in time."""
    run_bounded(rt.close, timeout, "rt.close()")


def on_loop(rt: ftcore.Runtime, fn: Callable[[], T], timeout: float = WAIT) -> T:
    """Run `fn()` on the runtime's loop thread and return its value (or raise its error)."""
    done = threading.Event()
    box: Dict[str, Any] = {}

    def call() -> None:
        try:
            box["value"] = fn()
        except BaseException as error:  # noqa: BLE001 - re-raised on the caller's thread
            box["error"] = error
        finally:
            done.set()

    rt.loop.call_soon_threadsafe(call)
    if not done.wait(timeout):
        raise Hang("the loop did not run a callback within %.0f s\n%s" % (timeout, thread_stacks()))
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


class Journal:
    """Every callback and listener call of a test, in the order they ran, with a bounded wait."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.entries: list = []  # (name, res)

    def add(self, name: str, res: Any = None) -> None:
        with self._cond:
            self.entries.append((name, res))
            self._cond.notify_all()

    def recorder(self, name: str) -> Callable[..., None]:
        """A callback that records its first argument under `name`."""
        return lambda res=None, *rest: self.add(name, res)

    def count(self, name: str) -> int:
        with self._cond:
            return sum(1 for entry in self.entries if entry[0] == name)

    def names(self) -> list:
        with self._cond:
            return [entry[0] for entry in self.entries]

    def all(self, name: str) -> list:
        """The arguments of every `name` entry, in order."""
        with self._cond:
            return [res for entry, res in self.entries if entry == name]

    def first(self, name: str) -> Any:
        """The first `name` entry's argument (None if there is none)."""
        with self._cond:
            return next((res for entry, res in self.entries if entry == name), None)

    def wait_for(self, predicate: Callable[["Journal"], bool], what: str) -> None:
        """Block until `predicate(self)`; `Hang` with the journal and the stacks after WAIT."""
        with self._cond:
            if self._cond.wait_for(lambda: predicate(self), WAIT):
                return
            names = [entry[0] for entry in self.entries]
        raise Hang("waited %.0f s for %s; journal: %r\n%s" % (WAIT, what, names, thread_stacks()))
