"""Task lifecycle on a real Runtime: callbacks once, on the loop thread; result(); await; close."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from typing import Any, Dict, Iterator, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ftcore
from ftcore import Errno, FtError, State
from ftcore._core.listeners import BACKLOG_LIMIT, Listeners
from ftcore._core.task import Task

from .support import (
    LOOP_THREAD,
    WAIT,
    InstantTask,
    ManualTask,
    Recorder,
    flush,
    make_runtime,
    no_loop_thread_leak,  # noqa: F401
)


@pytest.fixture
def rt() -> Iterator[ftcore.Runtime]:
    runtime = make_runtime()
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def shared_rt() -> Iterator[ftcore.Runtime]:
    runtime = make_runtime()
    yield runtime
    runtime.close()


def manual(rt: ftcore.Runtime, **options: Any) -> ManualTask:
    task = ManualTask(rt, options).launch()
    assert task.started.wait(WAIT)
    return task


# -- callbacks --------------------------------------------------------------------------------


def test_success_then_complete_once_on_the_loop_thread(rt: ftcore.Runtime) -> None:
    rec = Recorder()
    task = InstantTask(rt, rec.options()).launch()
    res = task.result(WAIT)
    assert rec.completed.wait(WAIT)
    assert rec.names() == ["success", "complete"]
    assert rec.calls[0][1] is rec.calls[1][1] is res
    assert res["errMsg"] == "request:ok"
    assert {c[2] for c in rec.calls} == {LOOP_THREAD}
    assert task.done() and task.state is State.SUCCEEDED


def test_fail_then_complete_once(rt: ftcore.Runtime) -> None:
    rec = Recorder()
    task = manual(rt, **rec.options())
    task.fail(FtError(Errno.TIMEOUT))
    with pytest.raises(FtError) as info:
        task.result(WAIT)
    assert rec.names() == ["fail", "complete"]
    res = rec.calls[0][1]
    assert rec.calls[1][1] is res
    assert res == {"errMsg": "request:fail timeout", "errno": 600011}
    err = info.value
    assert err.errMsg == "request:fail timeout" and err.errno == 600011 and err.res is res
    assert task.state is State.FAILED


def test_callbacks_never_run_inside_the_call(rt: ftcore.Runtime) -> None:
    inside = threading.local()
    inside.flag = False
    seen: List[Any] = []

    def cb(res: Dict[str, Any]) -> None:
        seen.append((getattr(inside, "flag", None), threading.current_thread().name))

    # with an idle loop thread and a stopped one alike, launch() returns before any callback
    inside.flag = True
    task = InstantTask(rt, {"success": cb, "complete": cb}).launch()
    inside.flag = False
    task.result(WAIT)
    assert seen == [(None, LOOP_THREAD), (None, LOOP_THREAD)]

    embedded = make_runtime(autostart=False)
    try:
        seen.clear()
        task = InstantTask(embedded, {"success": cb, "complete": cb}).launch()
        assert seen == [] and not task.done()
    finally:
        embedded.close()


def test_raising_callback_is_logged_and_the_task_completes(
    rt: ftcore.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()

    def boom(res: Dict[str, Any]) -> None:
        raise ValueError("callback bug")

    options = rec.options()
    options["success"] = boom
    with caplog.at_level(logging.ERROR, logger="ftcore"):
        task = InstantTask(rt, options).launch()
        task.result(WAIT)
    assert rec.completed.is_set() and rec.names() == ["complete"]
    assert any(
        r.name == "ftcore" and r.exc_info and isinstance(r.exc_info[1], ValueError)
        for r in caplog.records
    )


def test_non_callable_callbacks_are_ignored(rt: ftcore.Runtime) -> None:
    task = InstantTask(rt, {"success": "not callable", "complete": None}).launch()
    assert task.result(WAIT)["errMsg"] == "request:ok"


def test_result_on_the_loop_thread_raises(rt: ftcore.Runtime) -> None:
    outcome: List[Any] = []

    def cb(res: Dict[str, Any]) -> None:
        try:
            task.result()
        except RuntimeError as error:
            outcome.append(error)

    task = InstantTask(rt, {"complete": cb})
    task.launch().result(WAIT)
    assert len(outcome) == 1 and "loop thread" in str(outcome[0])


def test_result_timeout_leaves_the_task_running(rt: ftcore.Runtime) -> None:
    task = manual(rt)
    with pytest.raises(TimeoutError):
        task.result(0.05)
    assert not task.done() and task.state is State.RUNNING
    task.succeed({"n": 1})
    assert task.result(WAIT) == {"n": 1, "errMsg": "request:ok"}


def test_start_raising_an_unexpected_error_fails_the_task(
    rt: ftcore.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Task):
        api = "request"

        def _start(self, options: Dict[str, Any]) -> None:
            raise KeyError("bug")

    with caplog.at_level(logging.ERROR, logger="ftcore"):
        task = Broken(rt, {}).launch()
        with pytest.raises(FtError) as info:
            task.result(WAIT)
    assert info.value.errMsg.startswith("request:fail internal error")
    assert any(r.name == "ftcore" for r in caplog.records)


def test_abort(rt: ftcore.Runtime) -> None:
    rec = Recorder()
    task = manual(rt, **rec.options())
    task.abort()
    with pytest.raises(FtError) as info:
        task.result(WAIT)
    assert info.value.errMsg == "request:fail abort" and info.value.errno == Errno.ABORT
    assert task.state is State.ABORTED and task.cancelled == 1
    task.abort()  # no-op once ended
    task.succeed()  # ignored: too late
    flush(rt.loop)
    assert rec.names() == ["fail", "complete"] and task.cancelled == 1


def test_abort_after_success_is_a_no_op(rt: ftcore.Runtime) -> None:
    task = InstantTask(rt, {}).launch()
    res = task.result(WAIT)
    task.abort()
    flush(rt.loop)
    assert task.result(0) is res and task.state is State.SUCCEEDED


# -- asyncio ----------------------------------------------------------------------------------


def test_tasks_are_awaitable(rt: ftcore.Runtime) -> None:
    async def main() -> Any:
        ok = await InstantTask(rt, {}).launch()
        failing = manual(rt)
        failing.fail(FtError(Errno.NETWORK, "boom"))
        with pytest.raises(FtError) as info:
            await failing
        done_already = InstantTask(rt, {}).launch()
        done_already.result(WAIT)
        again = await done_already
        return ok, info.value, again

    ok, error, again = asyncio.run(main())
    assert ok["errMsg"] == "request:ok" and again["errMsg"] == "request:ok"
    assert error.errMsg == "request:fail boom"


# -- exactly once, whatever the races ---------------------------------------------------------


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    aborters=st.integers(min_value=0, max_value=4),
    outcome=st.sampled_from(["success", "fail", "never"]),
    hops=st.integers(min_value=0, max_value=6),
    spins=st.lists(st.integers(min_value=0, max_value=300), min_size=4, max_size=4),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_exactly_once_under_abort_races(
    shared_rt: ftcore.Runtime,
    aborters: int,
    outcome: str,
    hops: int,
    spins: List[int],
    seed: int,
) -> None:
    rng = random.Random(seed)
    rec = Recorder()
    go = threading.Event()

    class Racy(Task):
        api = "request"

        def _start(self, options: Dict[str, Any]) -> None:
            self._hop(hops)

        def _hop(self, left: int) -> None:
            if left:
                self._loop.call_soon(self._hop, left - 1)
            elif outcome == "success":
                self._succeed({"value": rng.random()})
            elif outcome == "fail":
                self._fail(FtError(Errno.NETWORK, "lost"))

    def abort_later(n: int) -> None:
        go.wait(WAIT)
        for _ in range(n):
            pass
        task.abort()

    threads = [threading.Thread(target=abort_later, args=(spins[i],)) for i in range(aborters)]
    for t in threads:
        t.start()
    task = Racy(shared_rt, rec.options())
    task.launch()
    go.set()
    for t in threads:
        t.join(WAIT)
    if outcome == "never" and not aborters:
        task.abort()
    assert rec.completed.wait(WAIT)
    flush(shared_rt.loop)  # late aborts have been handled too

    names = rec.names()
    assert names in (["success", "complete"], ["fail", "complete"]), names
    assert rec.calls[0][1] is rec.calls[1][1]
    assert {c[2] for c in rec.calls} == {LOOP_THREAD}
    res = rec.calls[0][1]
    assert task.done()
    if names[0] == "success":
        assert outcome == "success" and task.state is State.SUCCEEDED
        assert task.result(0) is res and res["errMsg"] == "request:ok"
    else:
        with pytest.raises(FtError) as info:
            task.result(0)
        assert info.value.res is res and info.value.errMsg == res["errMsg"]
        if res["errMsg"] == "request:fail abort":
            assert task.state is State.ABORTED
        else:
            assert outcome == "fail" and res["errMsg"] == "request:fail lost"
            assert task.state is State.FAILED
    assert task not in shared_rt.live_tasks()


# -- listeners --------------------------------------------------------------------------------


def test_listeners_run_on_the_loop_thread(rt: ftcore.Runtime) -> None:
    task = manual(rt)
    got: List[Any] = []
    task.onEvent(lambda res: got.append((res, threading.current_thread().name)))
    task.emit("Event", {"n": 1})
    flush(rt.loop)
    assert got == [({"n": 1}, LOOP_THREAD)]


def test_listener_attached_after_the_event_still_gets_it(rt: ftcore.Runtime) -> None:
    task = manual(rt)
    for n in range(3):
        task.emit("Event", {"n": n})
    task.succeed()
    task.result(WAIT)
    got: List[Any] = []
    second: List[Any] = []
    gate = threading.Event()
    rt.loop.call_soon_threadsafe(gate.wait, WAIT)  # hold the loop: the replay waits for both
    task.onEvent(lambda res: got.append((res["n"], threading.current_thread().name)))
    task.onEvent(lambda res: second.append(res["n"]))
    gate.set()
    flush(rt.loop)
    assert got == [(0, LOOP_THREAD), (1, LOOP_THREAD), (2, LOOP_THREAD)]
    assert second == [0, 1, 2]  # attached before the replay ran: gets it too
    late: List[int] = []
    task.onEvent(lambda res: late.append(res["n"]))
    flush(rt.loop)
    assert late == []  # the backlog is replayed once


def test_backlog_reaches_a_new_listener_before_the_task_settles(rt: ftcore.Runtime) -> None:
    order: List[str] = []
    task = manual(rt, success=lambda res: order.append("success"))
    task.emit("Event", {"n": 0})
    flush(rt.loop)
    gate = threading.Event()
    rt.loop.call_soon_threadsafe(gate.wait, WAIT)
    task.succeed()  # queued before the replay that onEvent schedules
    task.onEvent(lambda res: order.append("event %d" % res["n"]))
    gate.set()
    task.result(WAIT)
    flush(rt.loop)
    assert order == ["event 0", "success"]


def test_events_emitted_while_the_replay_is_pending_keep_their_order() -> None:
    queued: List[Any] = []
    listeners = Listeners(lambda fn, *args: queued.append((fn, args)))
    got: List[int] = []
    listeners.emit("X", {"n": 0})
    listeners.add("X", lambda res: got.append(res["n"]))
    listeners.emit("X", {"n": 1})  # the replay has not run yet
    assert got == []
    for fn, args in queued:
        fn(*args)
    listeners.emit("X", {"n": 2})
    assert got == [0, 1, 2]


def test_off_without_argument_removes_every_listener(rt: ftcore.Runtime) -> None:
    task = manual(rt)
    got: List[str] = []

    def one(res: Dict[str, Any]) -> None:
        got.append("one")

    def two(res: Dict[str, Any]) -> None:
        got.append("two")

    task.onEvent(one)
    task.onEvent(two)
    task.emit("Event", {})
    flush(rt.loop)
    assert got == ["one", "two"]
    task.offEvent(one)
    task.emit("Event", {})
    flush(rt.loop)
    assert got == ["one", "two", "two"]
    task.onEvent(one)
    task.offEvent()
    task.emit("Event", {})
    flush(rt.loop)
    assert got == ["one", "two", "two"]
    task.offEvent(one)  # removing what is not there is fine


def test_on_requires_a_callable(rt: ftcore.Runtime) -> None:
    task = manual(rt)
    with pytest.raises(TypeError):
        task.onEvent("nope")


def test_raising_listener_is_logged_and_others_still_run(
    rt: ftcore.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    task = manual(rt)
    got: List[int] = []

    def boom(res: Dict[str, Any]) -> None:
        raise RuntimeError("listener bug")

    task.onEvent(boom)
    task.onEvent(lambda res: got.append(res["n"]))
    with caplog.at_level(logging.ERROR, logger="ftcore"):
        task.emit("Event", {"n": 1})
        flush(rt.loop)
    assert got == [1]
    assert any(r.name == "ftcore" and "listener" in r.getMessage() for r in caplog.records)


def test_backlog_is_bounded(rt: ftcore.Runtime, caplog: pytest.LogCaptureFixture) -> None:
    task = manual(rt)
    with caplog.at_level(logging.WARNING, logger="ftcore"):
        for n in range(BACKLOG_LIMIT + 10):
            task.emit("Event", {"n": n})
        flush(rt.loop)
    assert sum("dropped" in r.getMessage() for r in caplog.records) == 1  # warned once
    got: List[int] = []
    task.onEvent(lambda res: got.append(res["n"]))
    flush(rt.loop)
    assert got == list(range(BACKLOG_LIMIT))


# -- close ------------------------------------------------------------------------------------


def test_close_aborts_unfinished_tasks_and_waits_for_complete() -> None:
    rt = make_runtime()
    recs = [Recorder() for _ in range(3)]
    tasks = [manual(rt, **rec.options()) for rec in recs]
    finished = InstantTask(rt, {}).launch()
    finished_res = finished.result(WAIT)
    rt.close()
    for rec, task in zip(recs, tasks):
        assert rec.completed.is_set()  # close() waited: no wait here
        assert rec.names() == ["fail", "complete"]
        assert rec.calls[0][1] == {"errMsg": "request:fail abort", "errno": 600003}
        assert {c[2] for c in rec.calls} == {LOOP_THREAD}
        assert task.done() and task.state is State.ABORTED and task.cancelled == 1
    assert finished.result(0) is finished_res
    assert rt.closed and rt.live_tasks() == []
    assert rt.loop.closed
    rt.close()  # idempotent
    with pytest.raises(RuntimeError):
        InstantTask(rt, {}).launch()


def test_close_aborts_tasks_not_yet_started() -> None:
    # embedded: close() runs on the host thread while `_begin` still waits in the queue
    rt = make_runtime(autostart=False)
    rec = Recorder()
    task = ManualTask(rt, rec.options()).launch()
    rt.close()
    assert rec.names() == ["fail", "complete"]
    assert rec.calls[0][1]["errMsg"] == "request:fail abort"
    assert not task.started.is_set() and task.state is State.ABORTED


def test_close_while_a_task_start_is_queued() -> None:
    rt = make_runtime()
    gate = threading.Event()
    rt.loop.call_soon_threadsafe(gate.wait, WAIT)
    rec = Recorder()
    task = ManualTask(rt, rec.options()).launch()
    closer = threading.Thread(target=rt.close)
    closer.start()
    gate.set()
    closer.join(WAIT)
    assert not closer.is_alive()
    assert rec.names() == ["fail", "complete"]
    assert rec.calls[0][1]["errMsg"] == "request:fail abort"
    assert task.state is State.ABORTED


def test_context_manager_closes() -> None:
    with make_runtime() as rt:
        task = manual(rt)
    assert rt.closed and task.done()


def test_autostart_false_is_driven_by_the_host() -> None:
    rt = make_runtime(autostart=False)
    try:
        assert rt._thread is None
        rec = Recorder()
        task = InstantTask(rt, rec.options()).launch()
        assert rec.calls == []
        rt.loop.run_once(0)  # _begin: start
        assert rec.calls == []
        rt.loop.run_once(0)  # the success scheduled by _start
        assert rec.names() == ["success", "complete"]
        me = threading.current_thread().name
        assert {c[2] for c in rec.calls} == {me}
        assert task.result(0)["errMsg"] == "request:ok"

        pending_rec = Recorder()
        pending = ManualTask(rt, pending_rec.options()).launch()
        rt.loop.run_once(0)
        assert pending.started.is_set() and not pending.done()
        # result() from the host thread while it drives the loop: only between passes
        with pytest.raises(TimeoutError):
            pending.result(0)
    finally:
        rt.close()
    assert pending_rec.names() == ["fail", "complete"]
    assert pending_rec.calls[0][1]["errMsg"] == "request:fail abort"
    assert rt.loop.closed


def test_result_inside_a_run_once_callback_raises() -> None:
    rt = make_runtime(autostart=False)
    try:
        task = ManualTask(rt, {}).launch()
        caught: List[Any] = []

        def check() -> None:
            try:
                task.result(0)
            except RuntimeError as error:
                caught.append(error)

        rt.loop.call_soon(check)
        rt.loop.run_once(0)
        assert len(caught) == 1
    finally:
        rt.close()


def test_close_on_the_loop_thread_raises_instead_of_deadlocking() -> None:
    rt = make_runtime()
    outcome: List[Any] = []

    def close_inside() -> None:
        try:
            rt.close()
        except RuntimeError as error:
            outcome.append(error)

    task = InstantTask(rt, {"complete": lambda res: close_inside()}).launch()
    task.result(WAIT)
    flush(rt.loop)
    assert len(outcome) == 1 and not rt.closed
    rt.close()
    assert rt.closed


def test_an_await_abandoned_by_a_closed_asyncio_loop_does_not_break_the_task(
    rt: ftcore.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    task = manual(rt)

    async def give_up() -> None:
        await asyncio.wait_for(task, 0.01)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(give_up())  # the asyncio loop is closed now; the task goes on
    escaped: List[BaseException] = []
    later = threading.Event()

    def settle() -> None:
        try:
            task._succeed({})
        except BaseException as error:  # noqa: B036 - anything escaping breaks its caller
            escaped.append(error)
        later.set()

    with caplog.at_level(logging.ERROR, logger="ftcore"):
        rt.loop.call_soon_threadsafe(settle)
        assert later.wait(WAIT)
    assert escaped == []
    assert task.result(0)["errMsg"] == "request:ok"
