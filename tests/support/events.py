"""An ordered queue of events that listeners push and the test consumes, one at a time.

Not `tests.support.recorder.Recorder` (which keeps callbacks for inspection after the fact):
here the test walks the events in order with `expect`/`next`, each wait bounded, and checks
"nothing else happened" with `pending` after a loop barrier.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from tests.support.waits import WAIT

Event = Tuple[str, Any]


class EventQueue:
    """Events ``(name, value)`` in the order they were pushed, with the thread and time of each.

    Events named in `skip` (data, watermarks) are passed over by `expect` unless it asks for
    them; `next` returns every event. `received` holds the bytes of every ``Message`` event
    heard through `listen` (or that a handler adds), for `wait_bytes`.
    """

    def __init__(self, skip: Iterable[str] = ()) -> None:
        self.skip = frozenset(skip)
        self.events: "queue.Queue[Event]" = queue.Queue()
        self.log: List[Event] = []
        self.times: List[float] = []
        self.threads: Set[str] = set()
        self.received = bytearray()
        self.sock: Any = None

    # -- pushing --------------------------------------------------------------------------------

    def put(self, name: str, value: Any = None, logged: bool = True) -> None:
        """Queue an event; `logged=False` keeps it out of `log` (bulk data)."""
        self.times.append(time.monotonic())
        self.threads.add(threading.current_thread().name)
        if logged:
            self.log.append((name, value))
        self.events.put((name, value))

    def listen(self, sock: Any, names: Iterable[str]) -> "EventQueue":
        """Push every `sock.on<Name>` event of `names` (an ft socket's listeners)."""
        self.sock = sock
        for name in names:
            getattr(sock, "on" + name)(self._listener(name))
        return self

    def _listener(self, name: str) -> Callable[[Dict[str, Any]], None]:
        def record(res: Dict[str, Any]) -> None:
            if name == "Message":
                self.received += res["message"]
            self.put(name, res)

        return record

    # -- consuming ------------------------------------------------------------------------------

    def next(self, timeout: float = WAIT) -> Event:
        """The next event, whatever it is."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no event within %ss; so far: %r" % (timeout, self.log)) from None

    def expect(self, name: Optional[str] = None, timeout: float = WAIT) -> Any:
        """The value of the next event not in `skip` (unless `name` is), checked against `name`."""
        deadline = time.monotonic() + timeout
        while True:
            got, value = self.next(max(0.0, deadline - time.monotonic()))
            if got in self.skip and got != name:
                continue
            assert name is None or got == name, "expected %s, got %s %r (log %r)" % (
                name,
                got,
                value,
                self.log,
            )
            return value

    def error(self, code: Optional[int] = None, msg: Optional[str] = None) -> Dict[str, Any]:
        """The next event, an ft ``Error`` with exactly errMsg and errCode (checked if given)."""
        res: Dict[str, Any] = self.expect("Error")
        assert set(res) == {"errMsg", "errCode"}, res
        if code is not None:
            assert res["errCode"] == code, res
        if msg is not None:
            assert res["errMsg"] == msg, res
        return res

    def wait_bytes(self, size: int, timeout: float = WAIT) -> bytes:
        """`received` once it holds `size` bytes (consuming events meanwhile)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < size:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "only %d of %d bytes arrived" % (len(self.received), size)
            try:
                self.events.get(timeout=remaining)
            except queue.Empty:
                pass
        return bytes(self.received)

    def pending(self) -> List[Event]:
        """Every queued event not consumed yet (call after a loop barrier)."""
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def names(self) -> List[str]:
        return [name for name, _ in self.log]


def close_on_message(
    sock: Any, count: int, also: Iterable[str] = ()
) -> Tuple[List[str], threading.Event]:
    """Listeners that close `sock` from its `count`-th onMessage: the names of what was heard
    (Message, Close, and the events of `also`) in order, and an Event set by onClose. For
    "nothing is reported after onClose" while a peer floods the socket."""
    log: List[str] = []
    closed = threading.Event()

    def on_message(res: Dict[str, Any]) -> None:
        log.append("Message")
        if log.count("Message") == count:
            sock.close()

    def on_close(res: Dict[str, Any]) -> None:
        log.append("Close")
        closed.set()

    sock.onMessage(on_message)
    for name in also:
        getattr(sock, "on" + name)(lambda res, name=name: log.append(name))
    sock.onClose(on_close)
    return log, closed
