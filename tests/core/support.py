"""Helpers shared by the core tests: tiny tasks that need no transport, and the leak check."""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional

import pytest

import ftcore
from ftcore._core.listeners import event_methods
from ftcore._core.task import Task
from ftcore.errors import FtError
from tests.support.waits import WAIT

LOOP_THREAD = "ftcore-loop"


def loop_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == LOOP_THREAD]


@pytest.fixture(scope="module", autouse=True)
def no_loop_thread_leak() -> Any:
    """After the module (and its runtimes) is done, no loop thread may survive."""
    before = set(loop_threads())
    yield
    leaked = [t for t in loop_threads() if t not in before]
    assert not leaked, "loop threads left running: %r" % leaked


def make_runtime(**kwargs: Any) -> ftcore.Runtime:
    kwargs.setdefault("entrypoints", False)
    return ftcore.Runtime(**kwargs)


class ManualTask(Task):
    """A task that starts and then waits for the test to settle it (from any thread)."""

    api = "request"
    onEvent, offEvent = event_methods("Event")  # noqa: N815 - JS names

    def __init__(self, runtime: ftcore.Runtime, options: Dict[str, Any]) -> None:
        super().__init__(runtime, options)
        self.started = threading.Event()
        self.prepared: Optional[Dict[str, Any]] = None
        self.cancelled = 0

    def _start(self, options: Dict[str, Any]) -> None:
        self.prepared = options
        self.started.set()

    def _cancel(self) -> None:
        self.cancelled += 1

    # test side: every one of these hops to the loop thread
    def succeed(self, res: Optional[Dict[str, Any]] = None) -> None:
        self._loop.call_soon_threadsafe(self._succeed, {} if res is None else res)

    def fail(self, error: FtError) -> None:
        self._loop.call_soon_threadsafe(self._fail, error)

    def emit(self, name: str, res: Dict[str, Any]) -> None:
        self._loop.call_soon_threadsafe(self._listeners.emit, name, res)


class InstantTask(Task):
    """Succeeds (with a copy of its prepared options) on the pass after it starts."""

    api = "request"

    def _start(self, options: Dict[str, Any]) -> None:
        self._loop.call_soon(self._succeed, {"options": options})


def launch(rt: ftcore.Runtime, cls: Any = InstantTask, **options: Any) -> Any:
    return cls(rt, options).launch()


def flush(loop: Any, timeout: float = WAIT) -> None:
    """Return once every callback already queued on a running loop has run."""
    done = threading.Event()
    loop.call_soon_threadsafe(done.set)
    assert done.wait(timeout), "the loop did not run a queued callback"


class Recorder:
    """Callbacks that record (name, res, thread name) in order."""

    def __init__(self) -> None:
        self.calls: List[Any] = []
        self.lock = threading.Lock()
        self.completed = threading.Event()

    def options(self) -> Dict[str, Callable[[Dict[str, Any]], None]]:
        return {
            "success": self._cb("success"),
            "fail": self._cb("fail"),
            "complete": self._cb("complete"),
        }

    def _cb(self, name: str) -> Callable[[Dict[str, Any]], None]:
        def callback(res: Dict[str, Any]) -> None:
            with self.lock:
                self.calls.append((name, res, threading.current_thread().name))
            if name == "complete":
                self.completed.set()

        return callback

    def names(self) -> List[str]:
        return [c[0] for c in self.calls]
