"""The resolver's worker pool on real threads and a real loop: reuse, the bound, idle exit,
close (idle workers joined, a hung `getaddrinfo` reported and left to end), and cancellation
(a queued lookup skips `getaddrinfo`; a cancelled result never reaches the loop)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable, List, Set

import pytest

from ftcore._net.resolver import Lookup, Resolver
from tests.net.support import LoopThread
from tests.support.events import EventQueue
from tests.support.waits import WAIT, wait_until

pytestmark = pytest.mark.timeout(60)


class FakeDns:
    """An injected `getaddrinfo`: answers 127.0.0.1, records each call's host and thread, and
    blocks while `gate` is clear (bounded)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()
        self.hosts: List[str] = []
        self.threads: Set[threading.Thread] = set()
        self.inside = 0

    def __call__(self, host: str, port: int, *args: Any) -> Any:
        with self.lock:
            self.hosts.append(host)
            self.threads.add(threading.current_thread())
            self.inside += 1
        try:
            assert self.gate.wait(WAIT), "the test never opened the gate"
        finally:
            with self.lock:
                self.inside -= 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


def start(loop_thread: LoopThread, resolver: Resolver, host: str, events: EventQueue) -> Lookup:
    """`resolver.lookup` on the loop thread; the result arrives as event `host`."""
    ran_inside: List[bool] = []

    def begin() -> Lookup:
        before = len(events.log)
        lookup = resolver.lookup(host, 80, socket.AF_UNSPEC, 0, lambda r: events.put(host, r))
        ran_inside.append(len(events.log) != before)
        return lookup

    lookup: Lookup = loop_thread.call(begin)
    assert ran_inside == [False], "the callback ran inside lookup()"
    return lookup


def make(loop_thread: LoopThread, dns: Callable[..., Any], **options: Any) -> Resolver:
    return Resolver(loop_thread.loop, getaddrinfo=dns, **options)


def test_lookups_in_a_row_reuse_one_thread(loop_thread: LoopThread) -> None:
    dns = FakeDns()
    resolver = make(loop_thread, dns, idle_s=WAIT)
    events = EventQueue()
    for n in range(20):
        start(loop_thread, resolver, "h%d.test" % n, events)
        assert events.expect("h%d.test" % n) == [(socket.AF_INET, ("127.0.0.1", 80))]
    assert events.threads == {loop_thread.thread.name}  # delivered on the loop
    assert len(dns.threads) == 1
    assert resolver.pending() == 0  # the idle worker holds no lookup
    [worker] = dns.threads
    assert worker.is_alive() and worker.name == "ftcore-resolve"
    assert resolver.close(WAIT) == []
    assert not worker.is_alive()


def test_lookups_run_in_parallel_up_to_the_bound(loop_thread: LoopThread) -> None:
    dns = FakeDns()
    dns.gate.clear()
    resolver = make(loop_thread, dns, workers=4, idle_s=WAIT)
    events = EventQueue()
    hosts = ["h%d.test" % n for n in range(6)]
    for host in hosts:
        start(loop_thread, resolver, host, events)
    assert wait_until(lambda: dns.inside == 4)
    time.sleep(0.1)  # a fifth worker would show up here
    assert dns.inside == 4 and len(dns.threads) == 4
    assert resolver.pending() == 6  # four resolving, two queued
    dns.gate.set()
    for _ in hosts:
        events.expect()
    assert sorted(name for name, _ in events.log) == hosts
    assert len(dns.threads) == 4  # the queued two were taken by the same workers
    assert resolver.pending() == 0
    assert resolver.close(WAIT) == []
    assert not any(thread.is_alive() for thread in dns.threads)


def test_an_idle_worker_exits_and_a_new_one_starts_when_needed(loop_thread: LoopThread) -> None:
    dns = FakeDns()
    resolver = make(loop_thread, dns, idle_s=0.05)
    events = EventQueue()
    start(loop_thread, resolver, "first.test", events)
    events.expect("first.test")
    [first] = dns.threads
    assert wait_until(lambda: not first.is_alive())
    start(loop_thread, resolver, "second.test", events)
    events.expect("second.test")
    assert len(dns.threads) == 2
    assert resolver.close(WAIT) == []


def test_close_joins_idle_workers_and_refuses_lookups(loop_thread: LoopThread) -> None:
    dns = FakeDns()
    dns.gate.clear()
    resolver = make(loop_thread, dns, idle_s=WAIT)
    events = EventQueue()
    for host in ("a.test", "b.test"):
        start(loop_thread, resolver, host, events)
    assert wait_until(lambda: dns.inside == 2)
    dns.gate.set()
    events.expect()
    events.expect()
    assert all(thread.is_alive() for thread in dns.threads)  # idle, waiting for work
    assert resolver.close(WAIT) == []
    assert not any(thread.is_alive() for thread in dns.threads)
    with pytest.raises(RuntimeError):
        resolver.lookup("c.test", 80, socket.AF_UNSPEC, 0, lambda r: None)


def test_close_reports_a_hung_lookup_which_ends_later(loop_thread: LoopThread) -> None:
    dns = FakeDns()
    dns.gate.clear()
    resolver = make(loop_thread, dns, idle_s=WAIT)
    events = EventQueue()
    lookup = start(loop_thread, resolver, "hung.test", events)
    assert wait_until(lambda: dns.inside == 1)
    loop_thread.call(lookup.cancel)
    assert resolver.close(0.1) == list(dns.threads)
    assert resolver.pending() == 1  # still resolving: a leak check sees it
    dns.gate.set()
    [worker] = dns.threads
    worker.join(WAIT)
    assert not worker.is_alive()
    assert resolver.pending() == 0
    loop_thread.flush()
    assert events.log == []


def test_a_lookup_cancelled_while_queued_never_calls_getaddrinfo(loop_thread: LoopThread) -> None:
    dns = FakeDns()
    dns.gate.clear()
    resolver = make(loop_thread, dns, workers=1, idle_s=WAIT)
    events = EventQueue()
    start(loop_thread, resolver, "running.test", events)
    assert wait_until(lambda: dns.inside == 1)
    queued = start(loop_thread, resolver, "queued.test", events)
    assert resolver.pending() == 2
    loop_thread.call(queued.cancel)
    assert resolver.pending() == 1  # a cancelled queued lookup is not a leak
    start(loop_thread, resolver, "after.test", events)
    dns.gate.set()
    events.expect()
    events.expect()
    assert dns.hosts == ["running.test", "after.test"]
    assert [name for name, _ in events.log] == ["running.test", "after.test"]
    assert resolver.close(WAIT) == []


def test_a_result_cancelled_while_resolving_never_reaches_the_loop(
    loop_thread: LoopThread,
) -> None:
    dns = FakeDns()
    dns.gate.clear()
    resolver = make(loop_thread, dns, idle_s=WAIT)
    events = EventQueue()
    lookup = start(loop_thread, resolver, "late.test", events)
    assert wait_until(lambda: dns.inside == 1)
    loop_thread.call(lookup.cancel)
    dns.gate.set()
    assert wait_until(lambda: resolver.pending() == 0)
    loop_thread.flush()
    assert events.log == []
    start(loop_thread, resolver, "next.test", events)  # the worker serves on
    events.expect("next.test")
    assert len(dns.threads) == 1
    assert resolver.close(WAIT) == []
