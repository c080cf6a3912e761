"""Helpers for the file tests: a runtime per test, a callback recorder, and file listings."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Dict, Iterator, List

import pytest

import ftcore

WAIT = 20.0  # an upper bound for things that happen at once; never a synchronisation


class Recorder:
    """success/fail/complete and listener events, in the order the loop ran them."""

    def __init__(self) -> None:
        self.events: List[Any] = []
        self.lock = threading.Lock()
        self.progress_seen = threading.Event()

    def options(self) -> Dict[str, Any]:
        return {
            "success": lambda res: self._add(("success", res)),
            "fail": lambda res: self._add(("fail", res)),
            "complete": lambda res: self._add(("complete", res)),
        }

    def on_progress(self, res: Dict[str, Any]) -> None:
        self._add(("progress", res))
        self.progress_seen.set()

    def _add(self, item: Any) -> None:
        with self.lock:
            self.events.append(item)

    def kinds(self) -> List[str]:
        with self.lock:
            return [kind for kind, _ in self.events]

    def of(self, kind: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [res for k, res in self.events if k == kind]


@pytest.fixture
def make_rt(tmp_path: Any) -> Iterator[Callable[..., ftcore.Runtime]]:
    """`make_rt(**config)`: a Runtime with its own sandbox under tmp_path, closed at the end."""
    runtimes: List[ftcore.Runtime] = []

    def make(**config: Any) -> ftcore.Runtime:
        config.setdefault("sandbox", str(tmp_path / ("sandbox%d" % len(runtimes))))
        rt = ftcore.Runtime(config=config, entrypoints=False)
        runtimes.append(rt)
        return rt

    yield make
    for rt in runtimes:
        rt.close()


def files_under(path: str) -> List[str]:
    found = []
    for directory, _, names in os.walk(path):
        found += [os.path.join(directory, name) for name in names]
    return sorted(found)


def flush(rt: ftcore.Runtime) -> None:
    """Wait until the loop has run everything queued before this call."""
    done = threading.Event()
    rt.loop.call_soon_threadsafe(done.set)
    assert done.wait(WAIT)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def client_sockets(port: int) -> int:
    """Sockets of this process connected to `port` on loopback (the client side only)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if int(fields[2].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except OSError:
            continue
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            count += 1
    return count


def open_files_under(root: str) -> List[str]:
    """Paths under `root` this process holds open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if link.startswith(root.rstrip(os.sep) + os.sep):
            found.append(link)
    return found


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll a condition that has no event to wait on (sockets the kernel closes)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
