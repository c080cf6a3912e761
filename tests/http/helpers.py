"""Helpers for the request tests: a callback recorder and a one-call runner."""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Tuple

import ftcore

LOOP_THREAD = "ftcore-loop"


def ftcore_threads() -> List[threading.Thread]:
    """Live threads started by ftcore (loop and HTTP workers)."""
    return [t for t in threading.enumerate() if t.name.startswith("ftcore-")]


class Recorder:
    """success/fail/complete and listener calls of one task, with the thread each ran on."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, Dict[str, Any], str]] = []
        self.done = threading.Event()
        self.lock = threading.Lock()

    def _record(self, name: str, res: Dict[str, Any]) -> None:
        with self.lock:
            self.calls.append((name, res, threading.current_thread().name))
        if name == "complete":
            self.done.set()

    def callbacks(self) -> Dict[str, Callable[[Dict[str, Any]], None]]:
        return {
            "success": lambda res: self._record("success", res),
            "fail": lambda res: self._record("fail", res),
            "complete": lambda res: self._record("complete", res),
        }

    def listener(self, name: str) -> Callable[[Dict[str, Any]], None]:
        return lambda res: self._record(name, res)

    def wait(self, timeout: float = 10.0) -> "Recorder":
        assert self.done.wait(timeout), "the task did not complete in %ss" % timeout
        return self

    def names(self) -> List[str]:
        with self.lock:
            return [name for name, _, _ in self.calls]

    def of(self, name: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [res for n, res, _ in self.calls if n == name]

    def threads(self) -> List[str]:
        with self.lock:
            return [thread for _, _, thread in self.calls]

    @property
    def outcome(self) -> Dict[str, Any]:
        """The one success/fail result (asserting exactly one, then one complete)."""
        names = self.names()
        ends = [n for n in names if n in ("success", "fail")]
        assert len(ends) == 1, names
        assert names.count("complete") == 1, names
        return (self.of("success") or self.of("fail"))[0]


def call(rt: ftcore.Runtime, wait: float = 10.0, **options: Any) -> Dict[str, Any]:
    """Run one request with recorded callbacks; return its one result dict."""
    recorder = Recorder()
    rt.request(dict(options, **recorder.callbacks()))
    recorder.wait(wait)
    assert set(recorder.threads()) == {LOOP_THREAD}
    return recorder.outcome


class paused_loop:  # noqa: N801 - used as a context manager
    """Hold the runtime's loop inside the block, so listeners attached there are in place
    before the task can emit anything (an event emitted before any listener exists is
    replayed later, possibly after complete; tests of ordering must not depend on a race)."""

    def __init__(self, rt: ftcore.Runtime) -> None:
        self._rt = rt
        self._release = threading.Event()
        self._held = threading.Event()

    def _hold(self) -> None:
        self._held.set()
        self._release.wait()

    def __enter__(self) -> "paused_loop":
        self._rt.loop.call_soon_threadsafe(self._hold)
        assert self._held.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._release.set()
