"""Name resolution off the loop: `getaddrinfo` on a short-lived worker thread per lookup.

The loop never blocks on DNS. A lookup can be cancelled at any time: its result is then
dropped on the worker and never reaches the loop. `getaddrinfo` itself cannot be interrupted,
so a cancelled lookup's thread ends when the call returns; `close()` waits for those threads,
bounded, so a closed runtime leaves none behind in the usual case (a resolver that hangs is
the system's, and its daemon thread ends with its own timeout).
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable, List, Optional, Set, Union

from .addresses import Target

__all__ = ["Resolver", "Lookup", "LookupResult"]

LookupResult = Union[List[Target], BaseException]
GetAddrInfo = Callable[..., Any]


class Lookup:
    """One lookup in flight; `cancel()` (loop thread) drops its result."""

    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[LookupResult], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Resolver:
    """Resolves names for one loop; `getaddrinfo` is injectable for tests."""

    def __init__(self, loop: Any, getaddrinfo: Optional[GetAddrInfo] = None) -> None:
        self._loop = loop
        self._getaddrinfo = getaddrinfo  # None: socket.getaddrinfo, looked up at each call
        self._cond = threading.Condition()
        self._threads: Set[threading.Thread] = set()
        self._closed = False

    def lookup(
        self,
        host: str,
        port: int,
        family: int,
        flags: int,
        callback: Callable[[LookupResult], None],
    ) -> Lookup:
        """Start resolving; `callback(targets or error)` runs on the loop, never inside this
        call, unless the lookup was cancelled first."""
        lookup = Lookup(callback)
        thread = threading.Thread(
            target=self._run,
            args=(lookup, host, port, family, flags),
            name="ftcore-resolve",
            daemon=True,
        )
        with self._cond:
            if self._closed:
                raise RuntimeError("the resolver is closed")
            self._threads.add(thread)
        thread.start()
        return lookup

    def _run(self, lookup: Lookup, host: str, port: int, family: int, flags: int) -> None:
        result: LookupResult
        try:
            getaddrinfo = self._getaddrinfo or socket.getaddrinfo
            infos = getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, flags)
            result = [(info[0], info[4]) for info in infos]
        except (OSError, UnicodeError) as error:
            result = error
        except Exception as error:  # noqa: BLE001 - an injected resolver's bug: a failed lookup
            result = error
        finally:
            with self._cond:
                self._threads.discard(threading.current_thread())
                self._cond.notify_all()
        if not lookup.cancelled:
            self._loop.call_soon_threadsafe(self._deliver, lookup, result)

    @staticmethod
    def _deliver(lookup: Lookup, result: LookupResult) -> None:
        if not lookup.cancelled:
            lookup.cancelled = True  # delivered: a late cancel() is a no-op
            lookup.callback(result)

    def pending(self) -> int:
        """Lookup threads still running (leak checks)."""
        with self._cond:
            return len(self._threads)

    def close(self, timeout: float) -> List[threading.Thread]:
        """Refuse new lookups and wait up to `timeout` s for running ones; those still alive."""
        with self._cond:
            self._closed = True
            self._cond.wait_for(lambda: not self._threads, timeout)
            return list(self._threads)
