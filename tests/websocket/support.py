"""Helpers for the WebSocket tests: an event recorder that waits on a condition, never sleeps."""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

Event = Tuple[str, Dict[str, Any], str]  # (name, res, thread name)

WAIT_S = 10.0


class Recorder:
    """Collects callbacks and listener calls, with the thread each ran on."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: List[Event] = []

    def cb(
        self, name: str, then: Optional[Callable[[Dict[str, Any]], Any]] = None
    ) -> Callable[[Dict[str, Any]], None]:
        def record(res: Dict[str, Any]) -> None:
            with self.cond:
                self.events.append((name, res, threading.current_thread().name))
                self.cond.notify_all()
            if then is not None:
                then(res)

        return record

    def callbacks(self, prefix: str) -> Dict[str, Any]:
        """success/fail/complete options recording as `<prefix>.success` etc."""
        return {k: self.cb("%s.%s" % (prefix, k)) for k in ("success", "fail", "complete")}

    def attach(self, task: Any, prefix: str = "") -> None:
        for name in ("Open", "Message", "Error", "Close"):
            getattr(task, "on" + name)(self.cb(prefix + name))

    def wait_for(self, predicate: Callable[["Recorder"], bool], timeout: float = WAIT_S) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self), timeout):
                raise AssertionError("timed out; events so far: %r" % (self.names(),))

    def wait_name(self, name: str, count: int = 1, timeout: float = WAIT_S) -> Dict[str, Any]:
        self.wait_for(lambda r: r.count(name) >= count, timeout)
        return self.all(name)[count - 1]

    def count(self, name: str) -> int:
        return sum(1 for event in self.events if event[0] == name)

    def all(self, name: str) -> List[Dict[str, Any]]:
        with self.cond:
            return [res for n, res, _ in self.events if n == name]

    def names(self) -> List[str]:
        with self.cond:
            return [n for n, _, _ in self.events]

    def threads(self) -> List[str]:
        with self.cond:
            return [t for _, _, t in self.events]


def refused_url() -> str:
    """A ws:// URL on a loopback port that nothing listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return "ws://127.0.0.1:%d/" % port
