"""Concurrency slots: at most `limit` tasks run, the rest wait in order (loop thread only).

A released slot passes to the next waiter on the next loop pass, never inside the releasing
task's own teardown: a waiter that fails at once would otherwise release into the next one,
and a long queue would recurse (and run B's callbacks before A's complete).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque

__all__ = ["Slots"]


class Slots:
    def __init__(self, limit: int, call_soon: Callable[..., Any]) -> None:
        self._call_soon = call_soon
        self.limit = limit
        self.used = 0
        self._waiting: Deque[Callable[[], Any]] = deque()

    def acquire(self, start: Callable[[], Any]) -> None:
        """Call `start()` now if a slot is free, else when one is released."""
        if self.used < self.limit:
            self.used += 1
            start()
        else:
            self._waiting.append(start)

    def release(self) -> None:
        """Give the slot to the next waiter (its `start` runs on the next pass), or free it.

        A waiter handed the slot but aborted before its `start` runs must release it there."""
        if self._waiting:
            self._call_soon(self._waiting.popleft())
        else:
            self.used -= 1

    def withdraw(self, start: Callable[[], Any]) -> bool:
        """Forget a waiter that was aborted before its turn; True if it was waiting."""
        try:
            self._waiting.remove(start)
        except ValueError:
            return False
        return True
