"""The base of every task: one lifecycle, callbacks exactly once, `result()` and `await`.

A task is created on the caller's thread and lives on the loop thread: `launch()` hands
`_begin` to the loop, and every state change, callback and listener call happens there.
Subclasses implement `_start(options)` (and `_cancel()` to drop their transport on abort),
then call `_succeed(res)` or `_fail(error)`.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, List, Optional

from .listeners import Listeners
from .state import ENDED, State, check_transition
from ..errors import Errno, FtError, ok_msg

if TYPE_CHECKING:
    from .._api.runtime import Runtime

__all__ = ["Task"]

logger = logging.getLogger("ftcore")

_task_ids = itertools.count(1)


class Task:
    """What every `ft.*` call returns; safe to use from any thread."""

    api = ""

    def __init__(self, runtime: "Runtime", options: Dict[str, Any]) -> None:
        self._runtime = runtime
        self._loop = runtime.loop
        self.id = next(_task_ids)
        self._options = options
        self._state = State.CREATED
        self._settled = False
        self._result: Optional[Dict[str, Any]] = None
        self._error: Optional[FtError] = None
        self._finished = False  # success/fail and complete have run (set under runtime._lock)
        self._latch = _Latch()
        self._done_callbacks: List[Callable[[], Any]] = []
        self._listeners = Listeners(self._loop.call_soon_threadsafe)
        self._refusal: Optional[FtError] = None  # set by the runtime: fail this at the start

    def __repr__(self) -> str:
        return "<%s #%d %s>" % (type(self).__name__, self.id, self._state.name)

    # -- caller side --------------------------------------------------------------------------

    def launch(self) -> "Task":
        """Hand the start to the loop and return at once (callbacks never run on this stack)."""
        self._runtime._track(self)
        self._loop.call_soon_threadsafe(self._begin)
        return self

    def abort(self) -> None:
        """End the task as `<api>:fail abort`; a no-op once it has ended."""
        if self._loop.in_loop_thread():
            self._abort_now()
        else:
            self._loop.call_soon_threadsafe(self._abort_now)

    def done(self) -> bool:
        """True once success/fail and complete have run."""
        return self._finished

    def result(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Block until the task ends; return the success dict or raise its `FtError`."""
        if self._loop.in_loop_thread():
            raise RuntimeError("result() called on the loop thread would deadlock; use callbacks")
        if not self._finished and not self._latch.wait(timeout):
            raise TimeoutError("%r still running after %ss" % (self, timeout))
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def __await__(self) -> Generator[Any, None, Dict[str, Any]]:
        import asyncio

        aloop = asyncio.get_running_loop()
        future = aloop.create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        self._on_done(lambda: aloop.call_soon_threadsafe(wake))
        yield from future.__await__()
        return self.result(0)

    # -- loop side ----------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    def _begin(self) -> None:
        if self._state in ENDED:
            return
        try:
            if self._refusal is not None:
                raise self._refusal
            options = self._runtime._prepare(self.api, self._options)
            self._set_state(State.RUNNING)
            self._start(options)
        except FtError as error:
            self._fail(error)
        except Exception as error:  # a bug in a plugin or in ftcore: fail, never crash the loop
            logger.exception("ftcore: %s failed to start", self)
            self._fail(FtError(Errno.NETWORK, "internal error: %s" % error))

    def _start(self, options: Dict[str, Any]) -> None:
        raise NotImplementedError

    def _cancel(self) -> None:
        """Drop whatever the task holds (transport handle, file, slot); loop thread."""

    def _shutdown(self) -> None:
        """The runtime is closing: end now, on the loop thread (sockets also fire onClose)."""
        self._abort_now()

    def _abort_now(self) -> None:
        if self._state in ENDED:
            return
        self._cancel()
        self._fail(FtError(Errno.ABORT), State.ABORTED)

    def _set_state(self, new: State) -> None:
        self._state = check_transition(self._state, new)

    def _succeed(self, res: Dict[str, Any]) -> None:
        res.setdefault("errMsg", ok_msg(self.api))
        self._settle(res, None, State.SUCCEEDED)

    def _fail(self, error: FtError, end: State = State.FAILED) -> None:
        error = error.for_api(self.api)
        self._settle(error.to_res(), error, end)

    def _settle(self, res: Dict[str, Any], error: Optional[FtError], end: Optional[State]) -> None:
        """Run success/fail then complete, once; `end` None keeps the lifecycle going (sockets)."""
        if end is not None:
            self._end(end)
        if self._settled:
            return
        self._settled = True
        self._listeners.flush()
        res = self._runtime._rewrite_result(self.api, res, error is None)
        if error is not None:
            error.res = res
            try:
                error.errno = int(res.get("errno", error.errno))
            except (TypeError, ValueError):
                pass  # a result hook's odd errno: keep ours rather than never settle
            error.reason = _reason_of(res.get("errMsg"), self.api, error.reason)
        self._result, self._error = res, error
        options = self._options
        self._call_option(options.get("fail" if error else "success"), res)
        self._call_option(options.get("complete"), res)
        self._runtime._observe(self, "settled", res)
        with self._runtime._lock:
            self._finished = True
            callbacks, self._done_callbacks = self._done_callbacks, []
        self._latch.open()
        for callback in callbacks:
            try:
                callback()
            except Exception:  # e.g. an awaiting asyncio loop that has been closed since
                logger.exception("ftcore: a done callback of %s raised", self)

    def _end(self, end: State) -> None:
        """The lifecycle is over: the runtime forgets the task."""
        if self._state in ENDED:
            return
        self._set_state(end)
        self._runtime._untrack(self)

    def _on_done(self, callback: Callable[[], Any]) -> None:
        with self._runtime._lock:
            if not self._finished:
                self._done_callbacks.append(callback)
                return
        callback()

    @staticmethod
    def _call_option(callback: Any, res: Dict[str, Any]) -> None:
        if not callable(callback):
            return
        try:
            callback(res)
        except Exception:
            logger.exception("ftcore: callback %r raised", callback)


class _Latch:
    """A one-shot gate for `result()`: shut when made, opened once, then open for good.

    A lock held from birth costs a fraction of a `threading.Event` (a Condition that makes
    a lock per wait and notifies under another): the loop pays one `release` per task.
    Each waiter that gets through releases it again, so every other waiter passes too.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def open(self) -> None:
        self._lock.release()

    def wait(self, timeout: Optional[float]) -> bool:
        """True once open; False if `timeout` seconds passed first (None: no limit)."""
        if timeout is None:
            passed = self._lock.acquire()
        elif timeout > 0:
            passed = self._lock.acquire(True, timeout)
        else:
            passed = self._lock.acquire(False)
        if passed:
            self._lock.release()
        return passed


def _reason_of(err_msg: Any, api: str, default: str) -> str:
    prefix = api + ":fail "
    if isinstance(err_msg, str) and err_msg.startswith(prefix):
        return err_msg[len(prefix):]
    return default
