"""The queue between the loop (which parses the body, or hears a socket's messages) and one
iterator's consumer, and the iterators over it (`for` in a thread, `async for` in asyncio).

Items travel in batches (all that is queued when the consumer asks), so a consumer pays one
lock round trip per batch, not per item. The channel counts the *undelivered* size (the body
bytes the items came from, or each message's estimated cost): queued items plus the batch the
consumer still holds. Past the limit it reports itself throttled (the producer then stops
reading its socket); once the consumer has brought it down to a quarter of the limit, the
consumer asks the loop to resume. `throttled` changes under the channel's lock on both sides,
so a resume is never lost. A channel made with `shed` never throttles: past the limit it drops
its oldest queued items instead, and counts them (UDP, which has no way to push back).

Waiting: a consumer on a host-driven runtime that no thread is running runs the loop itself
until something is queued (`ftcore._core.drive`); any other consumer sleeps on a gate, a lock
held while it is shut, that the producer's next `put` or `end` releases (one release per
wake-up, no Condition). An asyncio consumer leaves a waker instead.

Leaving an iterator early (break, an exception in the loop body, `close()`, the iterator being
dropped) calls its `leave`: the producer forgets the channel (a streamed request is then
aborted, a socket is not). No lock is held while the consumer's code runs.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

from ..._core import drive

if TYPE_CHECKING:
    from ...loop import EventLoop

__all__ = ["Channel", "StreamIterator", "AsyncStreamIterator"]

_EMPTY: Any = object()  # `take` found nothing yet


class Channel:
    """One consumer's queue; `put`/`end` on the loop thread, `take` from the consumer.

    One consumer at a time: an iterator is not shared between threads."""

    __slots__ = (
        "limit",
        "throttled",
        "dropped",
        "_loop",
        "_lock",
        "_gate",
        "_sleeping",
        "_queued",
        "_queued_size",
        "_pending",
        "_ended",
        "_error",
        "_waker",
        "_want_resume",
        "_shed",
    )

    def __init__(
        self,
        limit: int,
        want_resume: Callable[["Channel"], None],
        loop: "EventLoop",
        shed: Optional[Callable[[Any], int]] = None,
    ) -> None:
        """`shed`: the size of one item, to drop the oldest past `limit` instead of throttling."""
        self.limit = limit
        self.throttled = False  # undelivered past `limit`: the producer stops reading
        self.dropped = 0  # items shed
        self._loop = loop
        self._lock = threading.Lock()
        self._gate = threading.Lock()  # held while shut: a sleeping consumer blocks on it
        self._gate.acquire()
        self._sleeping = False  # the consumer blocks on the gate: the next put/end opens it
        self._queued: List[Any] = []
        self._queued_size = 0
        self._pending = 0  # queued, plus what the consumer took and has not finished
        self._ended = False
        self._error: Optional[BaseException] = None
        self._waker: Optional[Callable[[], None]] = None  # an asyncio consumer's wake-up
        self._want_resume = want_resume  # called (from the consumer) when it caught up
        self._shed = shed

    # -- loop side ------------------------------------------------------------------------------

    def put(self, items: List[Any], size: int) -> bool:
        """Queue `items` (of `size` in all); True if this made it throttled."""
        with self._lock:
            if self._ended:
                return False
            self._queued.extend(items)
            self._queued_size += size
            self._pending += size
            newly = False
            if self._shed is not None:
                if self._queued_size > self.limit:
                    self._drop_oldest(self._shed)
            elif not self.throttled and self._pending > self.limit:
                self.throttled = newly = True
            if not self._sleeping and self._waker is None:  # the consumer is awake
                return newly
            wakeups = self._claim_wakeups()
        self._wake(*wakeups)
        return newly

    def _drop_oldest(self, size_of: Callable[[Any], int]) -> None:
        """Drop queued items, oldest first, until the queue is back within the limit (the
        batch the consumer holds is its own: it stays)."""
        queued = self._queued
        count = freed = 0
        while self._queued_size - freed > self.limit and count < len(queued):
            freed += size_of(queued[count])
            count += 1
        del queued[:count]
        self._queued_size -= freed
        self._pending -= freed
        self.dropped += count

    def end(self, error: Optional[BaseException]) -> None:
        """Nothing more comes: the consumer stops after what is queued (raising `error`)."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            self._error = error
            self.throttled = False
            wakeups = self._claim_wakeups()
        self._wake(*wakeups)

    def _claim_wakeups(self) -> Tuple[bool, Optional[Callable[[], Any]]]:
        """Under the lock: take the sleeping consumer's gate and the async waker, once."""
        sleeping, self._sleeping = self._sleeping, False
        waker, self._waker = self._waker, None
        return sleeping, waker

    def _wake(self, sleeping: bool, waker: Optional[Callable[[], Any]]) -> None:
        """Outside the lock: open the gate for a sleeping consumer, call the async waker."""
        if sleeping:
            self._gate.release()
        if waker is not None:
            waker()

    # -- consumer side --------------------------------------------------------------------------

    def take(self, done: int, timeout: Optional[float]) -> Tuple[Any, int]:
        """`done`: the size of the batch the consumer finished. Returns (batch, its size), or
        (None, 0) at the end, or (_EMPTY, 0) when nothing came within `timeout` seconds
        (None: no limit; 0: do not wait)."""
        loop = self._loop
        with self._lock:
            self._pending -= done
            resume = self.throttled and self._pending <= self.limit // 4
            if resume:
                self.throttled = False
            found = self._take_locked()
            wait = found[0] is _EMPTY and timeout != 0
            # the usual case, a runtime with its own loop thread: sleep, registered in the
            # lock section that found nothing, so that no put can slip in between
            gate = wait and not loop.host_driven and not loop.in_loop_thread()
            if gate:
                self._sleeping = True
        if resume:
            self._want_resume(self)
        if not wait:
            return found
        if gate:
            self._sleep_registered(timeout)
        elif loop.in_loop_thread():
            raise RuntimeError("waiting for an iterator on the loop thread would deadlock")
        elif not drive.wait(loop, self._has_news, self._sleep, timeout):
            return _EMPTY, 0
        with self._lock:
            return self._take_locked()

    def _has_news(self) -> bool:
        return bool(self._queued) or self._ended

    def _sleep(self, timeout: Optional[float]) -> bool:
        """Block until the next `put` or `end` (at most `timeout` seconds); True if one came."""
        with self._lock:
            if self._queued or self._ended:
                return True
            self._sleeping = True
        return self._sleep_registered(timeout)

    def _sleep_registered(self, timeout: Optional[float]) -> bool:
        """`_sleep` once `_sleeping` is set: block on the gate that put/end will open."""
        gate = self._gate
        if timeout is None:
            return gate.acquire()
        if gate.acquire(True, timeout):
            return True
        with self._lock:
            if self._sleeping:  # no put came: nobody opens the gate, it stays shut
                self._sleeping = False
                return False
        gate.acquire()  # a put is opening it right now: take that opening, so it stays shut
        return True

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
    """Hands out a channel's batches one item at a time; `close()` leaves the channel."""

    def __init__(self, channel: Channel, leave: Callable[[Channel], None]) -> None:
        self._channel = channel
        self._leave = leave  # thread-safe: the producer forgets the channel
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
        """Stop iterating (leaving early): the producer forgets this iterator."""
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
    """`for item in iterator:` in any thread but the loop's; ends at the end of the stream,
    raising its error if it has one. `timeout` (seconds) bounds each wait for the next item:
    past it, `TimeoutError` (the iterator stays usable)."""

    def __init__(
        self, channel: Channel, leave: Callable[[Channel], None], timeout: Optional[float] = None
    ) -> None:
        super().__init__(channel, leave)
        self._timeout = timeout

    def __iter__(self) -> "StreamIterator":
        return self

    def __next__(self) -> Any:
        index = self._index
        if index < len(self._batch):  # `_next_local`, inlined: once per item
            self._index = index + 1
            return self._batch[index]
        if self._finished:
            raise StopIteration
        done, self._batch_size = self._batch_size, 0
        batch, size = self._channel.take(done, self._timeout)
        if batch is _EMPTY:
            raise TimeoutError("nothing came within %ss" % self._timeout)
        return self._accept(batch, size)

    def _stop(self) -> Exception:
        return StopIteration()

    def __enter__(self) -> "StreamIterator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncStreamIterator(_IteratorBase):
    """`async for item in iterator:` inside asyncio; as `StreamIterator`."""

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
            batch, size = self._channel.take(done, 0)
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
