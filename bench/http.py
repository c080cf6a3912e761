"""Benchmark: ft.request against http.client, urllib3, requests and aiohttp: small GETs,
keep-alive.

    python bench/http.py                 # the table (a few tens of seconds)
    python bench/http.py --quick         # a short smoke run
    python bench/http.py --json PATH     # also write the rows as JSON (bench/results.py)
    python bench/http.py --profile       # plus a cProfile of ft.request's per-request path

A fast HTTP/1.1 keep-alive server runs in its own process (nginx when installed, else a small
asyncio server). Each workload runs in a child process pinned to CPU 0 (`taskset -c 0`, so
the client is one CPU as in a mini-program host): one request in flight, with the server on
CPU 0 too (one core serving both ends of a latency-bound exchange), and ten in flight, with
the server on CPU 1. Within a child every contender is warmed up the same way, then the
contenders alternate, round after round, and the table reports medians: requests/s with the
ratio to http.client (one in flight) or aiohttp (ten in flight), and client CPU per request
(all threads of the client process). On a busy machine the CPU column is the steadier.

Both calling styles: ft.request with callbacks (each success starts the next request, on the
loop) and from the caller's thread (`.result()`; one in flight, also on a host-driven runtime,
`Runtime(autostart=False)`, whose waiting caller runs the loop itself: no thread hop); the
peers as they are used (http.client, urllib3 and requests from the caller's thread, ten
threads for ten in flight; aiohttp from its loop, ten tasks for ten in flight).

Goals (issue 15): ft.request callbacks >= 1.0x http.client with one in flight, `.result()`
>= 0.8x; callbacks >= 1.0x aiohttp with ten in flight.
"""

from __future__ import annotations

import os
import sys

# This file is named http.py: keep its directory off sys.path, or it shadows the stdlib package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "plugins")]

from bench.common import free_port, pinned, wait_listening  # noqa: E402
from bench.results import (  # noqa: E402
    CALLBACKS,
    CALLER,
    ONE_CPU,
    SPLIT,
    Goal,
    Results,
    add_arguments,
)

BODY = b'{"ok":true,"n":1}'
ROUNDS = 5
SECONDS = 0.6  # per contender per round
WARMUP_SECONDS = 0.1  # per contender, once, before the first round
QUICK = {"ROUNDS": 3, "SECONDS": 0.2}
CONCURRENCY = 10


# -- the server ----------------------------------------------------------------------------------


NGINX_CONF = """
worker_processes 1;
error_log stderr error;
pid %(prefix)s/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path %(prefix)s/body;
    proxy_temp_path %(prefix)s/proxy;
    fastcgi_temp_path %(prefix)s/fastcgi;
    uwsgi_temp_path %(prefix)s/uwsgi;
    scgi_temp_path %(prefix)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        location / { default_type application/json; return 200 '%(body)s'; }
    }
}
"""


def start_server(cpu: int) -> Tuple[subprocess.Popen, str, str, Optional[str]]:
    """(process, url, kind, temp dir to remove), the server pinned to `cpu` when it exists."""
    pin = pinned(cpu)
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if nginx:
        prefix = tempfile.mkdtemp(prefix="ftbench-nginx-")
        port = free_port()
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF % {"prefix": prefix, "port": port, "body": BODY.decode()})
        proc = subprocess.Popen(
            pin + [nginx, "-p", prefix, "-c", conf, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if wait_listening(port, 5):
            return proc, "http://127.0.0.1:%d/small" % port, "nginx", prefix
        proc.kill()
        proc.wait()
        shutil.rmtree(prefix, ignore_errors=True)
    port = free_port()
    proc = subprocess.Popen(pin + [sys.executable, __file__, "--serve", str(port)])
    if not wait_listening(port):
        proc.kill()
        raise SystemExit("the benchmark server did not start")
    return proc, "http://127.0.0.1:%d/small" % port, "python asyncio", None


def serve(port: int) -> None:
    """A minimal HTTP/1.1 keep-alive server: every request gets the same small response."""
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(BODY), BODY)
    )

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buffer = b""
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            count = self.buffer.count(b"\r\n\r\n")
            if count:
                self.buffer = self.buffer[self.buffer.rindex(b"\r\n\r\n") + 4 :]
                self.transport.write(response * count)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(
            Proto, "127.0.0.1", port, backlog=512
        )
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- contenders ---------------------------------------------------------------------------------


