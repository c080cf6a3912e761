"""Helpers for the UDP tests: an event recorder, a loop barrier and a runtime fixture.

No test sleeps to synchronise: events are awaited on queues with timeouts, and "nothing else
happened" is checked after a loop barrier (a callback queued behind everything pending).
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import ftcore

WAIT = 10.0  # upper bound for anything that should happen at once
LOOP_THREAD = "ftcore-loop"
HOSTS = {"udp4": "127.0.0.1", "udp6": "::1"}
FAMILY_NAMES = {"udp4": "IPv4", "udp6": "IPv6"}

Event = Tuple[str, Dict[str, Any]]


class Recorder:
    """Attaches a listener for every event of a UDPSocket and records them, in order."""

    NAMES = ("Listening", "Message", "Error", "Close")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.events: "queue.Queue[Event]" = queue.Queue()
        self.log: List[Event] = []
        self.threads: set = set()
        for name in self.NAMES:
            getattr(sock, "on" + name)(self._listener(name))

    def _listener(self, name: str) -> Any:
        def record(res: Dict[str, Any]) -> None:
            self.threads.add(threading.current_thread().name)
            self.log.append((name, res))
            self.events.put((name, res))

        return record

    def next(self, timeout: float = WAIT) -> Event:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no event within %ss; so far: %r" % (timeout, self.log)) from None

    def expect(self, name: str, timeout: float = WAIT) -> Dict[str, Any]:
        got, res = self.next(timeout)
        assert got == name, "expected %s, got %s %r (log %r)" % (name, got, res, self.log)
        return res

    def error(self, errcode: Optional[int] = None, errmsg: Optional[str] = None) -> Dict[str, Any]:
        res = self.expect("Error")
        assert set(res) == {"errMsg", "errCode"}
        if errcode is not None:
            assert res["errCode"] == errcode, res
        if errmsg is not None:
            assert res["errMsg"] == errmsg, res
        return res

    def pending(self) -> List[Event]:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out


def barrier(rt: ftcore.Runtime, passes: int = 3) -> None:
    """Return once the loop has run everything queued before the call (and what that queued)."""
    for _ in range(passes):
        done = threading.Event()
        rt.loop.call_soon_threadsafe(done.set)
        assert done.wait(WAIT), "the loop is stuck"


def free_port(family: str = "udp4") -> int:
    """A UDP port that nothing listens on (bound then released)."""
    af = socket.AF_INET6 if family == "udp6" else socket.AF_INET
    with socket.socket(af, socket.SOCK_DGRAM) as probe:
        probe.bind((HOSTS[family], 0))
        return int(probe.getsockname()[1])


def make_runtime(config: Optional[Dict[str, Any]] = None, **kwargs: Any) -> ftcore.Runtime:
    kwargs.setdefault("entrypoints", False)
    return ftcore.Runtime(config=config, **kwargs)


@pytest.fixture
def rt() -> Iterator[ftcore.Runtime]:
    runtime = make_runtime()
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def quiet_log(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if ftcore logged a warning or an exception."""
    caplog.set_level(logging.WARNING, logger="ftcore")
    yield
    bad = [
        r for r in caplog.records if r.name.startswith("ftcore") and r.levelno >= logging.WARNING
    ]
    assert not bad, "ftcore logged: %r" % [r.getMessage() for r in bad]


def open_fds() -> int:
    from tests.peers.lifecycle import open_fd_count

    return open_fd_count()
