"""Benchmark: opening an HTTP connection the two ways ftcore could, from the loop's view.

    python bench/dial.py [--quick] [--json PATH]

Issue 13 asks whether urllib3 should keep dialling for HTTP or the stream layer's own dial
(`ftcore._net.Dial`) should replace it. Both are measured as the HTTP transport would use
them, from a request on the loop thread to a connected socket back on the loop thread:

* `urllib3 on a worker`: what the transport does today. The loop hands the connection to a
  worker thread, `HTTPConnection.connect()` blocks there (DNS, TCP, and TLS when asked),
  and the worker hands the socket back with `call_soon_threadsafe`.
* `net.dial`: the stream layer. A name is resolved on a worker (an IP literal skips it),
  the connect and the TLS handshake run non-blocking on the loop.

One connection in flight, client and server on CPU 0 (`taskset -c 0`), plain TCP and TLS
(certificates by trustme), by IP literal and by name (`localhost`); contenders alternate
round after round, medians reported. The server accepts and closes in its own thread.
"""

from __future__ import annotations

import argparse
import os
import queue
import socket
import ssl
import statistics
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

# bench/ holds http.py: keep it off sys.path, or it shadows the stdlib package urllib3 needs.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
ROOT = os.path.dirname(_HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "plugins")]

from bench.results import ONE_CPU, NO_STYLE, Results  # noqa: E402

ROUNDS = 5
SECONDS = 0.5


class Server:
    """Accepts and closes (after the TLS handshake when it has a context)."""

    def __init__(self, context: Optional[ssl.SSLContext]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.context = context
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                if self.context is not None:
                    conn = self.context.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                pass
            conn.close()

    def close(self) -> None:
        self.sock.close()


class Bench:
    """One event loop on its own thread; each contender opens connections one at a time."""

    def __init__(self, tls: Any) -> None:
        from ftcore._net import Net
        from ftcore.loop import EventLoop

        self.loop = EventLoop()
        self.net = Net(self.loop)
        self.tls = tls
        self.jobs: "queue.SimpleQueue[Optional[Callable[[], None]]]" = queue.SimpleQueue()
        self.worker = threading.Thread(target=self._work, daemon=True)
        self.worker.start()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            job()

    def rate(self, start_one: Callable[[Callable[[], None]], None], seconds: float) -> float:
        """Connections per second, each started on the loop once the last one was back."""
        done = threading.Event()
        count = [0]
        deadline = time.perf_counter() + seconds

        def again() -> None:
            count[0] += 1
            if time.perf_counter() < deadline:
                start_one(again)
            else:
                done.set()

        began = time.perf_counter()
        self.loop.call_soon_threadsafe(start_one, again)
        done.wait(seconds + 30)
        return count[0] / (time.perf_counter() - began)

    def urllib3_worker(self, host: str, port: int, tls: bool) -> Callable[..., None]:
        from urllib3.connection import HTTPConnection, HTTPSConnection

        context = self.net.tls.get(self.tls) if tls else None

        def start_one(again: Callable[[], None]) -> None:
            def dial() -> None:
                if tls:
                    conn: Any = HTTPSConnection(host, port, ssl_context=context)
                else:
                    conn = HTTPConnection(host, port)
                conn.connect()
                conn.sock.setblocking(False)
                self.loop.call_soon_threadsafe(_close_then, conn, again)

            self.jobs.put(dial)

        return start_one

    def net_dial(self, host: str, port: int, tls: bool) -> Callable[..., None]:
        from ftcore._net import Connected

        settings = self.tls if tls else None

        def start_one(again: Callable[[], None]) -> None:
            def done(result: Any) -> None:
                assert isinstance(result, Connected), result
                result.sock.close()
                again()

            self.net.dial(host, port, done, tls=settings, timeout=10.0)

        return start_one

    def close(self) -> None:
        self.jobs.put(None)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.net.close()
        self.loop.close()


def _close_then(conn: Any, again: Callable[[], None]) -> None:
    conn.close()
    again()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two short rounds")
    parser.add_argument("--json", help="write the rows here (bench/results.py schema)")
    args = parser.parse_args()
    if (
        not args.quick
        and os.environ.get("FTCORE_BENCH_PINNED") != "1"
        and hasattr(os, "sched_setaffinity")
    ):
        os.environ["FTCORE_BENCH_PINNED"] = "1"
        os.execvp("taskset", ["taskset", "-c", "0", sys.executable] + sys.argv)
    rounds, seconds = (2, 0.2) if args.quick else (ROUNDS, SECONDS)

    import trustme

    from ftcore.transports import TlsSettings

    authority = trustme.CA()
    cert = authority.issue_cert("localhost", "127.0.0.1")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    with open(os.path.join(_tmpdir(), "ca.pem"), "wb") as handle:
        handle.write(authority.cert_pem.bytes())
    settings = TlsSettings(cafile=handle.name)

    results = Results(
        "dial", "Dialling an HTTP connection", quick=args.quick, server="accept+close"
    )
    for tls in (False, True):
        server = Server(server_context if tls else None)
        bench = Bench(settings)
        try:
            for host in ("127.0.0.1", "localhost"):
                name = "connect %s%s" % (
                    "TLS " if tls else "TCP ",
                    "by IP" if host[0] == "1" else "by name",
                )
                contenders = {
                    "urllib3 on a worker": bench.urllib3_worker(host, server.port, tls),
                    "net.dial": bench.net_dial(host, server.port, tls),
                }
                samples: Dict[str, List[float]] = {key: [] for key in contenders}
                for start_one in contenders.values():  # the same warm-up for each
                    bench.rate(start_one, seconds / 4)
                for _ in range(rounds):
                    for key, start_one in contenders.items():
                        samples[key].append(bench.rate(start_one, seconds))
                row = results.workload(
                    name, "connections/s", peer="urllib3 on a worker", pinning=ONE_CPU
                )
                row.peer("urllib3 on a worker", NO_STYLE, samples["urllib3 on a worker"])
                row.ours("net.dial", NO_STYLE, samples["net.dial"])
                print(
                    "%-22s urllib3 on a worker %8.0f/s   net.dial %8.0f/s   (%.2fx)"
                    % (
                        name,
                        statistics.median(samples["urllib3 on a worker"]),
                        statistics.median(samples["net.dial"]),
                        statistics.median(samples["net.dial"])
                        / statistics.median(samples["urllib3 on a worker"]),
                    )
                )
        finally:
            bench.close()
            server.close()
    if args.json:
        results.write(args.json)


def _tmpdir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="ftcore-bench-dial-")


if __name__ == "__main__":
    main()