def rate(run: Callable[[float], int]) -> Tuple[float, float]:
    """(requests per second, client CPU microseconds per request, all threads)."""
    cpu = time.process_time()
    started = time.perf_counter()
    count = run(SECONDS)
    return count / (time.perf_counter() - started), (time.process_time() - cpu) / count * 1e6


class Contenders:
    def __init__(self, url: str) -> None:
        import requests
        import urllib3

        import ftcore

        self.url = url
        self.pm = urllib3.PoolManager(maxsize=CONCURRENCY)
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=CONCURRENCY)
        self.session.mount("http://", adapter)
        self.rt = ftcore.Runtime(entrypoints=False)
        # host-driven: the caller's `.result()` runs the loop's passes itself, no thread hop
        self.host_rt = ftcore.Runtime(entrypoints=False, autostart=False)
        self.connections: List[Any] = []  # http.client's, one per thread
        self.aio = asyncio.new_event_loop()  # aiohttp's loop, on this thread, as its users do
        self.aio_session = self.aio.run_until_complete(self._aiohttp_session())

    async def _aiohttp_session(self) -> Any:
        import aiohttp

        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY))

    def close(self) -> None:
        self.rt.close()
        self.host_rt.close()
        self.pm.clear()
        self.session.close()
        for conn in self.connections:
            conn.close()
        self.aio.run_until_complete(self.aio_session.close())
        self.aio.close()

    def http_client(self, i: int = 0) -> Callable[[], None]:
        """One GET on keep-alive `http.client` connection `i` (one per thread), made once and
        kept, as the pooled contenders keep theirs: no connect inside a timed round."""
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        while len(self.connections) <= i:
            self.connections.append(
                http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            )
        conn = self.connections[i]
        path = parts.path

        def one() -> None:
            conn.request("GET", path)
            response = conn.getresponse()
            assert response.status == 200 and response.read() == BODY

        return one

    # one in flight

    def http_client_seq(self, seconds: float) -> int:
        one, n = self.http_client(), 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            one()
            n += 1
        return n

    def urllib3_seq(self, seconds: float) -> int:
        request, url, n = self.pm.request, self.url, 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            response = request("GET", url)
            assert response.status == 200 and response.data == BODY
            n += 1
        return n

    def requests_seq(self, seconds: float) -> int:
        get, url, n = self.session.get, self.url, 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            response = get(url)
            assert response.status_code == 200 and response.content == BODY
            n += 1
        return n

    def aiohttp_seq(self, seconds: float) -> int:
        return self.aio.run_until_complete(self._aiohttp_tasks(seconds, 1))

    async def _aiohttp_tasks(self, seconds: float, tasks: int) -> int:
        """`tasks` coroutines, each awaiting one GET after another until `seconds` passed."""
        get, url, clock = self.aio_session.get, self.url, time.perf_counter
        end = clock() + seconds

        async def work() -> int:
            n = 0
            while clock() < end:
                async with get(url) as response:
                    assert response.status == 200 and await response.read() == BODY
                n += 1
            return n

        return sum(await asyncio.gather(*(work() for _ in range(tasks))))

    def ft_result_seq(self, seconds: float, host_driven: bool = False) -> int:
        request, url, n = (self.host_rt if host_driven else self.rt).request, self.url, 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            res = request(url=url).result()
            assert res["statusCode"] == 200
            n += 1
        return n

    def ft_host_result_seq(self, seconds: float) -> int:
        return self.ft_result_seq(seconds, host_driven=True)

    def ft_callback(self, seconds: float, chains: int = 1) -> int:
        """`chains` callback chains: each success launches the next request, on the loop."""
        request, url = self.rt.request, self.url
        end = time.perf_counter() + seconds
        done = threading.Event()
        state = {"n": 0, "live": chains}
        clock = time.perf_counter

        def success(res: Dict[str, Any]) -> None:
            assert res["statusCode"] == 200
            state["n"] += 1
            if clock() < end:
                request({"url": url, "success": success, "fail": fail})
            else:
                state["live"] -= 1
                if not state["live"]:
                    done.set()

        def fail(res: Dict[str, Any]) -> None:
            raise SystemExit("request failed: %r" % (res,))

        for _ in range(chains):
            request({"url": url, "success": success, "fail": fail})
        done.wait()
        return state["n"]

    def ft_callback_seq(self, seconds: float) -> int:
        return self.ft_callback(seconds, 1)

    # ten in flight

    def threads(self, seconds: float, one: Optional[Callable[[], None]], make: Any = None) -> int:
        """Ten threads calling `one()` (or thread i its own `make(i)`) until `seconds` passed."""
        calls = [one if make is None else make(i) for i in range(CONCURRENCY)]
        counts = [0] * CONCURRENCY
        failures: List[BaseException] = []
        end = time.perf_counter() + seconds

        def work(i: int) -> None:
            call = calls[i]
            assert call is not None
            n = 0
            try:
                while time.perf_counter() < end:
                    call()
                    n += 1
            except BaseException as exc:  # noqa: BLE001 - reported below, on the caller's thread
                failures.append(exc)
            counts[i] = n

        workers = [threading.Thread(target=work, args=(i,)) for i in range(CONCURRENCY)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        if failures:
            raise RuntimeError("a worker thread failed") from failures[0]
        return sum(counts)

    def http_client_conc(self, seconds: float) -> int:
        return self.threads(seconds, None, self.http_client)

    def urllib3_conc(self, seconds: float) -> int:
        request, url = self.pm.request, self.url
        return self.threads(seconds, lambda: request("GET", url))

    def requests_conc(self, seconds: float) -> int:
        get, url = self.session.get, self.url
        return self.threads(seconds, lambda: get(url))

    def aiohttp_conc(self, seconds: float) -> int:
        return self.aio.run_until_complete(self._aiohttp_tasks(seconds, CONCURRENCY))

    def ft_result_conc(self, seconds: float) -> int:
        request, url = self.rt.request, self.url
        return self.threads(seconds, lambda: request(url=url).result())

    def ft_callback_conc(self, seconds: float) -> int:
        return self.ft_callback(seconds, CONCURRENCY)


# (contender, calling style, method, ftcore's?) per workload; the peers' threads, tasks and
# chains are in each workload's note below
WORKLOADS: Dict[str, List[Tuple[str, str, str, bool]]] = {
    workload: [
        ("http.client", CALLER, "http_client_" + workload, False),
        ("urllib3", CALLER, "urllib3_" + workload, False),
        ("requests", CALLER, "requests_" + workload, False),
        ("aiohttp", CALLBACKS, "aiohttp_" + workload, False),
        ("ft.request", CALLBACKS, "ft_callback_" + workload, True),
        ("ft.request", CALLER, "ft_result_" + workload, True),
    ]
    for workload in ("seq", "conc")
}
# one in flight only: ten threads would take turns driving one host-driven loop
WORKLOADS["seq"].append(("ft.request host-driven", CALLER, "ft_host_result_seq", True))
TITLES = {
    "seq": "small GET, 1 in flight",
    "conc": "small GET, 10 in flight",
}
NOTES = {
    "seq": "One keep-alive connection each",
    "conc": "http.client, urllib3, requests and ft.request .result(): 10 threads; aiohttp: "
    "10 tasks; ft.request callbacks: 10 chains",
}
PEERS = {"seq": "http.client", "conc": "aiohttp"}
GOALS = {  # issue 15
    ("seq", CALLBACKS): [Goal("http.client", ratio=1.0)],
    ("seq", CALLER): [Goal("http.client", ratio=0.8)],
    ("conc", CALLBACKS): [Goal("aiohttp", ratio=1.0)],
}


def child(workload: str, url: str) -> None:
    bench = Contenders(url)
    contenders = WORKLOADS[workload]
    results: Dict[str, List[Tuple[float, float]]] = {
        "%s|%s" % (name, style): [] for name, style, _, _ in contenders
    }
    try:
        for _, _, method, _ in contenders:  # the same warm-up for every contender
            getattr(bench, method)(WARMUP_SECONDS)
        for round_no in range(ROUNDS):
            for name, style, method, _ in contenders if round_no % 2 == 0 else contenders[::-1]:
                results["%s|%s" % (name, style)].append(rate(getattr(bench, method)))
    finally:
        bench.close()
    print(json.dumps(results))


def run_child(workload: str, url: str, quick: bool) -> Dict[str, List[List[float]]]:
    out = subprocess.run(
        pinned(0)
        + [sys.executable, __file__, "--child", workload, url]
        + (["--quick"] if quick else []),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


# -- profile ------------------------------------------------------------------------------------


def profile(url: str, count: int = 3000) -> None:
    """cProfile of `count` sequential callback-style requests on the loop thread (where the
    whole exchange runs once the keep-alive connection is open)."""
    import cProfile
    import pstats

    import ftcore

    profiler = cProfile.Profile()  # enabled on the loop thread: it profiles that thread only
    rt = ftcore.Runtime(entrypoints=False)
    rt.request(url=url).result(10)  # warm: transport made, connection open
    done = threading.Event()
    left = [count]

    def success(res: Dict[str, Any]) -> None:
        left[0] -= 1
        if left[0]:
            rt.request({"url": url, "success": success})
        else:
            profiler.disable()
            done.set()

    started_on_loop = threading.Event()
    rt.loop.call_soon_threadsafe(lambda: (profiler.enable(), started_on_loop.set()))
    started_on_loop.wait()
    started = time.perf_counter()
    rt.request({"url": url, "success": success})
    done.wait()
    elapsed = time.perf_counter() - started
    rt.close()
    stats = pstats.Stats(profiler)
    print(
        "\nprofile: %d sequential callback requests, %.1f us/request wall (profiled)"
        % (count, elapsed / count * 1e6)
    )
    table = stats.stats  # type: ignore[attr-defined]
    total = sum(value[2] for value in table.values())
    buckets: Dict[str, float] = {}
    for (filename, _, name), value in table.items():
        if "ftcore_" in filename:
            key = "ftcore plugins: " + filename.split("plugins/")[-1]
        elif "urllib3" in filename:
            key = "urllib3"
        elif "http/client" in filename or "email" in filename:
            key = "http.client + email (used by urllib3)"
        elif filename == "~":
            key = "builtins: " + name
        elif "/ftcore/" in filename:
            key = "ftcore core: " + os.path.basename(filename)
        elif "pluggy" in filename:
            key = "pluggy (hook calls)"
        else:
            key = "stdlib: " + os.path.basename(filename)
        buckets[key] = buckets.get(key, 0.0) + value[2]
    print("own time by area (loop thread), %% of %.2fs profiled:" % total)
    for key, value in sorted(buckets.items(), key=lambda kv: -kv[1])[:25]:
        print("  %5.1f%%  %s" % (100 * value / total, key))
    print("\ntop functions by own time:")
    stats.sort_stats("tottime").print_stats(25)


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    global ROUNDS, SECONDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help="also profile ft.request")
    parser.add_argument("--profile-only", action="store_true", help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        ROUNDS, SECONDS = QUICK["ROUNDS"], QUICK["SECONDS"]
    if args.serve:
        serve(args.serve)
        return
    if args.child:
        child(*args.child)
        return
    if not args.profile_only:
        measure(args)
    if args.profile or args.profile_only:
        with server(1) as (url, _):
            profile(url)


def measure(args: argparse.Namespace) -> None:
    import urllib3

    print("%d rounds x %.1fs per contender, interleaved; medians" % (ROUNDS, SECONDS))
    print("python %s, urllib3 %s" % (sys.version.split()[0], urllib3.__version__))
    results = Results("http", "HTTP", quick=args.quick, urllib3=urllib3.__version__)
    for workload, server_cpu, pinning in (("seq", 0, ONE_CPU), ("conc", 1, SPLIT)):
        with server(server_cpu) as (url, kind):
            samples = run_child(workload, url, args.quick)
        results.notes["server"] = kind
        rows = results.workload(
            TITLES[workload],
            "requests/s",
            peer=PEERS[workload],
            pinning=pinning,
            note=NOTES[workload],
        )
        for name, style, _, ours in WORKLOADS[workload]:
            values = samples["%s|%s" % (name, style)]
            rates = [v[0] for v in values]
            cpu = {"client_cpu_us_per_request": statistics.median(v[1] for v in values)}
            if ours:
                rows.ours(name, style, rates, goals=GOALS.get((workload, style), ()), **cpu)
            else:
                rows.peer(name, style, rates, **cpu)
    results.print()
    results.write(args.json)


@contextlib.contextmanager
def server(cpu: int) -> Iterator[Tuple[str, str]]:
    """The benchmark server on `cpu`, for the time of the block: (url, kind)."""
    proc, url, kind, temp = start_server(cpu)
    try:
        yield url, kind
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
