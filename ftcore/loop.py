"""A small event loop on `selectors`: one ready queue, one timer heap, fd watchers.

The design is asyncio's ``_run_once`` without coroutines: each pass runs only the callbacks
that were ready when it began, cancelled timers are dropped lazily, and the select timeout
is the time to the next deadline, so an idle loop sleeps in the kernel and costs no CPU.
"""

from __future__ import annotations

import heapq
import logging
import selectors
import socket
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

__all__ = ["EventLoop", "Handle", "TimerHandle", "ManualClock"]

logger = logging.getLogger("ftcore")

Callback = Callable[..., Any]


class Handle:
    """A scheduled callback; `cancel()` makes the loop skip it."""

    __slots__ = ("_fn", "_args", "cancelled")

    def __init__(self, fn: Callback, args: Tuple[Any, ...]) -> None:
        self._fn = fn
        self._args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def _run(self) -> None:
        try:
            self._fn(*self._args)
        except Exception:
            logger.exception("ftcore: callback %r raised", self._fn)


class TimerHandle(Handle):
    """A callback due at `when` on the loop's clock; cancel it from the loop thread."""

    __slots__ = ("when", "_loop")

    def __init__(self, when: float, loop: "EventLoop", fn: Callback, args: Tuple[Any, ...]) -> None:
        super().__init__(fn, args)
        self.when = when
        self._loop: Optional[EventLoop] = loop  # None once it left the heap

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            if self._loop is not None:
                self._loop._timer_cancelled()


