"""ftcore.loop.EventLoop, driven by run_once on the test thread or run_forever in a thread."""

from __future__ import annotations

import logging
import os
import random
import resource
import selectors
import socket
import threading
import time
from typing import Any, Iterator, List, Tuple

import pytest

from ftcore.loop import EventLoop, ManualClock

from .support import WAIT, no_loop_thread_leak  # noqa: F401


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    loop = EventLoop(clock=ManualClock(100.0))
    yield loop
    loop.close()


@pytest.fixture
def pair() -> Iterator[Tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


class LoopThread:
    """An EventLoop blocked in run_forever on its own thread."""

    def __init__(self, loop: EventLoop) -> None:
        self.loop = loop
        self.thread = threading.Thread(target=loop.run_forever, name="test-loop", daemon=True)

    def __enter__(self) -> EventLoop:
        self.thread.start()
        return self.loop

    def __exit__(self, *exc: Any) -> None:
        self.loop.stop()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()
        self.loop.close()


# -- ready queue ------------------------------------------------------------------------------


def test_call_soon_is_fifo(loop: EventLoop) -> None:
    seen: List[int] = []
    for i in range(100):
        loop.call_soon(seen.append, i)
    loop.run_once(0)
    assert seen == list(range(100))


def test_callback_scheduled_during_a_pass_runs_on_the_next(loop: EventLoop) -> None:
    seen: List[str] = []

    def first() -> None:
        seen.append("first")
        loop.call_soon(seen.append, "child")

    loop.call_soon(first)
    loop.call_soon(seen.append, "second")
    loop.run_once(0)
    assert seen == ["first", "second"]
    loop.run_once(0)
    assert seen == ["first", "second", "child"]


def test_self_rescheduling_callback_does_not_starve_the_pass(loop: EventLoop) -> None:
    count = [0]

    def again() -> None:
        count[0] += 1
        loop.call_soon(again)

    loop.call_soon(again)
    for expected in range(1, 6):
        loop.run_once(0)
        assert count[0] == expected


def test_handle_cancel(loop: EventLoop) -> None:
    seen: List[int] = []
    handles = [loop.call_soon(seen.append, i) for i in range(5)]
    handles[1].cancel()
    handles[3].cancel()
    loop.run_once(0)
    assert seen == [0, 2, 4]


def test_cancel_from_an_earlier_callback_of_the_same_pass(loop: EventLoop) -> None:
    seen: List[str] = []
    handles: List[Any] = []
    loop.call_soon(lambda: handles[0].cancel())
    handles.append(loop.call_soon(seen.append, "cancelled"))
    loop.call_soon(seen.append, "other")
    loop.run_once(0)
    assert seen == ["other"]
    # a due timer cancelled by a callback that runs before the timers of the pass
    timer = loop.call_later(0, seen.append, "timer")
    loop.call_soon(timer.cancel)
    loop.run_once(0)
    loop.run_once(0)
    assert seen == ["other"]


def test_run_once_with_ready_callbacks_does_not_block() -> None:
    loop = EventLoop()  # the real clock: a blocking select would hang the test
    try:
        ran = []
        loop.call_soon(ran.append, 1)
        loop.run_once(None)
        assert ran == [1]
    finally:
        loop.close()


# -- timers -----------------------------------------------------------------------------------


def test_timers_run_in_deadline_order_ties_in_creation_order(loop: EventLoop) -> None:
    seen: List[str] = []
    loop.call_later(3, seen.append, "c")
    loop.call_later(1, seen.append, "a1")
    loop.call_later(2, seen.append, "b")
    loop.call_later(1, seen.append, "a2")
    loop.call_at(loop.time() + 1, seen.append, "a3")
    loop.time.advance(10)  # type: ignore[attr-defined]
    loop.run_once(0)
    assert seen == ["a1", "a2", "a3", "b", "c"]


def test_call_later_on_a_manual_clock(loop: EventLoop) -> None:
    clock = loop.time
    seen: List[str] = []
    loop.call_later(5, seen.append, "five")
    loop.call_later(0, seen.append, "zero")
    loop.run_once(0)
    assert seen == ["zero"]
    clock.advance(4.999)  # type: ignore[attr-defined]
    loop.run_once(0)
    assert seen == ["zero"]
    clock.advance(0.001)  # type: ignore[attr-defined]
    loop.run_once(0)
    assert seen == ["zero", "five"]
    loop.run_once(0)
    assert seen == ["zero", "five"]


def test_run_once_timeout_is_capped_by_the_next_deadline(loop: EventLoop) -> None:
    waits: List[Any] = []
    real_select = loop._selector.select

    def select(timeout: Any = None) -> Any:
        waits.append(timeout)
        return real_select(0)

    loop._selector.select = select  # type: ignore[method-assign]
    loop.call_later(2.5, lambda: None)
    loop.run_once(10)
    loop.run_once(1)
    loop.run_once(None)
    assert waits == [2.5, 1, 2.5]


def test_cancelled_timers_are_dropped_lazily(loop: EventLoop) -> None:
    seen: List[str] = []
    head = loop.call_later(1, seen.append, "head")
    loop.call_later(2, seen.append, "tail")
    head.cancel()
    assert len(loop._timers) == 2  # cancel() is O(1): the heap keeps the handle for now
    loop.run_once(0)
    assert len(loop._timers) == 1  # dropped when it reached the top of the heap
    loop.time.advance(5)  # type: ignore[attr-defined]
    loop.run_once(0)
    assert seen == ["tail"]
    assert loop._timers == []


def test_a_cancelled_timer_does_not_shorten_the_sleep(loop: EventLoop) -> None:
    waits: List[Any] = []
    real_select = loop._selector.select

    def select(timeout: Any = None) -> Any:
        waits.append(timeout)
        return real_select(0)

    loop._selector.select = select  # type: ignore[method-assign]
    loop.call_later(1, lambda: None).cancel()
    loop.call_later(7, lambda: None)
    loop.run_once(None)
    assert waits == [7]


def test_100k_random_timers_fire_in_order(loop: EventLoop) -> None:
    rng = random.Random(1234)
    clock = loop.time
    fired: List[Tuple[float, int]] = []
    expected: List[Tuple[float, int]] = []
    for i in range(100_000):
        delay = rng.randint(0, 2000) / 100.0  # many ties
        expected.append((delay, i))
        loop.call_later(delay, fired.append, (delay, i))
    expected.sort()
    # in steps: only what is due runs
    for step in range(1, 5):
        clock.advance(5)  # type: ignore[attr-defined]
        loop.run_once(0)
        horizon = 5 * step
        assert fired == [e for e in expected if e[0] <= horizon]
    clock.advance(1)  # type: ignore[attr-defined]
    loop.run_once(0)
    assert fired == expected
    assert loop._timers == []


# -- threads ----------------------------------------------------------------------------------


def test_call_soon_threadsafe_8_threads_x_10000() -> None:
    n_threads, n_calls = 8, 10_000
    got: List[Tuple[int, int]] = []
    with LoopThread(EventLoop()) as loop:
        start = threading.Barrier(n_threads)

        def produce(tid: int) -> None:
            start.wait()
            for i in range(n_calls):
                loop.call_soon_threadsafe(got.append, (tid, i))

        producers = [threading.Thread(target=produce, args=(t,)) for t in range(n_threads)]
        for p in producers:
            p.start()
        for p in producers:
            p.join(WAIT)
        done = threading.Event()
        loop.call_soon_threadsafe(done.set)
        assert done.wait(WAIT)
    assert len(got) == n_threads * n_calls
    per_thread: List[List[int]] = [[] for _ in range(n_threads)]
    for tid, i in got:
        per_thread[tid].append(i)
    for seq in per_thread:
        assert seq == list(range(n_calls))


def test_no_lost_wakeup_in_ping_pong() -> None:
    # One callback at a time from another thread, each posted while the loop is going back to
    # sleep or already asleep: a lost wake-up would leave one waiting forever.
    with LoopThread(EventLoop()) as loop:
        ran = threading.Semaphore(0)
        for _ in range(5000):
            loop.call_soon_threadsafe(ran.release)
            assert ran.acquire(timeout=WAIT), "a callback was not run: lost wake-up"


def test_no_lost_wakeup_with_competing_producers() -> None:
    with LoopThread(EventLoop()) as loop:
        n_threads, rounds = 4, 1000
        acks = [threading.Semaphore(0) for _ in range(n_threads)]
        failures: List[int] = []

        def produce(tid: int) -> None:
            for _ in range(rounds):
                loop.call_soon_threadsafe(acks[tid].release)
                if not acks[tid].acquire(timeout=WAIT):
                    failures.append(tid)
                    return

        threads = [threading.Thread(target=produce, args=(t,)) for t in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT * 2)
        assert not failures


def test_stop_from_another_thread_wakes_a_sleeping_loop() -> None:
    loop = EventLoop()
    loop.call_later(3600, lambda: None)  # asleep for an hour unless woken
    thread = threading.Thread(target=loop.run_forever, name="test-loop", daemon=True)
    asleep = threading.Event()
    loop.call_soon(asleep.set)
    thread.start()
    try:
        assert asleep.wait(WAIT)
        loop.stop()
        thread.join(WAIT)  # asleep for an hour unless the stop woke it
        assert not thread.is_alive()
    finally:
        loop.stop()
        thread.join(WAIT)
        loop.close()


def test_call_soon_threadsafe_wakes_a_sleeping_loop() -> None:
    with LoopThread(EventLoop()) as loop:
        loop.call_later(3600, lambda: None)  # before run_forever sees it: harmless either way
        ran = threading.Event()
        flush_event = threading.Event()
        loop.call_soon_threadsafe(flush_event.set)
        assert flush_event.wait(WAIT)
        loop.call_soon_threadsafe(ran.set)
        assert ran.wait(WAIT)


def test_run_forever_can_run_again_after_stop() -> None:
    loop = EventLoop()
    try:
        for _ in range(2):
            ran = threading.Event()
            with_thread = threading.Thread(target=loop.run_forever, name="test-loop")
            with_thread.start()
            loop.call_soon_threadsafe(ran.set)
            assert ran.wait(WAIT)
            loop.stop()
            with_thread.join(WAIT)
            assert not with_thread.is_alive()
            assert loop.thread_id is None
    finally:
        loop.close()


@pytest.mark.skipif(not hasattr(resource, "RUSAGE_THREAD"), reason="needs RUSAGE_THREAD")
def test_idle_loop_uses_no_cpu() -> None:
    loop = EventLoop()
    passes = [0]
    real_run_once = loop._run_once

    def counting_run_once(timeout: Any) -> None:
        passes[0] += 1
        real_run_once(timeout)

    loop._run_once = counting_run_once  # type: ignore[method-assign]
    samples: List[Any] = []
    sampled = threading.Semaphore(0)

    def sample() -> None:
        samples.append((resource.getrusage(resource.RUSAGE_THREAD), passes[0]))
        sampled.release()

    with LoopThread(loop):
        loop.call_soon_threadsafe(sample)
        assert sampled.acquire(timeout=WAIT)
        time.sleep(2.0)  # the one deliberate wait: idleness has to be observed
        loop.call_soon_threadsafe(sample)
        assert sampled.acquire(timeout=WAIT)
    (before, passes_before), (after, passes_after) = samples
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 0.02, "idle loop used %.3fs of CPU in 2s" % cpu
    assert passes_after - passes_before <= 3, "the idle loop kept waking up"


# -- errors -----------------------------------------------------------------------------------


def test_raising_callback_is_logged_and_the_loop_goes_on(
    loop: EventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    seen: List[str] = []

    def boom() -> None:
        raise ValueError("boom in callback")

    loop.call_soon(boom)
    loop.call_soon(seen.append, "after")
    loop.call_later(0, boom)
    with caplog.at_level(logging.ERROR, logger="ftcore"):
        loop.run_once(0)
        loop.run_once(0)
    assert seen == ["after"]
    records = [r for r in caplog.records if r.name == "ftcore"]
    assert len(records) == 2
    assert all(r.exc_info and isinstance(r.exc_info[1], ValueError) for r in records)


def test_raising_fd_callback_is_logged_and_the_loop_goes_on(
    loop: EventLoop, pair: Tuple[socket.socket, socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = pair
    seen: List[str] = []

    def boom() -> None:
        raise OSError("boom in fd callback")

    loop.add_reader(a, boom)
    b.send(b"x")
    loop.call_soon(seen.append, "ready")
    with caplog.at_level(logging.ERROR, logger="ftcore"):
        loop.run_once(0)
    loop.remove_reader(a)
    loop.call_soon(seen.append, "next")
    loop.run_once(0)
    assert seen == ["ready", "next"]
    records = [r for r in caplog.records if r.name == "ftcore"]
    assert len(records) == 1 and isinstance(records[0].exc_info[1], OSError)


# -- fd watchers ------------------------------------------------------------------------------


def test_add_and_remove_reader(loop: EventLoop, pair: Tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    got: List[bytes] = []
    loop.add_reader(a, lambda: got.append(a.recv(100)))
    loop.run_once(0)
    assert got == []
    b.send(b"hello")
    loop.run_once(0)
    assert got == [b"hello"]
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False
    b.send(b"again")
    loop.run_once(0)
    assert got == [b"hello"]
    with pytest.raises(KeyError):
        loop._selector.get_key(a.fileno())


def test_add_reader_accepts_a_raw_fd_and_args(
    loop: EventLoop, pair: Tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    got: List[Any] = []
    loop.add_reader(a.fileno(), got.append, "arg")
    b.send(b"x")
    loop.run_once(0)
    assert got == ["arg"]
    assert loop.remove_reader(a.fileno())


def test_add_and_remove_writer(loop: EventLoop, pair: Tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair
    fired: List[int] = []
    loop.add_writer(a, fired.append, 1)
    loop.run_once(0)
    assert fired == [1]
    assert loop.remove_writer(a) is True
    assert loop.remove_writer(a) is False
    loop.run_once(0)
    assert fired == [1]


def test_reader_and_writer_on_one_fd(
    loop: EventLoop, pair: Tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    fired: List[str] = []
    loop.add_reader(a, lambda: fired.append("r:%s" % a.recv(10).decode()))
    assert loop._selector.get_key(a.fileno()).events == selectors.EVENT_READ
    loop.add_writer(a, fired.append, "w")
    assert loop._selector.get_key(a.fileno()).events == selectors.EVENT_READ | selectors.EVENT_WRITE
    b.send(b"x")
    loop.run_once(0)
    assert sorted(fired) == ["r:x", "w"]
    assert loop.remove_reader(a)
    assert loop._selector.get_key(a.fileno()).events == selectors.EVENT_WRITE
    fired.clear()
    b.send(b"y")
    loop.run_once(0)
    assert fired == ["w"]
    loop.add_reader(a, lambda: fired.append("r2:%s" % a.recv(10).decode()))
    assert loop._selector.get_key(a.fileno()).events == selectors.EVENT_READ | selectors.EVENT_WRITE
    assert loop.remove_writer(a)
    assert loop._selector.get_key(a.fileno()).events == selectors.EVENT_READ
    fired.clear()
    loop.run_once(0)
    assert fired == ["r2:y"]
    assert loop.remove_reader(a)
    with pytest.raises(KeyError):
        loop._selector.get_key(a.fileno())


def test_replacing_a_reader_keeps_one_registration(
    loop: EventLoop, pair: Tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    fired: List[str] = []
    loop.add_reader(a, fired.append, "old")
    loop.add_reader(a, fired.append, "new")
    b.send(b"x")
    loop.run_once(0)
    assert fired == ["new"]


def test_reader_removed_earlier_in_the_pass_does_not_run(loop: EventLoop) -> None:
    # Two fds are ready in the same pass; whichever callback runs first removes the other's
    # watcher (as a protocol closing its peer would). The removed callback must not run.
    a1, b1 = socket.socketpair()
    a2, b2 = socket.socketpair()
    try:
        ran: List[str] = []

        def on_one() -> None:
            ran.append("one")
            loop.remove_reader(a2)

        def on_two() -> None:
            ran.append("two")
            loop.remove_reader(a1)

        loop.add_reader(a1, on_one)
        loop.add_reader(a2, on_two)
        b1.send(b"x")
        b2.send(b"x")
        loop.run_once(0)
        assert len(ran) == 1, ran
    finally:
        for s in (a1, b1, a2, b2):
            s.close()


def test_reader_replaced_earlier_in_the_pass_runs_only_the_new_callback(
    loop: EventLoop, pair: Tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    c, d = socket.socketpair()
    try:
        ran: List[str] = []

        def replace_other(mine: Any, other: Any, name: str) -> None:
            ran.append(name)
            mine.recv(10)
            loop.remove_reader(mine)
            loop.add_reader(other, lambda: (ran.append("new"), other.recv(10)))

        loop.add_reader(a, replace_other, a, c, "one")
        loop.add_reader(c, replace_other, c, a, "two")
        b.send(b"x")
        d.send(b"x")
        loop.run_once(0)
        assert len(ran) == 1, ran  # the replaced watcher did not run
        loop.run_once(0)
        assert ran[1:] == ["new"]
    finally:
        c.close()
        d.close()


# -- close ------------------------------------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_close_releases_every_fd() -> None:
    a, b = socket.socketpair()
    try:
        before = _open_fds()
        loops = [EventLoop() for _ in range(50)]
        # every loop owns a poller (epoll) and a waker (an eventfd, or a socketpair)
        assert _open_fds() - before >= 2 * 50
        for loop in loops:
            loop.add_reader(a, lambda: None)
            loop.add_writer(b, lambda: None)
            loop.call_soon_threadsafe(lambda: None)  # leaves a wake-up byte unread
        for loop in loops:
            loop.close()
            loop.close()  # idempotent
            assert loop.closed
        assert _open_fds() == before
        # watched fds belong to the caller: still open, and no longer in any selector
        a.send(b"still open")
        assert b.recv(100) == b"still open"
    finally:
        a.close()
        b.close()


def test_close_drops_pending_callbacks_and_timers() -> None:
    loop = EventLoop(clock=ManualClock())
    loop.call_soon(lambda: None)
    loop.call_later(1, lambda: None)
    loop.close()
    assert not loop.has_ready()
    assert loop._timers == []


def test_call_soon_threadsafe_after_close_does_not_raise() -> None:
    loop = EventLoop()
    loop.close()
    done = threading.Event()

    def other_thread() -> None:
        loop.call_soon_threadsafe(lambda: None)
        done.set()

    t = threading.Thread(target=other_thread)
    t.start()
    t.join(WAIT)
    assert done.is_set()


def test_cancelled_timers_do_not_pile_up() -> None:
    """Timeouts that are cancelled (the common case) are compacted out of the heap."""
    loop = EventLoop(clock=ManualClock())
    try:
        keep = loop.call_later(1000.0, lambda: None)
        for _ in range(10_000):
            loop.call_later(60.0, lambda: None).cancel()
        assert len(loop._timers) < 200
        fired: list = []
        loop.call_later(1.0, fired.append, 1)
        loop.time.advance(2.0)  # type: ignore[attr-defined]
        loop.run_once(0)
        assert fired == [1] and not keep.cancelled
    finally:
        loop.close()
