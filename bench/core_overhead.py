"""ftcore's own CPU per request, with a transport that answers instantly (no sockets).

    python bench/core_overhead.py [--rounds 7] [--n 5000] [--profile] [--quick] [--json PATH]

What is left when the network costs nothing: options, policy hooks, the task lifecycle,
the inbox from transport to loop, result and profile building, callbacks. Two workloads,
interleaved round after round, medians of CPU microseconds per request (all threads):

* inline: `Runtime(autostart=False)` driven by `run_once` on this thread; the transport
  reports headers, body and end from `start()` itself; a success callback starts the next
  request. Only the core's loop-thread work, one thread, no wake-ups.
* worker: the default loop thread, a transport that answers from one worker thread (as the
  urllib3 transport does), and the caller blocking in `.result()`: adds the thread hops.

The process is pinned to CPU 0 (one-in-flight work: one CPU, as in the other benchmarks).
`--profile` prints a cProfile of the inline workload.
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "plugins")]

import ftcore  # noqa: E402
from bench.results import CALLBACKS, CALLER, UNPINNED, Results, add_arguments  # noqa: E402
from ftcore.transports import HttpRequest, HttpSink  # noqa: E402

URL = "http://127.0.0.1:8080/small"
BODY = b'{"ok":true,"n":1}'
HEADERS = [  # what nginx sends for bench/http.py's small GET
    ("Server", "nginx/1.22.1"),
    ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"),
    ("Content-Type", "application/json"),
    ("Content-Length", str(len(BODY))),
    ("Connection", "keep-alive"),
]


class _Exchange:
    def abort(self) -> None:
        pass


def _answer(sink: HttpSink) -> None:
    now = time.time() * 1000.0
    info: Dict[str, Any] = {
        "requestStart": now,
        "requestEnd": now,
        "peerIP": "127.0.0.1",
        "port": 8080,
        "responseStart": now,
        "socketReused": True,
    }
    sink.headers(200, list(HEADERS), dict(info))
    sink.body(BODY)
    info["receivedBytedCount"] = len(BODY)
    info["responseEnd"] = now
    info["sendBytesCount"] = 0
    sink.end(info)


class InlineTransport:
    """Answers from `start()`, on the loop thread."""

    def start(self, request: HttpRequest, sink: HttpSink) -> _Exchange:
        _answer(sink)
        return _Exchange()

    def close(self) -> None:
        pass


class WorkerTransport:
    """Answers from one worker thread, like a pool of blocking clients."""

    def __init__(self) -> None:
        self._jobs: "queue.SimpleQueue[Optional[HttpSink]]" = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            sink = self._jobs.get()
            if sink is None:
                return
            _answer(sink)

    def start(self, request: HttpRequest, sink: HttpSink) -> _Exchange:
        self._jobs.put(sink)
        return _Exchange()

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join()


class _Plugin:
    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make

    @ftcore.hookimpl
    def ftcore_http_transport_make(self, runtime: Any) -> Any:
        return self._make()


def inline(n: int) -> float:
    """CPU µs per request, callback chain on a loop driven by this thread."""
    rt = ftcore.Runtime(plugins=[_Plugin(InlineTransport)], entrypoints=False, autostart=False)
    left = [n]

    def success(res: Dict[str, Any]) -> None:
        assert res["statusCode"] == 200
        left[0] -= 1
        if left[0]:
            rt.request({"url": URL, "success": success, "fail": fail})

    def fail(res: Dict[str, Any]) -> None:
        raise SystemExit("request failed: %r" % (res,))

    try:
        cpu = time.process_time()
        rt.request({"url": URL, "success": success, "fail": fail})
        while left[0]:
            rt.loop.run_once(0)
        return (time.process_time() - cpu) / n * 1e6
    finally:
        rt.close()


def worker(n: int) -> float:
    """CPU µs per request (all threads): loop thread, worker thread, caller in `.result()`."""
    rt = ftcore.Runtime(plugins=[_Plugin(WorkerTransport)], entrypoints=False)
    try:
        rt.request(url=URL).result(10)  # the transport made, its thread started
        cpu = time.process_time()
        for _ in range(n):
            assert rt.request(url=URL).result(10)["statusCode"] == 200
        return (time.process_time() - cpu) / n * 1e6
    finally:
        rt.close()


def profile(n: int) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    inline(n)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=5000, help="requests per workload per round")
    parser.add_argument("--profile", action="store_true", help="cProfile the inline workload")
    add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.n = min(args.rounds, 3), min(args.n, 1000)
    if args.profile:
        profile(args.n)
        return
    pinned = hasattr(os, "sched_setaffinity")
    if pinned:
        os.sched_setaffinity(0, {0})  # the loop and worker threads made later inherit it
    inline(200), worker(200)  # warm: imports, caches
    results: Dict[str, List[float]] = {"inline": [], "worker": []}
    for _ in range(args.rounds):
        results["inline"].append(inline(args.n))
        results["worker"].append(worker(args.n))
    version = sys.version.split()[0]
    print("python %s; %d rounds x %d requests; medians" % (version, args.rounds, args.n))
    for name, values in results.items():
        print(
            "  %-8s %7.1f CPU us/request  (min %.1f, max %.1f)"
            % (name, statistics.median(values), min(values), max(values))
        )
    written = Results("core_overhead", "Core overhead", quick=args.quick)
    rows = written.workload(
        "ft.request with an instant transport (no sockets)",
        "CPU µs/request",
        higher_is_better=False,
        pinning="CPU 0" if pinned else UNPINNED,
        note="Inline: callbacks on a loop driven by run_once; worker: the loop thread, one "
        "transport worker thread, the caller in .result()",
    )
    rows.ours("ftcore inline", CALLBACKS, results["inline"])
    rows.ours("ftcore worker", CALLER, results["worker"])
    written.write(args.json)


if __name__ == "__main__":
    main()
