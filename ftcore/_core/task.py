"""The base of every task: one lifecycle, callbacks exactly once, `result()` and `await`.

A task is created on the caller's thread and lives on the loop thread: `launch()` hands
`_begin` to the loop, and every state change, callback and listener call happens there.
Subclasses implement `_start(options)` (and `_cancel()` to drop their transport on abort),
then call `_succeed(res)` or `_fail(error)`.

The state changes only through the class's table (`_table`, `ftcore._core.state`): `_fire`
moves it, `_settle` moves it and runs success/fail then complete. Nothing else is stored beside
it: "settled" is `state not in UNSETTLED`, "ended" is `state in ENDED`; other threads learn the
outcome through the task's `_Latch` (or, on a host-driven runtime that nobody is running, by
running the loop while they wait: `ftcore._core.drive`).
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, List, Optional

from . import drive
from .listeners import Listeners
from .state import ENDED, TASK, UNSETTLED, Event, State, Table
from ..errors import Errno, FtError, ok_msg
from .._log import logger

if TYPE_CHECKING:
    from .._api.runtime import Runtime

__all__ = ["Task", "new_id"]


_task_ids = itertools.count(1)


def new_id() -> int:
    """A new task or socket id, unique in the process (`socketTaskId`, `live_tasks` keys)."""
    return next(_task_ids)


class Task:
    """What every `ft.*` call returns; safe to use from any thread."""

    api = ""
    _table: Table[State, Event] = TASK

    def __init__(self, runtime: "Runtime", options: Dict[str, Any]) -> None:
        self._runtime = runtime
        self._loop = runtime.loop
        self.id = next(_task_ids)
        self._options = options
        self._state = State.CREATED
        self._result: Optional[Dict[str, Any]] = None
        self._error: Optional[FtError] = None
        self._latch = _Latch(runtime._lock)
        self._listeners = Listeners(self._loop.call_soon_threadsafe)

    def __repr__(self) -> str:
        return "<%s #%d %s>" % (type(self).__name__, self.id, self._state.name)

    # -- caller side --------------------------------------------------------------------------

    def launch(self, refusal: Optional[FtError] = None) -> "Task":
        """Hand the start to the loop and return at once (callbacks never run on this stack).

        `refusal`: the task fails with it when the loop starts it (the runtime's verdict on
        options that are not a dict)."""
        self._runtime._track(self)
        self._loop.call_soon_threadsafe(self._begin, refusal)
        return self

    def abort(self) -> None:
        """End the task as `<api>:fail abort`; a no-op once it has ended."""
        if self._loop.in_loop_thread():
            self._abort_now()
        else:
            self._loop.call_soon_threadsafe(self._abort_now)

    def done(self) -> bool:
        """True once success/fail and complete have run."""
        return self._latch.is_open()

    def result(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Block until the task ends; return the success dict or raise its `FtError`.

        A finished task answers on any thread; on the loop thread an unfinished one raises
        `RuntimeError` (waiting there would deadlock: the loop is what would finish it). On a
        host-driven runtime that no thread is running, the wait runs the loop's passes on
        this thread (`ftcore._core.drive`)."""
        latch = self._latch
        if not latch.is_open():
            if self._loop.in_loop_thread():
                raise RuntimeError(
                    "result() of an unfinished task on the loop thread would deadlock; "
                    "use callbacks"
                )
            if not drive.wait(self._loop, latch.is_open, latch.wait, timeout):
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

    def _on_done(self, callback: Callable[[], Any]) -> None:
        """Call `callback()` once success/fail and complete have run (now if they have)."""
        self._latch.on_open(callback)

    def _begin(self, refusal: Optional[FtError]) -> None:
        if self._state in ENDED:
            return
        try:
            if refusal is not None:
                raise refusal
            options = self._runtime._prepare(self.api, self._options)
            if self._state in ENDED:  # an interceptor's invoke aborted it: settled already
                return
            self._fire(Event.START)
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
        self._fail(FtError(Errno.ABORT), Event.ABORT)

    def _fire(self, event: Event) -> State:
        """Move to the state the table gives for `event`: the one way the state changes. An
        end state stops the listener dispatch under way: a listener that ended the task (abort)
        is the last to hear that event, and nothing hears the task after its end."""
        self._state = state = self._table.next(self._state, event)
        if state in ENDED:
            self._listeners.interrupt()
        return state

    def _succeed(self, res: Dict[str, Any]) -> None:
        res.setdefault("errMsg", ok_msg(self.api))
        self._settle(res, None, Event.SUCCEED)

    def _fail(self, error: FtError, event: Event = Event.FAIL) -> None:
        error = error.for_api(self.api)
        self._settle(error.to_res(), error, event)

    def _settle(self, res: Dict[str, Any], error: Optional[FtError], event: Event) -> None:
        """Fire `event`, then run success/fail and complete. Only an event that leaves the
        UNSETTLED states settles: an outcome arriving after that (a timeout racing the
        response, a late transport error) is dropped."""
        if self._state not in UNSETTLED:
            return
        if self._fire(event) in ENDED:
            self._forget()
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
        self._latch.open()

    def _forget(self) -> None:
        """The task ended: the runtime forgets it."""
        self._runtime._untrack(self)

    @staticmethod
    def _call_option(callback: Any, res: Dict[str, Any]) -> None:
        if not callable(callback):
            return
        try:
            callback(res)
        except Exception:
            logger.exception("ftcore: callback %r raised", callback)


class _Latch:
    """How other threads learn that a task settled: shut when made, opened once (after
    success/fail and complete ran), then open for good. `result()` waits on it; `await`
    registers a wake-up with `on_open`.

    The gate is a lock held from birth, a fraction of a `threading.Event` (a Condition that
    makes a lock per wait and notifies under another): the loop pays one `release` per task.
    Each waiter that gets through releases it again, so every other waiter passes too.
    `lock` (shared, the runtime's) guards the wake-ups only, never held while one runs.
    """

    __slots__ = ("_gate", "_lock", "_wakeups")

    def __init__(self, lock: Any) -> None:
        self._gate = threading.Lock()
        self._gate.acquire()
        self._lock = lock
        self._wakeups: Optional[List[Callable[[], Any]]] = []  # None once open

    def is_open(self) -> bool:
        return self._wakeups is None

    def open(self) -> None:
        """Loop thread, once: let waiters through, then run the wake-ups."""
        with self._lock:
            wakeups, self._wakeups = self._wakeups, None
        self._gate.release()
        for wakeup in wakeups or ():
            try:
                wakeup()
            except Exception:  # e.g. an awaiting asyncio loop that has been closed since
                logger.exception("ftcore: a done callback raised")

    def on_open(self, wakeup: Callable[[], Any]) -> None:
        """Call `wakeup()` once open: later on the loop thread, or now if open already."""
        with self._lock:
            if self._wakeups is not None:
                self._wakeups.append(wakeup)
                return
        wakeup()

    def wait(self, timeout: Optional[float]) -> bool:
        """True once open; False if `timeout` seconds passed first (None: no limit)."""
        if self._wakeups is None:
            return True
        if timeout is None:
            passed = self._gate.acquire()
        elif timeout > 0:
            passed = self._gate.acquire(True, timeout)
        else:
            passed = self._gate.acquire(False)
        if passed:
            self._gate.release()
        return passed


def _reason_of(err_msg: Any, api: str, default: str) -> str:
    prefix = api + ":fail "
    if isinstance(err_msg, str) and err_msg.startswith(prefix):
        return err_msg[len(prefix):]
    return default
