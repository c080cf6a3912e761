"""ftcore.loop.EventLoop beside asyncio's loop and a bare selectors loop, in one run.

    python bench/loop.py [--rounds 7] [--n 100000] [--against OLD_LOOP.py] [bench ...]
    taskset -c 0 python bench/loop.py hop        # both threads of the hop on one CPU

Every contender is measured in the same process, in interleaved rounds (the order rotates
every round), and the medians are compared. Stdlib and ftcore only.

* call_soon: schedule N callbacks from the loop's own thread, then run them all.
* call_later: schedule N timers with random delays of up to 1 ms, run until every one fired.
* threadsafe: another thread submits N callbacks with call_soon_threadsafe while the loop
  runs on its own thread; the clock stops when the last one has run.
* pingpong: one byte bounces between the two ends of a socketpair, each end's reader writing
  it back, so every pass runs one fd callback (N/2 passes). ``selectors`` is the floor: the
  same exchange in a bare `selectors.DefaultSelector` loop, no callbacks, no timers.
* hop: the caller's thread posts `lock.release` with call_soon_threadsafe and waits on the
  lock, N/10 times: one cross-thread round trip, the price every `.result()` pays.

``--against PATH`` adds another ftcore/loop.py (it is stdlib only) as the contender
``before``, to compare a change with what it replaces:

    git show HEAD:ftcore/loop.py > /tmp/loop_before.py
    python bench/loop.py --against /tmp/loop_before.py
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib.util
import os
import random
import selectors
import socket
import statistics
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

sys.path[:0] = [
    os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir),
]

from ftcore.loop import EventLoop  # noqa: E402

Bench = Callable[[int], float]  # n -> seconds
LoopFactory = Callable[[], Any]  # an EventLoop class, ours or the --against one

SCALE = {"pingpong": 0.5, "hop": 0.1}  # of --n: these cost more per operation


# -- call_soon --------------------------------------------------------------------------------


def ftcore_call_soon(make: LoopFactory, n: int) -> float:
    loop = make()
    count = [0]

    def cb() -> None:
        count[0] += 1

    try:
        start = time.perf_counter()
        for _ in range(n):
            loop.call_soon(cb)
        loop.run_once(0)
        elapsed = time.perf_counter() - start
    finally:
        loop.close()
    assert count[0] == n
    return elapsed


def asyncio_call_soon(n: int) -> float:
    loop = asyncio.new_event_loop()
    count = [0]

    def cb() -> None:
        count[0] += 1

    try:
        start = time.perf_counter()
        for _ in range(n):
            loop.call_soon(cb)
        loop.call_soon(loop.stop)
        loop.run_forever()
        elapsed = time.perf_counter() - start
    finally:
        loop.close()
    assert count[0] == n
    return elapsed


# -- call_later -------------------------------------------------------------------------------


def _delays(n: int) -> List[float]:
    rng = random.Random(n)
    return [rng.random() * 0.001 for _ in range(n)]


def ftcore_call_later(make: LoopFactory, n: int) -> float:
    loop = make()
    delays = _delays(n)
    count = [0]

    def cb() -> None:
        count[0] += 1

    try:
        start = time.perf_counter()
        for delay in delays:
            loop.call_later(delay, cb)
        while count[0] < n:
            loop.run_once()
        elapsed = time.perf_counter() - start
    finally:
        loop.close()
    return elapsed


def asyncio_call_later(n: int) -> float:
    loop = asyncio.new_event_loop()
    delays = _delays(n)
    count = [0]

    def cb() -> None:
        count[0] += 1
        if count[0] == n:
            loop.stop()

    try:
        start = time.perf_counter()
        for delay in delays:
            loop.call_later(delay, cb)
        loop.run_forever()
        elapsed = time.perf_counter() - start
    finally:
        loop.close()
    assert count[0] == n
    return elapsed


# -- threads: call_soon_threadsafe ------------------------------------------------------------


class _Threaded:
    """A loop running on its own thread, for the cross-thread benches."""

    def __init__(self, loop: Any, stop: Callable[[], object]) -> None:
        self.loop = loop
        self._stop = stop
        self._thread = threading.Thread(target=loop.run_forever, daemon=True)
        self._thread.start()
        ready = threading.Event()
        loop.call_soon_threadsafe(ready.set)
        ready.wait()

    def close(self) -> None:
        self._stop()
        self._thread.join()
        self.loop.close()


def _ftcore_threaded(make: LoopFactory) -> _Threaded:
    loop = make()
    return _Threaded(loop, loop.stop)


def _asyncio_threaded() -> _Threaded:
    loop = asyncio.new_event_loop()
    return _Threaded(loop, lambda: loop.call_soon_threadsafe(loop.stop))


def _threadsafe(threaded: _Threaded, n: int) -> float:
    last = threading.Event()
    count = [0]

    def cb() -> None:
        count[0] += 1
        if count[0] == n:
            last.set()

    submit = threaded.loop.call_soon_threadsafe
    try:
        start = time.perf_counter()
        for _ in range(n):
            submit(cb)
        last.wait()
        return time.perf_counter() - start
    finally:
        threaded.close()


def _hop(threaded: _Threaded, n: int) -> float:
    lock = threading.Lock()
    lock.acquire()
    submit = threaded.loop.call_soon_threadsafe
    release, acquire = lock.release, lock.acquire
    try:
        start = time.perf_counter()
        for _ in range(n):
            submit(release)
            acquire()
        return time.perf_counter() - start
    finally:
        threaded.close()


# -- pingpong over a socketpair ---------------------------------------------------------------


def _pair() -> Tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def _pingpong_on(loop: Any, n: int, stop: Callable[[], None]) -> float:
    """Run `loop.run_forever` until one byte made `n` trips between the two ends."""
    a, b = _pair()
    left = [n]

    def echo(sock: socket.socket) -> None:
        sock.recv(64)
        left[0] -= 1
        if left[0] > 0:
            sock.send(b"x")
        else:
            stop()

    try:
        loop.add_reader(a.fileno(), echo, a)
        loop.add_reader(b.fileno(), echo, b)
        a.send(b"x")
        start = time.perf_counter()
        loop.run_forever()
        elapsed = time.perf_counter() - start
        loop.remove_reader(a.fileno())
        loop.remove_reader(b.fileno())
        return elapsed
    finally:
        loop.close()
        a.close()
        b.close()


def ftcore_pingpong(make: LoopFactory, n: int) -> float:
    loop = make()
    return _pingpong_on(loop, n, loop.stop)


def asyncio_pingpong(n: int) -> float:
    loop = asyncio.new_event_loop()
    return _pingpong_on(loop, n, loop.stop)


def selectors_pingpong(n: int) -> float:
    """The floor: the same trips in a bare selectors loop."""
    selector = selectors.DefaultSelector()
    a, b = _pair()
    try:
        selector.register(a, selectors.EVENT_READ, a)
        selector.register(b, selectors.EVENT_READ, b)
        a.send(b"x")
        left = n
        start = time.perf_counter()
        while left > 0:
            for key, _ in selector.select():
                sock = key.data
                sock.recv(64)
                left -= 1
                if left > 0:
                    sock.send(b"x")
        return time.perf_counter() - start
    finally:
        selector.close()
        a.close()
        b.close()


# -- the table --------------------------------------------------------------------------------


def contenders(make_before: Any) -> Dict[str, Dict[str, Bench]]:
    """Every bench's contenders; `before` only with --against."""
    ours: Dict[str, LoopFactory] = {"ftcore": EventLoop}
    if make_before is not None:
        ours["before"] = make_before

    def each(bench: Callable[[LoopFactory, int], float]) -> Dict[str, Bench]:
        return {name: functools.partial(bench, make) for name, make in ours.items()}

    return {
        "call_soon": {**each(ftcore_call_soon), "asyncio": asyncio_call_soon},
        "call_later": {**each(ftcore_call_later), "asyncio": asyncio_call_later},
        "threadsafe": {
            **each(lambda make, n: _threadsafe(_ftcore_threaded(make), n)),
            "asyncio": lambda n: _threadsafe(_asyncio_threaded(), n),
        },
        "pingpong": {
            **each(ftcore_pingpong),
            "asyncio": asyncio_pingpong,
            "selectors": selectors_pingpong,
        },
        "hop": {
            **each(lambda make, n: _hop(_ftcore_threaded(make), n)),
            "asyncio": lambda n: _hop(_asyncio_threaded(), n),
        },
    }


