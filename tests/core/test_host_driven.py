"""Host-driven waiting: with `autostart=False`, `result()` and the streaming iterators run the
loop's passes on the waiting thread (as asyncio's run_until_complete), unless another thread
is running the loop; callbacks then run on the waiting thread, inside the wait.

Passes are counted by wrapping the runtime's `loop.run_once` (what the waiting code calls),
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
from tests.core.support import InstantTask, ManualTask, Recorder, make_runtime
from tests.support.waits import WAIT

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def host() -> Iterator[ftcore.Runtime]:
    rt = make_runtime(autostart=False)
    yield rt
    rt.close()


def count_passes(rt: ftcore.Runtime) -> List[float]:
    """Record the timeout of every `run_once` the runtime's loop is asked for."""
    passes: List[float] = []
    run_once = rt.loop.run_once

    def counted(timeout: Any = None) -> None:
        passes.append(timeout)
        run_once(timeout)

    rt.loop.run_once = counted  # type: ignore[method-assign]
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
