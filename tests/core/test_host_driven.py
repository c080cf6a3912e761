"""Host-driven waiting: with `autostart=False`, `result()` and the streaming iterators run the
loop's passes on the waiting thread (as asyncio's run_until_complete), unless another thread
is running the loop; callbacks then run on the waiting thread, inside the wait.

Passes are counted by wrapping the runtime's `loop.try_run_once` (what the waiting code calls),
so "the wait sleeps in the kernel" is checked without timing the machine.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, Iterator, List

import pytest

import ftcore
from ftcore import FtError
from ftcore.errors import Errno
from ftcore._core import drive
from ftcore.loop import EventLoop
from tests.core.support import InstantTask, ManualTask, Recorder, make_runtime
from tests.support.waits import WAIT

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def host() -> Iterator[ftcore.Runtime]:
    rt = make_runtime(autostart=False)
    yield rt
    rt.close()


def count_passes(rt: ftcore.Runtime) -> List[float]:
    """Record the timeout of every pass a waiting thread took (`loop.try_run_once`)."""
    passes: List[float] = []
    try_run_once = rt.loop.try_run_once

    def counted(timeout: Any = None, seen: Any = None) -> bool:
        ran = try_run_once(timeout, seen)
        if ran:
            passes.append(timeout)
        return ran

    rt.loop.try_run_once = counted  # type: ignore[method-assign]
    return passes


def test_result_runs_the_loop_on_the_waiting_thread(host: ftcore.Runtime) -> None:
    rec = Recorder()
    task = InstantTask(host, rec.options()).launch()
    assert task.result(WAIT)["errMsg"] == "request:ok"
    me = threading.current_thread().name
    assert [(name, thread) for name, _, thread in rec.calls] == [
        ("success", me),
        ("complete", me),
    ]
    assert host.loop.thread_id is None  # no pass is left open


def test_a_real_request_completes_inside_result(host: ftcore.Runtime, http_server: Any) -> None:
    threads: List[str] = []
    task = host.request(
        url=http_server.url + "/delay/50", complete=lambda res: threads.append(_me())
    )
    res = task.result(WAIT)
    assert res["statusCode"] == 200 and threads == [_me()]


def test_the_wait_sleeps_in_the_kernel_and_honours_its_timeout(host: ftcore.Runtime) -> None:
    task = ManualTask(host, {}).launch()
    passes = count_passes(host)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        task.result(0.3)
    waited = time.monotonic() - started
    assert 0.3 <= waited < 0.3 + WAIT
    assert task.started.is_set()  # the first pass started it
    # one pass starts the task, the next sleeps until the deadline (a late wake-up may add one)
    assert 2 <= len(passes) <= 4, passes
    assert all(0 < timeout <= 0.3 for timeout in passes), passes
    assert not task.done()  # the task goes on
    task.succeed({"late": True})
    assert task.result(WAIT)["late"] is True


def test_a_zero_timeout_only_looks(host: ftcore.Runtime) -> None:
    task = InstantTask(host, {}).launch()
    passes = count_passes(host)
    with pytest.raises(TimeoutError):
        task.result(0)
    assert passes == [] and not task.done()


def test_result_inside_a_callback_of_the_driven_loop_keeps_its_rule(
    host: ftcore.Runtime,
) -> None:
    pending = ManualTask(host, {}).launch()
    finished = InstantTask(host, {}).launch()
    finished.result(WAIT)
    seen: List[Any] = []

    def inside(res: Dict[str, Any]) -> None:
        seen.append(finished.result(0)["errMsg"])  # a finished task answers on any thread
        try:
            pending.result(WAIT)  # never recurses into the loop: it would never return
        except RuntimeError as error:
            seen.append(type(error))

    outer = InstantTask(host, {"success": inside}).launch()
    outer.result(WAIT)
    assert seen == ["request:ok", RuntimeError]


def test_a_loop_run_by_another_thread_is_waited_for_not_driven(host: ftcore.Runtime) -> None:
    runner = threading.Thread(target=host.loop.run_forever, name="host-loop")
    runner.start()
    try:
        while host.loop.thread_id is None:  # run_forever has taken the loop
            time.sleep(0.001)
        passes = count_passes(host)
        rec = Recorder()
        task = InstantTask(host, rec.options()).launch()
        assert task.result(WAIT)["errMsg"] == "request:ok"
        assert passes == []  # the waiting thread ran none
        assert {thread for _, _, thread in rec.calls} == {"host-loop"}
    finally:
        host.loop.call_soon_threadsafe(host.loop.stop)
        runner.join(WAIT)
    assert not runner.is_alive()


def test_a_closed_host_runtime_answers_without_a_loop() -> None:
    rt = make_runtime(autostart=False)
    task = ManualTask(rt, {}).launch()
    rt.close()
    with pytest.raises(FtError) as info:
        task.result(WAIT)
    assert info.value.errno == Errno.ABORT


def test_a_streaming_iterator_drives_the_loop(host: ftcore.Runtime, http_server: Any) -> None:
    url = http_server.url + "/chunked/20000?pieces=5&delay_ms=20"
    threads: List[str] = []
    task = host.request(url=url, enableChunked=True, complete=lambda r: threads.append(_me()))
    received = b"".join(task.iter_chunks())
    assert len(received) == 20000
    assert task.done() and threads == [_me()]
    assert task.result(0)["statusCode"] == 200


def test_a_streaming_iterator_inside_a_callback_raises(
    host: ftcore.Runtime, http_server: Any
) -> None:
    task = host.request(url=http_server.url + "/delay/3000", enableChunked=True)
    lines = task.iter_lines()
    caught: List[Any] = []

    def inside(res: Dict[str, Any]) -> None:
        try:
            next(lines)
        except RuntimeError as error:
            caught.append(error)

    probe = InstantTask(host, {"success": inside}).launch()
    probe.result(WAIT)
    assert len(caught) == 1
    lines.close()  # leaving early aborts the request
    with pytest.raises(FtError):
        task.result(WAIT)


def _me() -> str:
    return threading.current_thread().name


def test_a_host_thread_and_a_waiting_thread_never_run_passes_together(
    host: ftcore.Runtime,
) -> None:
    """The host drives the loop with `run_once` on its thread while another thread waits in
    `result()`: both run passes (each takes its turn), never two at once, and the host's
    `run_once` is never held up for long by the waiter's poll."""
    inside: List[int] = []
    overlaps: List[int] = []
    stop = threading.Event()

    def check(res: Dict[str, Any]) -> None:  # a callback of whichever thread runs the pass
        inside.append(1)
        if len(inside) > 1:
            overlaps.append(1)
        time.sleep(0.001)
        inside.pop()

    def host_loop() -> None:
        while not stop.is_set():
            started = time.monotonic()
            host.loop.run_once(0.005)
            assert time.monotonic() - started < WAIT

    driver = threading.Thread(target=host_loop, name="host-driver")
    driver.start()
    try:
        for _ in range(50):
            tasks = [InstantTask(host, {"success": check}).launch() for _ in range(4)]
            waiter = threading.Thread(target=lambda tasks=tasks: [t.result(WAIT) for t in tasks])
            waiter.start()
            waiter.join(WAIT)
            assert not waiter.is_alive()
    finally:
        stop.set()
        driver.join(WAIT)
    assert not driver.is_alive() and overlaps == []


