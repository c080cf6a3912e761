"""ftcore.loop.EventLoop: the cross-thread wake-up (one write per sleep, never a lost one),
posts from other threads batched into the running pass, and the pollers and wakers behind
it (epoll and eventfd, and the selectors and socketpair fallbacks)."""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from typing import Any, Callable, Iterator, List, Tuple

import pytest

from ftcore import loop as loop_module
from ftcore.loop import EventLoop

from .support import WAIT, no_loop_thread_leak  # noqa: F401
from .test_loop import LoopThread
from tests.support.waits import flush, wait_until

BACKENDS = [
    pytest.param(
        ("_Epoll", "_EventfdWaker"),
        id="epoll-eventfd",
        marks=pytest.mark.skipif(
            not (hasattr(select, "epoll") and hasattr(os, "eventfd")), reason="Linux, 3.10+"
        ),
    ),
    pytest.param(("_Selector", "_SocketWaker"), id="selectors-socketpair"),
]


@pytest.fixture(params=BACKENDS)
def backend(request: Any, monkeypatch: pytest.MonkeyPatch) -> Tuple[str, str]:
    """New loops use this poller and waker (3.9 gets the socketpair, macOS and Windows both
    fallbacks)."""
    poller, waker = request.param
    monkeypatch.setattr(loop_module, "_poller", getattr(loop_module, poller))
    monkeypatch.setattr(loop_module, "_waker", getattr(loop_module, waker))
    return request.param


@pytest.fixture
def loop() -> Iterator[EventLoop]:
    loop = EventLoop()
    yield loop
    loop.close()


def count_writes(loop: EventLoop) -> List[None]:
    """One entry per write of the loop's waker."""
    writes: List[None] = []
    real = loop._waker.wake

    def wake() -> None:
        writes.append(None)
        real()

    loop._waker.wake = wake  # type: ignore[method-assign]
    return writes


def in_thread(fn: Callable[[], Any]) -> None:
    thread = threading.Thread(target=fn)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive()


# -- one write per sleep ----------------------------------------------------------------------


def test_posts_while_a_pass_runs_join_it_without_a_write(loop: EventLoop) -> None:
    writes = count_writes(loop)
    ran: List[int] = []

    def busy() -> None:  # the loop is awake: another thread posts meanwhile
        in_thread(lambda: [loop.call_soon_threadsafe(ran.append, i) for i in range(100)])

    loop.call_soon(busy)
    loop.run_once(0)
    assert ran == list(range(100)), "run in the pass that was running when they came"
    assert writes == []


def test_call_soon_threadsafe_on_the_loop_thread_is_call_soon(loop: EventLoop) -> None:
    writes = count_writes(loop)
    seen: List[str] = []

    def on_loop() -> None:
        loop.call_soon(seen.append, "a")
        loop.call_soon_threadsafe(seen.append, "b")  # a task launched from a callback
        loop.call_soon(seen.append, "c")

    loop.call_soon(on_loop)
    loop.run_once(0)
    assert seen == []
    loop.run_once(0)
    assert seen == ["a", "b", "c"]
    assert writes == [], "no wake-up byte, so the next sleep is not cut short"
    assert not loop.has_ready()


def test_one_write_per_sleep_whatever_the_posters() -> None:
    loop = EventLoop()
    writes = count_writes(loop)
    real_select = loop._selector.select
    woken = threading.Event()
    release = threading.Event()

    def select(timeout: Any = None) -> Any:
        events = real_select(timeout)
        if any(fd == loop._waker.fd for fd, _ in events) and not woken.is_set():
            woken.set()  # hold the loop between its poll and taking the token back
            assert release.wait(WAIT)
        return events

    loop._selector.select = select  # type: ignore[method-assign]
    ran = [0]

    def count() -> None:
        ran[0] += 1

    with LoopThread(loop):
        assert wait_until(lambda: bool(loop._asleep)), "the loop went to sleep"
        start = threading.Barrier(8)

        def post() -> None:
            start.wait()
            for _ in range(200):
                loop.call_soon_threadsafe(count)

        posters = [threading.Thread(target=post) for _ in range(8)]
        for p in posters:
            p.start()
        for p in posters:
            p.join(WAIT)
        assert woken.wait(WAIT)
        assert len(writes) == 1
        release.set()
        flush(loop)
        assert ran[0] == 8 * 200


def test_a_post_between_the_last_check_and_the_poll_wakes_it(loop: EventLoop) -> None:
    writes = count_writes(loop)
    real_select = loop._selector.select
    ran: List[str] = []

    def select(timeout: Any = None) -> Any:
        if timeout:  # the loop checked its inbox and is about to block
            in_thread(lambda: loop.call_soon_threadsafe(ran.append, "late"))
        return real_select(timeout)

    loop._selector.select = select  # type: ignore[method-assign]
    started = time.monotonic()
    loop.run_once(WAIT)  # sleeps it all if the wake-up were lost
    assert time.monotonic() - started < WAIT
    assert ran == ["late"] and len(writes) == 1


