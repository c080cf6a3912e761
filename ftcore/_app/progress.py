"""A progress bar for the CLI: redrawn in place on a terminal, plain lines otherwise."""

from __future__ import annotations

import time
from typing import IO

__all__ = ["ProgressBar"]

WIDTH = 30


class ProgressBar:
    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._start = time.monotonic()
        self._last_line = ""
        self._last_percent = -1

    def update(self, done: int, total: int) -> None:
        percent = done * 100 // total if total else 0
        if not self._tty and percent == self._last_percent:
            return
        self._last_percent = percent
        elapsed = max(time.monotonic() - self._start, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if total and rate else 0.0
        filled = WIDTH * percent // 100
        line = "[%s%s] %3d%% %s %s/s ETA %ds" % (
            "#" * filled, "." * (WIDTH - filled), percent, _size(done), _size(rate), eta)
        if self._tty:
            self._stream.write("\r" + line.ljust(len(self._last_line)))
        else:
            self._stream.write(line + "\n")
        self._last_line = line
        self._stream.flush()

    def finish(self) -> None:
        if self._tty and self._last_line:
            self._stream.write("\n")
            self._stream.flush()


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return "%.1f %s" % (count, unit)
        count /= 1024
    return "%.1f GiB" % count
