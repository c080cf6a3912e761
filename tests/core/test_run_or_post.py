"""`EventLoop.run_or_post`: a call the loop thread would make runs now where this thread may
do the loop's work (the loop thread; a host-driven loop between passes, nothing queued), and
is posted otherwise, so one thread's calls keep their order either way."""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator, List, Tuple

import pytest

from ftcore.loop import EventLoop
from tests.support.waits import WAIT, wait_until

pytestmark = pytest.mark.timeout(60)

Seen = List[Tuple[str, bool]]  # (thread name, in_loop_thread() during the call)


@pytest.fixture
def host_loop() -> Iterator[EventLoop]:
    loop = EventLoop(host_driven=True)
    yield loop
    loop.close()


def recorder(loop: EventLoop, seen: Seen) -> Callable[[], None]:
    return lambda: seen.append((threading.current_thread().name, loop.in_loop_thread()))


def test_a_host_driven_loop_between_passes_runs_it_on_the_calling_thread(
    host_loop: EventLoop,
) -> None:
    seen: Seen = []
    host_loop.run_or_post(recorder(host_loop, seen))
    assert seen == [(threading.current_thread().name, True)]  # the loop thread for the call
    assert host_loop.thread_id is None and not host_loop.has_ready()
    assert host_loop.try_run_once(0)  # the pass lock is free again


def test_work_queued_before_keeps_its_place(host_loop: EventLoop) -> None:
    order: List[int] = []
    host_loop.call_soon_threadsafe(order.append, 1)
    host_loop.run_or_post(order.append, 2)
    assert order == []
    host_loop.run_once(0)
    assert order == [1, 2]


def test_a_loop_with_a_thread_of_its_own_gets_it_posted() -> None:
    loop = EventLoop()
    seen: Seen = []
    loop.run_or_post(recorder(loop, seen))  # not started yet: still the loop thread's to run
    assert seen == []
    thread = threading.Thread(target=loop.run_forever, name="ftcore-test-loop")
    thread.start()
    try:
        loop.run_or_post(recorder(loop, seen))
        assert wait_until(lambda: len(seen) == 2)
        assert seen == [("ftcore-test-loop", True)] * 2
    finally:
        loop.stop()
        thread.join(WAIT)
        loop.close()


def test_a_pass_in_progress_on_another_thread_gets_it_posted(host_loop: EventLoop) -> None:
    seen: Seen = []
    in_pass, release = threading.Event(), threading.Event()

    def blocking_callback() -> None:
        in_pass.set()
        release.wait(WAIT)

    host_loop.call_soon(blocking_callback)
    host = threading.Thread(target=lambda: [host_loop.run_once(0) for _ in range(2)], name="host")
    host.start()
    try:
        assert in_pass.wait(WAIT)
        host_loop.run_or_post(recorder(host_loop, seen))
        assert seen == []
    finally:
        release.set()
        host.join(WAIT)
    assert seen == [("host", True)]


def test_on_the_loop_thread_it_runs_at_once_inside_the_pass(host_loop: EventLoop) -> None:
    order: List[str] = []

    def callback() -> None:
        host_loop.run_or_post(order.append, "nested")
        order.append("after")

    host_loop.call_soon(callback)
    host_loop.run_once(0)
    assert order == ["nested", "after"]


def test_an_exception_reaches_the_caller_and_leaves_the_loop_free(host_loop: EventLoop) -> None:
    def broken() -> Any:
        raise ValueError("boom")

    with pytest.raises(ValueError):
        host_loop.run_or_post(broken)
    assert host_loop.thread_id is None
    assert host_loop.try_run_once(0)


def test_a_closed_loop_runs_nothing(host_loop: EventLoop) -> None:
    seen: Seen = []
    host_loop.close()
    host_loop.run_or_post(recorder(host_loop, seen))
    assert seen == []
