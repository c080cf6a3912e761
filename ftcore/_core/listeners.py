"""Event listener registries behind every `onX(cb)` / `offX(cb)` pair.

In a mini-program, listeners attached right after a call returns can never miss an event,
because JS runs them on one thread. Here the loop runs on its own thread and may emit before
the caller has attached anything, so an event with no listener yet is kept (a bounded backlog)
and replayed, in order, to the first listener attached for it.

Re-entrancy (API.md §11): a listener may call anything, on any task (`abort`, `off…`, a new
`ft.*` call). The lock guards only the registry and the backlog; no listener ever runs under
it. A dispatch calls the listeners attached when it began (the tuple of that moment): one
removed meanwhile still gets the event being dispatched, not the next; one added meanwhile
gets the next. When a listener ends its task (abort, close), the task's end (fail and
complete; a SocketTask's onClose) runs at once, inside that call, and `interrupt` stops the
dispatch in progress: no listener hears the task's event after its end. (A listener attached
after the end still hears the events kept for it, replayed.)
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Tuple
from .._log import logger

__all__ = ["Listeners", "event_methods"]


Listener = Callable[[Dict[str, Any]], Any]

BACKLOG_LIMIT = 64


class Listeners:
    """Listeners per event name; `emit` runs them on the loop thread.

    Each name maps to a tuple replaced on every change, so `emit` iterates without copying.
    """

    def __init__(self, call_soon_threadsafe: Callable[..., Any]) -> None:
        self._call_soon_threadsafe = call_soon_threadsafe
        self._lock = threading.Lock()
        self._by_name: Dict[str, Tuple[Listener, ...]] = {}
        self._backlog: Dict[str, List[Dict[str, Any]]] = {}
        self._dispatch = 0  # changed by `interrupt`: a dispatch that sees it change stops

    def add(self, name: str, listener: Listener) -> None:
        if not callable(listener):
            raise TypeError("on%s expects a callable, got %r" % (name, listener))
        with self._lock:
            current = self._by_name.get(name)
            self._by_name[name] = (current or ()) + (listener,)
            replay = current is None and bool(self._backlog.get(name))
        if replay:
            self._call_soon_threadsafe(self._replay, name)

    def remove(self, name: str, listener: Any = None) -> None:
        """Remove one listener, or every listener of `name` when none is given."""
        with self._lock:
            current = self._by_name.get(name, ())
            if listener is None:
                self._by_name[name] = ()
            elif listener in current:
                kept = list(current)
                kept.remove(listener)
                self._by_name[name] = tuple(kept)
            else:
                self._by_name.setdefault(name, ())

    def has(self, name: str) -> bool:
        return bool(self._by_name.get(name))

    def ready(self, name: str) -> Tuple[Listener, ...]:
        """The listeners `emit(name)` would call at once, for a hot path that calls them itself:
        () while none is attached or events of `name` still wait to be replayed."""
        listeners = self._by_name.get(name)
        if not listeners or name in self._backlog:
            return ()
        return listeners

    def emit(self, name: str, res: Dict[str, Any]) -> None:
        """Call every listener of `name` with `res`; loop thread only."""
        listeners = self._by_name.get(name)
        if listeners is None or name in self._backlog:  # slow only while this name waits
            listeners = self._keep_for_later(name, res)
        dispatch = self._dispatch
        for listener in listeners:
            try:
                listener(res)
            except Exception:
                logger.exception("ftcore: listener %r raised", listener)
            if self._dispatch != dispatch:  # that listener ended the task
                return

    def interrupt(self) -> None:
        """The task ended (loop thread): the listeners left in a dispatch under way are not
        called, so nothing hears the task after its end."""
        self._dispatch += 1

    def _keep_for_later(self, name: str, res: Dict[str, Any]) -> Tuple[Listener, ...]:
        """The slow path: nobody listens yet, or a replay is pending; keep `res` in order."""
        with self._lock:
            listeners = self._by_name.get(name)
            backlog = self._backlog.get(name)
            if listeners is not None and not backlog:
                return listeners
            if backlog is None:
                backlog = self._backlog[name] = []
            if len(backlog) < BACKLOG_LIMIT:
                backlog.append(res)
            elif len(backlog) == BACKLOG_LIMIT:
                backlog.append(res)  # the marker past the limit: warn once, keep nothing more
                logger.warning("ftcore: no on%s listener; later events are dropped", name)
            return ()

    def flush(self) -> None:
        """Replay now every backlog whose listener has arrived (before a task settles, so
        that a listener attached right after the call still sees its events first)."""
        if not self._by_name:  # none attached yet (read unlocked: a racing add replays itself)
            return
        with self._lock:
            names = [name for name in self._backlog if self._by_name.get(name)]
        for name in names:
            self._replay(name)

    def _replay(self, name: str) -> None:
        with self._lock:
            backlog = self._backlog.pop(name, [])[:BACKLOG_LIMIT]
            listeners = self._by_name.get(name, ())
        for res in backlog:
            for listener in listeners:
                try:
                    listener(res)
                except Exception:
                    logger.exception("ftcore: listener %r raised", listener)

    def drop_backlog(self) -> None:
        """Forget events kept for late listeners (their source is gone)."""
        with self._lock:
            self._backlog.clear()

    def clear(self) -> None:
        with self._lock:
            self._by_name.clear()
            self._backlog.clear()


def event_methods(name: str) -> Tuple[Callable[..., None], Callable[..., None]]:
    """The `onName` / `offName` method pair of a task class, backed by its `_listeners`."""

    def on(self: Any, callback: Listener) -> None:
        self._listeners.add(name, callback)

    def off(self: Any, callback: Any = None) -> None:
        self._listeners.remove(name, callback)

    on.__name__, off.__name__ = "on" + name, "off" + name
    on.__doc__ = "Call `callback(res)` on every %s event (on the loop thread)." % name
    off.__doc__ = "Stop calling `callback` on %s events; no argument removes every one." % name
    return on, off
