"""Helpers for the request tests: a one-call runner, a paused loop, the loop thread's name
(the recorder is the shared one, re-exported here)."""

from __future__ import annotations

import threading
from typing import Any, Dict

import ftcore
from tests.support.recorder import Recorder
from tests.support.runtimes import ftcore_threads  # noqa: F401  (re-exported)

LOOP_THREAD = "ftcore-loop"


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
