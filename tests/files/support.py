"""Helpers for the file tests: a runtime per test and file listings (the recorder is the
shared one, re-exported here)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Iterator, List

import pytest

import ftcore
from tests.support.recorder import Recorder  # noqa: F401  (the shared one)
from tests.support.waits import WAIT


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