class ManualClock:
    """A clock that only moves when told to, so timeout tests need no sleeping.

    A loop made with it (`EventLoop(clock)`, `Runtime(clock=...)`) is woken by `advance`, so
    timers that came due fire on the loop's own thread at once."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._wakers: List[Callable[[], None]] = []

    def __call__(self) -> float:
        return self.now

    def attach(self, wake: Callable[[], None]) -> None:
        """Have `advance` call `wake` (a loop's thread-safe wake-up)."""
        self._wakers.append(wake)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for wake in list(self._wakers):
            wake()


class _Waker:
    """A socketpair whose readable end wakes the selector from another thread."""

    def __init__(self) -> None:
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.writer.setblocking(False)

    def wake(self) -> None:
        try:
            self.writer.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # the pipe is full: a wake-up is already pending
        except OSError:
            pass  # closed during shutdown

    def drain(self) -> None:
        try:
            while self.reader.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


class EventLoop:
    """Timers, fd readiness and thread-safe callbacks, run by one thread at a time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.time = clock
        self._selector = selectors.DefaultSelector()
        self._ready: Deque[Handle] = deque()
        self._timers: List[Tuple[float, int, TimerHandle]] = []
        self._timer_seq = 0
        self._cancelled_timers = 0
        self._readers: Dict[int, Handle] = {}
        self._writers: Dict[int, Handle] = {}
        self._waker = _Waker()
        self._selector.register(self._waker.reader, selectors.EVENT_READ)
        attach = getattr(clock, "attach", None)  # a ManualClock wakes us when it moves
        if attach is not None:
            attach(self._waker.wake)
        self._stopping = False
        self._wake_pending = False
        self._closed = False
        self.thread_id: Optional[int] = None

    # -- scheduling -------------------------------------------------------------------------

    def call_soon(self, fn: Callback, *args: Any) -> Handle:
        """Run `fn(*args)` on the next pass; only from the loop thread (or before it runs)."""
        handle = Handle(fn, args)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(self, fn: Callback, *args: Any) -> Handle:
        """Like `call_soon`, from any thread: the loop is woken if it is asleep in select."""
        handle = Handle(fn, args)
        self._ready.append(handle)  # deque.append is atomic under the GIL
        # One wake-up byte per sleep is enough: the flag is set before the byte is written and
        # cleared by the loop only after it drained the pair, so while it is set a byte is
        # pending (or about to be), and whatever was appended before the clear runs this pass.
        if not self._wake_pending and self.thread_id != threading.get_ident():
            self._wake_pending = True
            self._waker.wake()
        return handle

    def call_later(self, delay: float, fn: Callback, *args: Any) -> TimerHandle:
        """Run `fn(*args)` after `delay` seconds; from the loop thread only."""
        return self.call_at(self.time() + delay, fn, *args)

    def call_at(self, when: float, fn: Callback, *args: Any) -> TimerHandle:
        self._timer_seq += 1
        timer = TimerHandle(when, self, fn, args)
        heapq.heappush(self._timers, (when, self._timer_seq, timer))  # compared in C
        return timer

    def _timer_cancelled(self) -> None:
        """Rebuild the heap once most of it is cancelled timers (timeouts that never fired),
        so a busy loop's heap stays the size of its live timers."""
        self._cancelled_timers += 1
        timers = self._timers
        if self._cancelled_timers > 64 and self._cancelled_timers * 2 > len(timers):
            live = []
            for entry in timers:
                if entry[2].cancelled:
                    entry[2]._loop = None
                else:
                    live.append(entry)
            heapq.heapify(live)
            self._timers = live
            self._cancelled_timers = 0

    def in_loop_thread(self) -> bool:
        return self.thread_id == threading.get_ident()

    # -- fd watchers ------------------------------------------------------------------------

    def add_reader(self, fd: Any, fn: Callback, *args: Any) -> None:
        self._watch(fd, self._readers, Handle(fn, args))

    def add_writer(self, fd: Any, fn: Callback, *args: Any) -> None:
        self._watch(fd, self._writers, Handle(fn, args))

    def remove_reader(self, fd: Any) -> bool:
        return self._unwatch(fd, self._readers)

    def remove_writer(self, fd: Any) -> bool:
        return self._unwatch(fd, self._writers)

    def _watch(self, fd: Any, table: Dict[int, Handle], handle: Handle) -> None:
        fileno = fd if isinstance(fd, int) else fd.fileno()
        replaced = table.get(fileno)
        table[fileno] = handle
        if replaced is not None:
            replaced.cancel()  # it may already sit in this pass's ready queue
        self._update_registration(fileno)

    def _unwatch(self, fd: Any, table: Dict[int, Handle]) -> bool:
        fileno = fd if isinstance(fd, int) else fd.fileno()
        handle = table.pop(fileno, None)
        if handle is None:
            return False
        handle.cancel()  # it may already sit in this pass's ready queue
        self._update_registration(fileno)
        return True

    def _update_registration(self, fileno: int) -> None:
        mask = (selectors.EVENT_READ if fileno in self._readers else 0) | (
            selectors.EVENT_WRITE if fileno in self._writers else 0
        )
        try:
            registered = self._selector.get_key(fileno).events
        except KeyError:
            registered = 0
        if mask == registered:
            return
        if not registered:
            self._selector.register(fileno, mask)
        elif not mask:
            self._selector.unregister(fileno)
        else:
            self._selector.modify(fileno, mask)

    # -- running ----------------------------------------------------------------------------

    def run_once(self, timeout: Optional[float] = None) -> None:
        """One pass: wait for I/O up to the next deadline (or `timeout`), then run what is due.

        A host that embeds the loop calls this from its own thread, which is then the loop
        thread for the duration of the pass.
        """
        if self.thread_id is not None:
            self._run_once(timeout)
            return
        self.thread_id = threading.get_ident()
        try:
            self._run_once(timeout)
        finally:
            self.thread_id = None

    def _run_once(self, timeout: Optional[float]) -> None:
        if self._ready or self._stopping:
            wait: Optional[float] = 0.0
        else:
            wait = timeout
            timers = self._timers
            while timers and timers[0][2].cancelled:
                heapq.heappop(timers)[2]._loop = None
                self._cancelled_timers -= 1
            if timers:
                until_next = max(0.0, timers[0][0] - self.time())
                wait = until_next if wait is None else min(wait, until_next)
        for key, events in self._selector.select(wait):
            fileno = key.fd
            if fileno == self._waker.reader.fileno():
                self._waker.drain()
                self._wake_pending = False  # after the drain: see call_soon_threadsafe
                continue
            if events & selectors.EVENT_READ and fileno in self._readers:
                self._ready.append(self._readers[fileno])
            if events & selectors.EVENT_WRITE and fileno in self._writers:
                self._ready.append(self._writers[fileno])
        now = self.time()
        timers = self._timers
        while timers and (timers[0][0] <= now or timers[0][2].cancelled):
            timer = heapq.heappop(timers)[2]
            timer._loop = None
            if timer.cancelled:
                self._cancelled_timers -= 1
            else:
                self._ready.append(timer)
        ready = self._ready
        for _ in range(len(ready)):
            handle = ready.popleft()
            if not handle.cancelled:
                handle._run()

    def run_forever(self) -> None:
        """Run passes on this thread until `stop()`."""
        self.thread_id = threading.get_ident()
        try:
            while not self._stopping:
                self._run_once(None)
        finally:
            self._stopping = False
            self.thread_id = None

    def stop(self) -> None:
        """Make `run_forever` return after the current pass; callable from any thread."""
        self._stopping = True
        self._waker.wake()

    def has_ready(self) -> bool:
        """True while callbacks wait for the next pass."""
        return bool(self._ready)

    def pending_counts(self) -> Dict[str, int]:
        """What the loop still holds: live callbacks in the ready queue, live timers, watched
        fds. Read-only, for leak checks (a loop whose owner has finished should hold nothing;
        `close()` drops it all, so ask just before). Callable from any thread; exact while no
        pass runs."""
        ready = list(self._ready)  # a snapshot in C: another thread may append meanwhile
        timers = list(self._timers)
        return {
            "ready": sum(1 for handle in ready if not handle.cancelled),
            "timers": sum(1 for entry in timers if not entry[2].cancelled),
            "readers": len(self._readers),
            "writers": len(self._writers),
        }

    def close(self) -> None:
        """Release the selector and the wake-up pair; every watched fd leaves the selector."""
        if self._closed:
            return
        self._closed = True
        for fileno in list(self._readers) + list(self._writers):
            self._readers.pop(fileno, None)
            self._writers.pop(fileno, None)
            try:
                self._selector.unregister(fileno)
            except (KeyError, ValueError):
                pass
        self._ready.clear()
        self._timers.clear()
        self._selector.close()
        self._waker.close()

    @property
    def closed(self) -> bool:
        return self._closed