def load_loop(path: str) -> Any:
    """The EventLoop class of another copy of ftcore/loop.py."""
    spec = importlib.util.spec_from_file_location("ftcore_loop_against", path)
    if spec is None or spec.loader is None:
        raise SystemExit("cannot load %s" % path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EventLoop


def measure(impls: Dict[str, Bench], n: int, rounds: int) -> Dict[str, List[float]]:
    """Seconds per operation of each contender, `rounds` samples, interleaved."""
    names = list(impls)
    for _ in range(10):  # warm up every contender: 3.11 specialises a function after 8 calls
        for name in names:
            impls[name](max(1, min(n, 2000)))
    samples: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            samples[name].append(impls[name](n) / n)
    return samples


def run(rounds: int, n: int, only: List[str], make_before: Any) -> int:
    pinned = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    print(
        "python %s, n=%d, %d interleaved rounds, medians; CPUs %s"
        % (sys.version.split()[0], n, rounds, pinned or "?")
    )
    print("%-11s %-10s %12s %9s %10s" % ("bench", "contender", "op/s", "us/op", "vs asyncio"))
    worst = float("inf")
    for bench, impls in contenders(make_before).items():
        if only and bench not in only:
            continue
        count = max(1, int(n * SCALE.get(bench, 1.0)))
        samples = measure(impls, count, rounds)
        medians = {name: statistics.median(s) for name, s in samples.items()}
        for name, per_op in medians.items():
            ratio = medians["asyncio"] / per_op
            if name == "ftcore":
                worst = min(worst, ratio)
            row = (bench, name, 1 / per_op, per_op * 1e6, ratio)
            print("%-11s %-10s %12.0f %9.2f %9.2fx" % row)
    print("goal: ftcore >= 1.00x asyncio on each; worst %.2fx" % worst)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--against", metavar="PATH", help="another ftcore/loop.py, as 'before'")
    parser.add_argument("bench", nargs="*", help="any of: %s" % ", ".join(contenders(None)))
    args = parser.parse_args()
    unknown = set(args.bench) - set(contenders(None))
    if unknown:
        parser.error("unknown bench: %s" % ", ".join(sorted(unknown)))
    make_before = load_loop(args.against) if args.against else None
    return run(args.rounds, args.n, args.bench, make_before)


if __name__ == "__main__":
    sys.exit(main())
