"""The queue between the loop (which parses the body) and one iterator's consumer, and the
iterators over it (`task.iter_*()` in a thread, `task.aiter_*()` in asyncio).

Items travel in batches (one per body chunk), so a consumer pays one lock round trip per chunk,
not per event. The channel counts the *undelivered* size (the body bytes the items came from):
queued items plus the batch the consumer still holds. Past the limit it reports itself
throttled (the stream then pauses the socket); once the consumer has brought it down to a
quarter of the limit, the consumer asks the loop to resume. `throttled` changes under the
channel's lock on both sides, so a resume is never lost.

Leaving an iterator early (break, an exception in the loop body, `close()`, the iterator being
dropped) aborts the task. No lock is held while the consumer's code runs.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, List, Optional, Tuple

__all__ = ["Channel", "StreamIterator", "AsyncStreamIterator"]

_EMPTY: Any = object()  # `take` found nothing yet


class Channel:
    """One consumer's queue; `put`/`end` on the loop thread, `take` from the consumer."""

    __slots__ = (
        "limit",
        "throttled",
        "_lock",
        "_cond",
        "_queued",
        "_queued_size",
        "_pending",
        "_ended",
        "_error",
        "_waker",
        "_want_resume",
    )

    def __init__(self, limit: int, want_resume: Callable[["Channel"], None]) -> None:
        self.limit = limit
        self.throttled = False  # undelivered past `limit`: the stream stops reading
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queued: List[Any] = []
        self._queued_size = 0
        self._pending = 0  # queued, plus what the consumer took and has not finished
        self._ended = False
        self._error: Optional[BaseException] = None
        self._waker: Optional[Callable[[], None]] = None  # an asyncio consumer's wake-up
        self._want_resume = want_resume  # called (from the consumer) when it caught up

    # -- loop side ------------------------------------------------------------------------------

    def put(self, items: List[Any], size: int) -> bool:
        """Queue `items` (made of `size` body bytes); True if this made it throttled."""
        with self._lock:
            if self._ended:
                return False
            self._queued.extend(items)
            self._queued_size += size
            self._pending += size
            newly = not self.throttled and self._pending > self.limit
            if newly:
                self.throttled = True
            self._cond.notify()
            waker, self._waker = self._waker, None
        if waker is not None:
            waker()
        return newly

    def end(self, error: Optional[BaseException]) -> None:
        """Nothing more comes: the consumer stops after what is queued (raising `error`)."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            self._error = error
            self.throttled = False
            self._cond.notify_all()
            waker, self._waker = self._waker, None
        if waker is not None:
            waker()

    # -- consumer side --------------------------------------------------------------------------

    def take(self, done: int, block: bool) -> Tuple[Any, int]:
        """`done`: the size of the batch the consumer finished. Returns (batch, its size), or
        (None, 0) at the end, or (_EMPTY, 0) when nothing is queued and `block` is False."""
        with self._lock:
            self._pending -= done
            resume = self.throttled and self._pending <= self.limit // 4
            if resume:
                self.throttled = False
        if resume:
            self._want_resume(self)
        with self._lock:
            while block and not self._queued and not self._ended:
                self._cond.wait()
            return self._take_locked()

    def _take_locked(self) -> Tuple[Any, int]:
        if self._queued:
            batch, size = self._queued, self._queued_size
            self._queued, self._queued_size = [], 0
            return batch, size
        if self._ended:
            return None, 0
        return _EMPTY, 0

    def wait_with(self, waker: Callable[[], None]) -> bool:
        """Have the next `put` or `end` call `waker`; False if there is something already."""
        with self._lock:
            if self._queued or self._ended:
                return False
            self._waker = waker
            return True

    @property
    def error(self) -> Optional[BaseException]:
        return self._error


class _IteratorBase:
    """Hands out a channel's batches one item at a time; `close()` aborts the task."""

    def __init__(self, task: Any, channel: Channel, leave: Callable[[Channel], None]) -> None:
        self._task = task
        self._channel = channel
        self._leave = leave  # thread-safe: drop the channel, abort the task if it still runs
        self._batch: List[Any] = []
        self._index = 0
        self._batch_size = 0
        self._finished = False

    def _next_local(self) -> Any:
        """The next item of the batch in hand, or _EMPTY."""
        index = self._index
        if index < len(self._batch):
            self._index = index + 1
            return self._batch[index]
        return _EMPTY

    def _accept(self, batch: Any, size: int) -> Any:
        """Keep a batch from `take`; its first item, or raise at the end of the stream."""
        if batch is None:
            self._finished = True
            self._batch = []
            error = self._channel.error
            if error is not None:
                raise error
            raise self._stop()
        self._batch, self._index, self._batch_size = batch, 1, size
        return batch[0]

    def _stop(self) -> Exception:
        raise NotImplementedError

    def close(self) -> None:
        """Stop iterating; a task still running is aborted (leaving early)."""
        if self._finished:
            return
        self._finished = True
        self._batch = []
        self._leave(self._channel)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit the loop may be gone
            pass  # (`__del__` must not raise; nothing is left to abort then)


class StreamIterator(_IteratorBase):
    """`for item in task.iter_…():` in any thread but the loop's; ends when the task
    succeeds, raises its `FtError` when it fails."""

    def __iter__(self) -> "StreamIterator":
        return self

    def __next__(self) -> Any:
        item = self._next_local()
        if item is not _EMPTY:
            return item
        if self._finished:
            raise StopIteration
        if self._task._loop.in_loop_thread():
            raise RuntimeError("iterating a stream on the loop thread would deadlock")
        done, self._batch_size = self._batch_size, 0
        batch, size = self._channel.take(done, block=True)
        return self._accept(batch, size)

    def _stop(self) -> Exception:
        return StopIteration()

    def __enter__(self) -> "StreamIterator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncStreamIterator(_IteratorBase):
    """`async for item in task.aiter_…():` inside asyncio; as `StreamIterator`."""

    def __aiter__(self) -> "AsyncStreamIterator":
        return self

    async def __anext__(self) -> Any:
        import asyncio

        item = self._next_local()
        if item is not _EMPTY:
            return item
        if self._finished:
            raise StopAsyncIteration
        done, self._batch_size = self._batch_size, 0
        while True:
            batch, size = self._channel.take(done, block=False)
            done = 0
            if batch is not _EMPTY:
                return self._accept(batch, size)
            aloop = asyncio.get_running_loop()
            future = aloop.create_future()
            if self._channel.wait_with(_waker(aloop, future)):
                await future

    def _stop(self) -> Exception:
        return StopAsyncIteration()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> "AsyncStreamIterator":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


def _waker(aloop: Any, future: Any) -> Callable[[], None]:
    """A thread-safe wake-up of `future` on the asyncio loop `aloop`."""

    def set_result() -> None:
        if not future.done():
            future.set_result(None)

    def wake() -> None:
        try:
            aloop.call_soon_threadsafe(set_result)
        except RuntimeError:  # that asyncio loop is closed: nobody waits any more
            pass

    return wake
