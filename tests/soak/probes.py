"""What the campaign measures about the process: fds, threads, RSS, temp files, logs.

Why: leaks show as a difference between a baseline taken before the run and the same probe
after it, once every runtime and peer is closed; memory shows as a trend, so RSS is sampled
all along.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import statistics
import threading
import time
import warnings
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Tuple

from tests.peers.lifecycle import non_peer_threads, open_fd_count

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20
SAMPLE_EVERY_S = 1.0
SETTLE_S = 5.0  # how long leftovers get to go away (a worker thread finishing) before a verdict


def _malloc_trim() -> Callable[[], Any]:
    """glibc's `malloc_trim(0)`, or a no-op elsewhere."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


trim_malloc = _malloc_trim()


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def thread_names() -> List[str]:
    """Live threads that are not the peers' (they are stopped before the final count)."""
    return sorted(t.name for t in non_peer_threads())


def settle(probe: Callable[[], Any], good: Callable[[Any], bool]) -> Any:
    """Probe until `good(value)` or `SETTLE_S` passed; return the last value."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        gc.collect()
        value = probe()
        if good(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def fd_count() -> int:
    return open_fd_count()


def leftover_files(root: str) -> List[str]:
    """Every file (not directory) under `root`, relative to it."""
    found: List[str] = []
    for directory, _, files in os.walk(root):
        found.extend(os.path.relpath(os.path.join(directory, name), root) for name in files)
    return sorted(found)


class Sampler:
    """A thread sampling RSS and the fd count every `SAMPLE_EVERY_S` until stopped."""

    def __init__(self) -> None:
        self.samples: List[Tuple[float, int, int]] = []  # (seconds since start, rss, fds)
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            gc.collect()  # garbage in reference cycles is not a leak: count what is reachable
            trim_malloc()  # and what is in use, not what the allocator kept for later
            self.samples.append((time.monotonic() - self._start, rss_bytes(), fd_count()))
            if self._stop.wait(SAMPLE_EVERY_S):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def trend(self) -> Dict[str, Any]:
        """The RSS at the midpoint of the run (the median of the 5 samples around it: one
        sample is at the mercy of the bodies in flight then) and the median of the last tenth
        (at least 3 samples); also a coarse curve, one point per tenth."""
        samples = self.samples
        if len(samples) < 6:
            return {"note": "too few samples", "growth": 0}
        duration = samples[-1][0]
        middle = min(range(len(samples)), key=lambda i: abs(samples[i][0] - duration / 2))
        mid_rss = statistics.median(s[1] for s in samples[max(0, middle - 2):middle + 3])
        tail = samples[-max(3, len(samples) // 10):]
        tail_rss = statistics.median(s[1] for s in tail)
        curve = []
        for tenth in range(11):
            at = duration * tenth / 10
            point = min(samples, key=lambda s: abs(s[0] - at))
            curve.append((round(point[0]), point[1] / MIB, point[2]))
        return {
            "mid": mid_rss,
            "tail": tail_rss,
            "growth": tail_rss - mid_rss,
            "min": min(s[1] for s in samples),
            "max": max(s[1] for s in samples),
            "fd_max": max(s[2] for s in samples),
            "curve": curve,
            "count": len(samples),
        }


class LogWatch(logging.Handler):
    """Counts what the `ftcore` logger said, by level and first line; keeps a few examples.

    Why: ftcore logs a callback or plugin that raised instead of breaking the loop; an
    ERROR from it during the soak is either our bug or ftcore's, and is reported."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: Counter = Counter()
        self.examples: Dict[Tuple[str, str], str] = {}
        self._logger = logging.getLogger("ftcore")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage().splitlines()[0][:120]
        except Exception:  # noqa: BLE001  (a bad log call must not break the campaign)
            text = str(record.msg)[:120]
        key = (record.levelname, text)
        self.counts[key] += 1
        if key not in self.examples and record.exc_info:
            self.examples[key] = logging.Formatter().formatException(record.exc_info)[-2000:]

    def __enter__(self) -> "LogWatch":
        self._logger.addHandler(self)
        self._logger.setLevel(logging.WARNING)
        self._logger.propagate = False  # counted here, not printed line by line
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.propagate = True

    def errors(self) -> int:
        return sum(n for (level, _), n in self.counts.items() if level in ("ERROR", "CRITICAL"))


class ResourceWarnings:
    """Collects ResourceWarnings (an unclosed socket or file found by the garbage collector)."""

    def __init__(self) -> None:
        self.messages: List[str] = []
        self._saved: Optional[Any] = None
        self._catcher = warnings.catch_warnings()

    def __enter__(self) -> "ResourceWarnings":
        self._catcher.__enter__()
        warnings.simplefilter("always", ResourceWarning)
        self._saved = warnings.showwarning

        def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
            if issubclass(category, ResourceWarning):
                self.messages.append(str(message)[:200])
            elif self._saved is not None:
                self._saved(message, category, *args, **kwargs)

        warnings.showwarning = show
        return self

    def __exit__(self, *exc: Any) -> None:
        self._catcher.__exit__(*exc)