def test_run_once_beside_run_forever_on_another_thread_raises(host: ftcore.Runtime) -> None:
    runner = threading.Thread(target=host.loop.run_forever, name="host-loop")
    runner.start()
    try:
        while host.loop.thread_id is None:
            time.sleep(0.001)
        with pytest.raises(RuntimeError):
            host.loop.run_once(0)
    finally:
        host.loop.call_soon_threadsafe(host.loop.stop)
        runner.join(WAIT)
    assert not runner.is_alive()


def test_a_pass_in_progress_refuses_a_waiter_and_holds_a_host_back() -> None:
    """Deterministic: during a pass on this thread, another thread's `try_run_once` is
    refused at once, and its `run_once` starts only after this pass ended."""
    loop = EventLoop()
    refused: List[bool] = []
    order: List[str] = []
    others: List[threading.Thread] = []

    def inside_the_pass() -> None:
        waiter = threading.Thread(target=lambda: refused.append(loop.try_run_once(0)))
        waiter.start()
        waiter.join(WAIT)
        host_thread = threading.Thread(target=lambda: (loop.run_once(0), order.append("other")))
        others.append(host_thread)
        host_thread.start()
        time.sleep(0.05)  # the other thread is blocked meanwhile, not running a pass
        order.append("this pass ends")

    try:
        loop.call_soon(inside_the_pass)
        loop.run_once(0)
        others[0].join(WAIT)
        assert refused == [False]
        assert order == ["this pass ends", "other"]
    finally:
        loop.close()


def test_a_pass_run_elsewhere_after_the_waiter_looked_does_not_put_it_to_sleep() -> None:
    """Deterministic: another thread's pass makes the wait's condition true just after the
    waiter found it false; the waiter then looks again instead of sleeping in a pass (it
    would sleep until its timeout: no event is left to wake it)."""
    loop = EventLoop(host_driven=True)
    done: List[bool] = []
    looks: List[bool] = []

    def ready() -> bool:
        looks.append(bool(done))
        if len(looks) == 1:  # the stale look: the host's pass completes it right after
            loop.call_soon_threadsafe(done.append, True)
            host_thread = threading.Thread(target=loop.run_once, args=(0,))
            host_thread.start()
            host_thread.join(WAIT)
            return False
        return bool(done)

    try:
        assert drive.wait(loop, ready, lambda seconds: False, 2.0)
        assert loop.passes == 1  # the host's; the waiter ran none
        assert looks == [False, True]
    finally:
        loop.close()
