"""The runtime behind `ftcore.ft`, and the stand-in a test puts in its place.

Mini-program code binds the default runtime when it is imported (`from ftcore import ft`), so
rebinding the name `ftcore.ft` would never reach it: the object itself routes instead. While a
stand-in is installed (`stand_in`; the `ft_mock` fixture does it), every `DefaultRuntime` hands
its API calls and `env` to the stand-in, from any thread. Its services for tasks and plugins
(`transport`, `check_url`, `live_tasks`...) and `close()` stay its own, so a task started on the
real default before a stand-in came finishes there.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional

from .runtime import Runtime

__all__ = ["DefaultRuntime", "ROUTED", "stand_in", "current_stand_in"]

# The `ft.*` entry points of API.md: what a stand-in serves.
ROUTED = (
    "request",
    "downloadFile",
    "uploadFile",
    "connectSocket",
    "sendSocketMessage",
    "closeSocket",
    "onSocketOpen",
    "onSocketMessage",
    "onSocketError",
    "onSocketClose",
    "createUDPSocket",
    "createTCPSocket",
    "connectEventSource",
    "addInterceptor",
    "removeInterceptor",
)

_lock = threading.Lock()  # guards _installed; never held while a routed call runs
_installed: List[Runtime] = []  # stand-ins, innermost last
_current: Optional[Runtime] = None  # _installed[-1]: read without the lock on every call


class DefaultRuntime(Runtime):
    """A `Runtime` whose API calls go to the installed stand-in, if there is one."""

    @property
    def env(self) -> Dict[str, str]:
        """`USER_DATA_PATH`: the stand-in's while one is installed (paths built from it must
        resolve in the sandbox of the runtime that serves the call)."""
        standin = _current
        return self._own_env if standin is None else standin.env

    @env.setter
    def env(self, value: Dict[str, str]) -> None:
        self._own_env = value


def _routed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def route(self: Runtime, *args: Any, **kwargs: Any) -> Any:
        standin = _current
        if standin is None:
            return method(self, *args, **kwargs)
        return getattr(standin, name)(*args, **kwargs)

    return route


for _name in ROUTED:
    setattr(DefaultRuntime, _name, _routed(_name, getattr(Runtime, _name)))


@contextlib.contextmanager
def stand_in(runtime: Runtime) -> Iterator[Runtime]:
    """Route every default runtime to `runtime` inside the block, and back when it ends, even
    by an exception. Blocks nest: the innermost stand-in serves."""
    global _current
    with _lock:
        _installed.append(runtime)
        _current = runtime
    try:
        yield runtime
    finally:
        with _lock:
            _installed.remove(runtime)
            _current = _installed[-1] if _installed else None


def current_stand_in() -> Optional[Runtime]:
    """The runtime the default routes to now (None: the default serves itself)."""
    return _current
