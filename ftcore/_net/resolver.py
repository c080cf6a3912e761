"""Name resolution off the loop: `getaddrinfo` on a small pool of worker threads.

The loop never blocks on DNS. A lookup joins a queue that up to `workers` threads serve. A
thread is started only when every worker is busy, and one left idle for `idle_s` exits:
lookups in a row reuse one thread (starting a thread costs 0.1-1 ms on a loaded machine,
more than resolving `localhost`), and an idle runtime keeps none.

A lookup can be cancelled at any time: its result is then dropped on the worker and never
reaches the loop, and one cancelled while still queued never calls `getaddrinfo`.
`getaddrinfo` itself cannot be interrupted, so a worker in a cancelled call is busy until
the call returns. `close()` refuses new lookups, wakes the idle workers so they exit, and
waits for every worker, bounded, so a closed runtime leaves no thread behind in the usual
case (a resolver that hangs is the system's, and its daemon thread ends with its own timeout).

The resolver's lock is never held while `getaddrinfo` or a callback runs.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, List, Optional, Set, Tuple, Union

from .addresses import Target

__all__ = ["Resolver", "Lookup", "LookupResult"]

LookupResult = Union[List[Target], BaseException]
GetAddrInfo = Callable[..., Any]

WORKERS = 4  # lookups resolved at once per runtime; more wait in the queue
IDLE_S = 5.0  # a worker with nothing to do for this long exits


class Lookup:
    """One lookup queued or in flight; `cancel()` (loop thread) drops its result."""

    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[LookupResult], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


Query = Tuple[Lookup, str, int, int, int]  # lookup, host, port, family, flags


class Resolver:
    """Resolves names for one loop; `getaddrinfo`, the pool size and the idle timeout are
    injectable for tests."""

    def __init__(
        self,
        loop: Any,
        getaddrinfo: Optional[GetAddrInfo] = None,
        workers: int = WORKERS,
        idle_s: float = IDLE_S,
    ) -> None:
        self._loop = loop
        self._getaddrinfo = getaddrinfo  # None: socket.getaddrinfo, looked up at each call
        self._max_workers = workers
        self._idle_s = idle_s
        self._cond = threading.Condition()
        self._queue: Deque[Query] = deque()
        self._threads: Set[threading.Thread] = set()  # started; the exited ones pruned lazily
        self._workers = 0  # threads serving the queue; each looks at it before it waits
        self._busy = 0  # of those, resolving a lookup
        self._closed = False

    def lookup(
        self,
        host: str,
        port: int,
        family: int,
        flags: int,
        callback: Callable[[LookupResult], None],
    ) -> Lookup:
        """Queue a lookup; `callback(targets or error)` runs on the loop, never inside this
        call, unless the lookup was cancelled first."""
        lookup = Lookup(callback)
        with self._cond:
            if self._closed:
                raise RuntimeError("the resolver is closed")
            if len(self._queue) < self._workers - self._busy:  # a free worker will take it
                self._cond.notify()
            elif self._workers < self._max_workers:
                self._start_worker()
            self._queue.append((lookup, host, port, family, flags))
        return lookup

    def _start_worker(self) -> None:
        """Add a thread to the pool (lock held: `start()` only waits for the thread to exist,
        and a failure leaves nothing queued)."""
        thread = threading.Thread(target=self._work, name="ftcore-resolve", daemon=True)
        thread.start()
        self._threads = {t for t in self._threads if t.is_alive()}
        self._threads.add(thread)
        self._workers += 1

    def _work(self) -> None:
        """One pool thread. A lookup stops counting as busy before its result is posted, so
        `pending()` reads 0 by the time the last callback runs (what leak checks assert)."""
        with self._cond:
            query = self._take()
        while query is not None:
            lookup, host, port, family, flags = query
            result = self._resolve(host, port, family, flags)
            with self._cond:
                self._busy -= 1
            if not lookup.cancelled:
                self._loop.call_soon_threadsafe(self._deliver, lookup, result)
            with self._cond:
                query = self._take()

    def _take(self) -> Optional[Query]:
        """The next lookup not cancelled, waiting up to `idle_s` for one; None: this worker
        exits (idle too long, or closed with nothing left). Lock held."""
        deadline: Optional[float] = None
        while True:
            while self._queue:
                query = self._queue.popleft()
                if not query[0].cancelled:
                    self._busy += 1
                    return query
            now = time.monotonic()
            if deadline is None:
                deadline = now + self._idle_s
            if self._closed or now >= deadline:
                self._workers -= 1
                return None
            self._cond.wait(deadline - now)

    def _resolve(self, host: str, port: int, family: int, flags: int) -> LookupResult:
        try:
            getaddrinfo = self._getaddrinfo or socket.getaddrinfo
            infos = getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, flags)
            return [(info[0], info[4]) for info in infos]
        except (OSError, UnicodeError) as error:
            return error
        except Exception as error:  # noqa: BLE001 - an injected resolver's bug: a failed lookup
            return error

    @staticmethod
    def _deliver(lookup: Lookup, result: LookupResult) -> None:
        if not lookup.cancelled:
            lookup.cancelled = True  # delivered: a late cancel() is a no-op
            lookup.callback(result)

    def pending(self) -> int:
        """Lookups resolving (cancelled or not: each holds a thread) or queued and not
        cancelled (leak checks). Idle workers hold no lookup and do not count: they exit on
        their own after `idle_s`, or at `close()`."""
        with self._cond:
            return self._busy + sum(not query[0].cancelled for query in self._queue)

    def close(self, timeout: float) -> List[threading.Thread]:
        """Refuse new lookups, wake idle workers so they exit, and wait up to `timeout` s for
        every worker (lookups queued and not cancelled are still resolved first); those still
        alive."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [thread for thread in threads if thread.is_alive()]
