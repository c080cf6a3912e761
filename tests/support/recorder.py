"""The one recorder of callbacks and listener calls that every test folder uses.

It keeps (name, res, thread) in the order the loop ran them, under a Condition, so a test can
wait for an event itself (bounded) instead of sleeping, and can check the callback rules.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from tests.support.waits import WAIT

Call = Tuple[str, Dict[str, Any], str]
Listener = Callable[[Dict[str, Any]], None]


class Recorder:
    """Callbacks and listeners that record what they were called with, and on which thread."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.calls: List[Call] = []

    # -- making callbacks -----------------------------------------------------------------------

    def listener(self, name: str, then: Optional[Listener] = None) -> Listener:
        """A callback recording as `name`, then running `then(res)` (with no lock held)."""

        def record(res: Dict[str, Any]) -> None:
            with self.cond:
                self.calls.append((name, res, threading.current_thread().name))
                self.cond.notify_all()
            if then is not None:
                then(res)

        return record

    def callbacks(self, prefix: str = "") -> Dict[str, Listener]:
        """success/fail/complete options, recorded as `<prefix>success` and so on."""
        return {k: self.listener(prefix + k) for k in ("success", "fail", "complete")}

    def attach(self, task: Any, names: Iterable[str], prefix: str = "") -> None:
        """`task.onX(...)` for each X of `names`, recorded as `<prefix>X`."""
        for name in names:
            getattr(task, "on" + name)(self.listener(prefix + name))

    # -- waiting --------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[["Recorder"], bool], timeout: float = WAIT) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self), timeout):
                names = [name for name, _, _ in self.calls]
                raise AssertionError("timed out after %ss; calls so far: %r" % (timeout, names))

    def wait_name(self, name: str, count: int = 1, timeout: float = WAIT) -> Dict[str, Any]:
        """The `count`-th call named `name`, once it has happened."""
        self.wait_for(lambda r: r.count(name) >= count, timeout)
        return self.of(name)[count - 1]

    def wait(self, timeout: float = WAIT) -> "Recorder":
        """Wait for `complete` (the task has ended and every callback has run)."""
        self.wait_for(lambda r: r.count("complete") >= 1, timeout)
        return self

    # -- reading --------------------------------------------------------------------------------

    def names(self) -> List[str]:
        with self.cond:
            return [name for name, _, _ in self.calls]

    def count(self, name: str) -> int:
        with self.cond:
            return sum(1 for call in self.calls if call[0] == name)

    def of(self, name: str) -> List[Dict[str, Any]]:
        with self.cond:
            return [res for n, res, _ in self.calls if n == name]

    def threads(self) -> List[str]:
        with self.cond:
            return [thread for _, _, thread in self.calls]

    @property
    def outcome(self) -> Dict[str, Any]:
        """The one success/fail result, asserting the callback rules: exactly one of them,
        then exactly one complete, after it."""
        names = self.names()
        ends = [n for n in names if n in ("success", "fail")]
        assert len(ends) == 1, names
        assert names.count("complete") == 1, names
        assert names.index("complete") > names.index(ends[0]), names
        return (self.of("success") or self.of("fail"))[0]