def test_a_post_before_the_token_is_seen_by_the_last_check() -> None:
    # The clock is read after the ready check and before the token is put: a post there
    # finds no token (no write), so the check after putting it must see the post.
    armed = [False]
    ran: List[str] = []

    def clock() -> float:
        if armed[0]:
            armed[0] = False
            in_thread(lambda: ev_loop.call_soon_threadsafe(ran.append, "early"))
        return time.monotonic()

    ev_loop = EventLoop(clock)
    try:
        writes = count_writes(ev_loop)
        ev_loop.call_later(WAIT, lambda: None)  # so the pass reads the clock for its timeout
        waits: List[Any] = []
        real_select = ev_loop._selector.select

        def select(timeout: Any = None) -> Any:
            waits.append(timeout)
            return real_select(timeout)

        ev_loop._selector.select = select  # type: ignore[method-assign]
        armed[0] = True
        ev_loop.run_once(None)
        assert ran == ["early"] and writes == [] and waits == [0.0]
    finally:
        ev_loop.close()


def test_stop_wakes_a_sleeping_loop_once(loop: EventLoop) -> None:
    writes = count_writes(loop)
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        assert wait_until(lambda: bool(loop._asleep))
        loop.stop()
        loop.stop()
        thread.join(WAIT)
        assert not thread.is_alive()
        assert len(writes) == 1
    finally:
        loop.stop()
        thread.join(WAIT)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_a_signal_handler_that_posts_wakes_the_poll(loop: EventLoop) -> None:
    # the handler runs on the loop thread, inside its poll: it must wake it all the same
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run on the main thread only")
    ran: List[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: loop.call_soon_threadsafe(ran.append, 1))
    try:
        main = threading.get_ident()

        def interrupt() -> None:
            assert wait_until(lambda: bool(loop._asleep))
            signal.pthread_kill(main, signal.SIGUSR1)

        thread = threading.Thread(target=interrupt)
        thread.start()
        started = time.monotonic()
        while not ran and time.monotonic() - started < WAIT:
            loop.run_once(WAIT)
        thread.join(WAIT)
        assert ran == [1] and time.monotonic() - started < WAIT
    finally:
        signal.signal(signal.SIGUSR1, previous)


# -- pollers and wakers -----------------------------------------------------------------------


def test_fd_ping_pong_and_cross_thread_hops(backend: Tuple[str, str]) -> None:
    loop = EventLoop()
    assert type(loop._selector).__name__ == backend[0]
    assert type(loop._waker).__name__ == backend[1]
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    trips = [0]
    done = threading.Event()

    def echo(sock: socket.socket) -> None:
        sock.recv(10)
        trips[0] += 1
        if trips[0] < 200:
            sock.send(b"x")
        else:
            done.set()

    with LoopThread(loop):
        loop.call_soon_threadsafe(loop.add_reader, a, echo, a)
        loop.call_soon_threadsafe(loop.add_reader, b, echo, b)
        loop.call_soon_threadsafe(a.send, b"x")
        assert done.wait(WAIT)
        hopped = threading.Semaphore(0)
        for _ in range(500):
            loop.call_soon_threadsafe(hopped.release)
            assert hopped.acquire(timeout=WAIT), "a lost wake-up"
        flush(loop)
        loop.call_soon_threadsafe(loop.remove_reader, a)
        loop.call_soon_threadsafe(loop.remove_reader, b)
        flush(loop)
        assert loop.pending_counts()["readers"] == 0
    a.close()
    b.close()


def test_a_reader_hears_a_hang_up_without_data(backend: Tuple[str, str]) -> None:
    # a pipe whose writer closed reports a hang-up alone (no "readable" bit): still the reader's
    loop = EventLoop()
    r, w = os.pipe()
    try:
        heard: List[bytes] = []
        loop.add_reader(r, lambda: heard.append(os.read(r, 10)))
        os.close(w)
        loop.run_once(0)
        assert heard == [b""]
        assert loop.remove_reader(r)
    finally:
        loop.close()
        os.close(r)


def test_writer_and_reader_on_one_fd_switch_registration(backend: Tuple[str, str]) -> None:
    loop = EventLoop()
    a, b = socket.socketpair()
    try:
        fired: List[str] = []
        loop.add_writer(a, fired.append, "w")
        loop.add_reader(a, fired.append, "r")
        b.send(b"x")
        loop.run_once(0)
        assert sorted(fired) == ["r", "w"]
        assert loop.remove_writer(a)
        fired.clear()
        loop.run_once(0)
        assert fired == ["r"]
        assert loop.remove_reader(a)
        with pytest.raises(KeyError):
            loop._selector.get_key(a.fileno())
    finally:
        loop.close()
        a.close()
        b.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_close_releases_the_poller_and_the_waker(backend: Tuple[str, str]) -> None:
    per_loop = 2 if backend[1] == "_EventfdWaker" else 3  # poller + eventfd, or + a pair
    before = len(os.listdir("/proc/self/fd"))
    loops = [EventLoop() for _ in range(20)]
    for loop in loops:
        loop._waker.wake()  # leaves a wake-up unread
    assert len(os.listdir("/proc/self/fd")) - before == 20 * per_loop
    for loop in loops:
        loop.close()
        loop._waker.wake()  # a late wake after close is ignored
    assert len(os.listdir("/proc/self/fd")) == before
