"""ftcore.loop.EventLoop beside asyncio's loop: call_soon, call_later, call_soon_threadsafe.

    python bench/loop.py [--rounds 7] [--n 100000]

Both loops are measured in the same process, in interleaved rounds (ftcore, asyncio, ftcore,
...), and the medians are compared. A ratio above 1.0 means ftcore does more per second.
Stdlib and ftcore only.

* call_soon: schedule N callbacks from the loop's own thread, then run them all.
* call_later: schedule N timers with random delays of up to 1 ms, run until every one fired.
* threadsafe: another thread submits N callbacks with call_soon_threadsafe while the loop
  runs on its own thread; the clock stops when the last one has run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import sys
import threading
import time
from typing import Callable, Dict, List

sys.path[:0] = [
    os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir),
]

from ftcore.loop import EventLoop  # noqa: E402

Bench = Callable[[int], float]


# -- call_soon --------------------------------------------------------------------------------


def ftcore_call_soon(n: int) -> float:
    loop = EventLoop()
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


def ftcore_call_later(n: int) -> float:
    loop = EventLoop()
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


# -- call_soon_threadsafe ---------------------------------------------------------------------


def _threadsafe(
    n: int, submit: Callable[[Callable[[], None]], object], last: threading.Event, count: List[int]
) -> float:
    def cb() -> None:
        count[0] += 1
        if count[0] == n:
            last.set()

    start = time.perf_counter()
    for _ in range(n):
        submit(cb)
    last.wait()
    return time.perf_counter() - start


def ftcore_threadsafe(n: int) -> float:
    loop = EventLoop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ready = threading.Event()
    loop.call_soon_threadsafe(ready.set)
    ready.wait()
    try:
        return _threadsafe(n, loop.call_soon_threadsafe, threading.Event(), [0])
    finally:
        loop.stop()
        thread.join()
        loop.close()


def asyncio_threadsafe(n: int) -> float:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ready = threading.Event()
    loop.call_soon_threadsafe(ready.set)
    ready.wait()
    try:
        return _threadsafe(n, loop.call_soon_threadsafe, threading.Event(), [0])
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


BENCHES: Dict[str, Dict[str, Bench]] = {
    "call_soon": {"ftcore": ftcore_call_soon, "asyncio": asyncio_call_soon},
    "call_later": {"ftcore": ftcore_call_later, "asyncio": asyncio_call_later},
    "threadsafe": {"ftcore": ftcore_threadsafe, "asyncio": asyncio_threadsafe},
}


def run(rounds: int, n: int, only: List[str]) -> int:
    print("python %s, n=%d, %d interleaved rounds, medians" % (sys.version.split()[0], n, rounds))
    print("%-12s %14s %14s %8s" % ("bench", "ftcore op/s", "asyncio op/s", "ratio"))
    worst = float("inf")
    for name, impls in BENCHES.items():
        if only and name not in only:
            continue
        times: Dict[str, List[float]] = {"ftcore": [], "asyncio": []}
        for _ in range(2):  # warm up both
            for impl in impls.values():
                impl(min(n, 10000))
        for r in range(rounds):
            order = ["ftcore", "asyncio"] if r % 2 == 0 else ["asyncio", "ftcore"]
            for which in order:
                gc.collect()
                times[which].append(impls[which](n))
        ft = n / statistics.median(times["ftcore"])
        aio = n / statistics.median(times["asyncio"])
        ratio = ft / aio
        worst = min(worst, ratio)
        print("%-12s %14.0f %14.0f %7.2fx" % (name, ft, aio, ratio))
    print("goal: >= 1.00x on each; worst %.2fx" % worst)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("bench", nargs="*", help="any of: %s" % ", ".join(BENCHES))
    args = parser.parse_args()
    unknown = set(args.bench) - set(BENCHES)
    if unknown:
        parser.error("unknown bench: %s" % ", ".join(sorted(unknown)))
    return run(args.rounds, args.n, args.bench)


if __name__ == "__main__":
    sys.exit(main())
