"""TCP: 64-byte echo round trips per second (one in flight), and 1 GiB one-way throughput.

    python bench/tcp.py [--rounds 5] [--count 20000] [--gib 1] [--no-pin] [--only ...]
                        [--quick] [--json PATH]

Clients, each against the same servers in other processes:

* echo, one 64-byte message in flight on one connection:
  ``blocking`` (a blocking stdlib socket: sendall, recv), ``asyncio`` (asyncio streams:
  write, readexactly) and ``ftcore`` in both calling styles: callbacks (a `TCPSocket` that
  writes the next message from its onMessage listener) and the caller's thread (it writes,
  then waits for the echo that onMessage queues, or takes it from `sock.iter_messages()`,
  also on a host-driven runtime, `Runtime(autostart=False)`, where that thread runs the loop).
  Goals (callbacks): ftcore at least 0.8x blocking and 1.5x asyncio.
* one-way, 1 GiB sent in 1 MiB chunks, timed until the server acknowledges the last byte:
  ``blocking`` (sendall), ``asyncio`` (write, drain) and ``ftcore`` (write while it returns
  True, go on at onDrain). Goal: ftcore at least 0.8x blocking.

The servers are a small C program compiled with gcc when it is available (else a blocking
Python server). Pinning (`taskset -c` / `sched_setaffinity`): the client and the echo server
share CPU 0, so each round trip pays for both sides on one core (one in flight: nothing runs in
parallel anyway); the one-way server runs on CPU 1, the client on CPU 0. Every client is
warmed up the same way; rounds are interleaved (the order reversed every other round); the
medians are printed with their ratios (of the medians, and the median of the ratios within
each round, which is robust to load drifting on a shared machine), plus the client process's
CPU time per operation.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), os.path.join(os.path.dirname(HERE), "plugins")]

import ftcore  # noqa: E402
from bench.results import (  # noqa: E402
    CALLBACKS,
    CALLER,
    NO_STYLE,
    ONE_CPU,
    SPLIT,
    UNPINNED,
    Goal,
    Results,
    add_arguments,
)

PAYLOAD = b"x" * 64
CHUNK = bytes(range(256)) * 4096  # 1 MiB
CONFIG = {"tcp": {"bannedPorts": []}, "limits": {"tcpCreatesPer5Min": 10000}}

SERVER_C = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
/* server echo|sink: prints its port; serves one connection at a time.
   echo: returns every byte until EOF.
   sink: reads an 8-byte big-endian length, then that many bytes, then answers one byte. */
int main(int argc, char **argv) {
    int sink = argc > 1 && argv[1][0] == 's';
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a; memset(&a, 0, sizeof a);
    a.sin_family = AF_INET; a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(lfd, (void *)&a, len) || listen(lfd, 16)) { perror("listen"); return 1; }
    getsockname(lfd, (void *)&a, &len);
    printf("%d\n", ntohs(a.sin_port)); fflush(stdout);
    static char buf[1 << 20];
    for (;;) {
        int fd = accept(lfd, 0, 0);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (!sink) {
            ssize_t n;
            while ((n = read(fd, buf, sizeof buf)) > 0)
                for (ssize_t off = 0; off < n;) { ssize_t w = write(fd, buf + off, n - off);
                    if (w <= 0) break; off += w; }
        } else {
            unsigned char head[8]; size_t got = 0;
            while (got < 8) {
                ssize_t n = read(fd, head + got, 8 - got); if (n <= 0) break; got += n; }
            uint64_t want = 0; for (int i = 0; i < 8; i++) want = (want << 8) | head[i];
            uint64_t seen = 0; ssize_t n = 1;
            while (seen < want && (n = read(fd, buf, sizeof buf)) > 0) seen += n;
            if (seen >= want) write(fd, "k", 1);
            while (read(fd, buf, sizeof buf) > 0) {}
        }
        close(fd);
    }
}
"""

SERVER_PY = r"""
import socket, struct, sys
sink = sys.argv[1] == "sink"
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(16)
print(l.getsockname()[1], flush=True)
while True:
    c, _ = l.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not sink:
        while True:
            d = c.recv(1 << 20)
            if not d: break
            c.sendall(d)
    else:
        head = b""
        while len(head) < 8: head += c.recv(8 - len(head))
        want, = struct.unpack("!Q", head); seen = 0
        while seen < want:
            d = c.recv(1 << 20)
            if not d: break
            seen += len(d)
        c.sendall(b"k")
        while c.recv(1 << 20): pass
    c.close()
"""


def start_server(mode: str, cpu: Optional[int], workdir: str) -> Tuple[subprocess.Popen, int, str]:
    gcc = shutil.which("gcc") or shutil.which("cc")
    kind = "python"
    argv = [sys.executable, "-c", SERVER_PY, mode]
    if gcc:
        source = os.path.join(workdir, "server.c")
        binary = os.path.join(workdir, "server")
        if not os.path.exists(binary):
            with open(source, "w") as f:
                f.write(SERVER_C)
            subprocess.run([gcc, "-O2", "-o", binary, source])
        if os.path.exists(binary):
            argv, kind = [binary, mode], "C"
    if cpu is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", str(cpu)] + argv
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, port, kind


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _ftcore_connected(rt: "ftcore.Runtime", port: int) -> Tuple["ftcore.TCPSocket", List[dict]]:
    """An ftcore TCPSocket connected to the loopback `port`, and the list its errors go to
    (on a host-driven runtime, this thread runs the loop's passes until then)."""
    sock = rt.createTCPSocket()
    connected = threading.Event()
    errors: List[dict] = []
    sock.onConnect(lambda res: connected.set())
    sock.onError(errors.append)
    sock.connect({"address": "127.0.0.1", "port": port})
    deadline = time.monotonic() + 10
    if rt.host_driven:
        while not connected.is_set() and time.monotonic() < deadline:
            rt.loop.run_once(0.1)
    if not connected.wait(max(0.0, deadline - time.monotonic())):
        raise RuntimeError("ftcore did not connect: %r" % errors)
    return sock, errors


# -- echo: round trips per second ------------------------------------------------------------


def echo_blocking(port: int, count: int) -> Tuple[float, float]:
    sock = _connect(port)
    size = len(PAYLOAD)
    cpu, start = time.process_time(), time.perf_counter()
    for _ in range(count):
        sock.sendall(PAYLOAD)
        got = sock.recv(size)
        while len(got) < size:
            got += sock.recv(size - len(got))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    sock.close()
    return count / elapsed, cpu / count


def echo_asyncio(port: int, count: int) -> Tuple[float, float]:
    async def main() -> Tuple[float, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        size = len(PAYLOAD)
        cpu, start = time.process_time(), time.perf_counter()
        for _ in range(count):
            writer.write(PAYLOAD)
            await reader.readexactly(size)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        writer.close()
        await writer.wait_closed()
        return count / elapsed, cpu / count

    return asyncio.run(main())


def echo_ftcore(port: int, count: int) -> Tuple[float, float]:
    with ftcore.Runtime(config=CONFIG, entrypoints=False) as rt:
        sock, errors = _ftcore_connected(rt, port)
        finished = threading.Event()
        size = len(PAYLOAD)
        state = {"n": 0, "pending": 0}
        write = sock.write

        def on_message(res: dict) -> None:
            state["pending"] += len(res["message"])
            if state["pending"] < size:
                return
            state["pending"] -= size
            state["n"] += 1
            if state["n"] >= count:
                finished.set()
            else:
                write(PAYLOAD)

        sock.onMessage(on_message)
        cpu, start = time.process_time(), time.perf_counter()
        write(PAYLOAD)
        if not finished.wait(120):
            raise RuntimeError("ftcore echo stalled at %d (errors: %r)" % (state["n"], errors))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        sock.close()
        return count / elapsed, cpu / count


def echo_ftcore_caller_thread(port: int, count: int) -> Tuple[float, float]:
    """The other calling style: the caller's thread writes, then waits for the echo."""
    with ftcore.Runtime(config=CONFIG, entrypoints=False) as rt:
        sock, errors = _ftcore_connected(rt, port)
        echoed: "queue.SimpleQueue[int]" = queue.SimpleQueue()
        size = len(PAYLOAD)
        pending = [0]

        def on_message(res: dict) -> None:
            pending[0] += len(res["message"])
            if pending[0] >= size:
                pending[0] -= size
                echoed.put(1)

        sock.onMessage(on_message)
        cpu, start = time.process_time(), time.perf_counter()
        for n in range(count):
            sock.write(PAYLOAD)
            try:
                echoed.get(timeout=120)
            except queue.Empty:
                raise RuntimeError("ftcore echo stalled at %d (errors: %r)" % (n, errors)) from None
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        sock.close()
        return count / elapsed, cpu / count


def echo_ftcore_iter(port: int, count: int, autostart: bool = True) -> Tuple[float, float]:
    """The caller's thread writes, then takes the echo from `sock.iter_messages()`."""
    with ftcore.Runtime(config=CONFIG, entrypoints=False, autostart=autostart) as rt:
        sock, errors = _ftcore_connected(rt, port)
        size = len(PAYLOAD)
        pending = 0
        with sock.iter_messages(timeout=120) as messages:
            receive = messages.__next__
            cpu, start = time.process_time(), time.perf_counter()
            for n in range(count):
                sock.write(PAYLOAD)
                try:
                    while pending < size:
                        pending += len(receive()["message"])
                except (TimeoutError, StopIteration):
                    raise RuntimeError(
                        "ftcore echo stalled at %d (errors: %r)" % (n, errors)
                    ) from None
                pending -= size
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        sock.close()
        return count / elapsed, cpu / count


def echo_ftcore_host_iter(port: int, count: int) -> Tuple[float, float]:
    """`echo_ftcore_iter` on a host-driven runtime: the caller's waits run the loop's passes
    and its writes go out inside the call, so no other thread is involved."""
    return echo_ftcore_iter(port, count, autostart=False)


# -- one way: bytes per second -------------------------------------------------------------


def stream_blocking(port: int, total: int) -> Tuple[float, float]:
    sock = _connect(port)
    cpu, start = time.process_time(), time.perf_counter()
    sock.sendall(struct.pack("!Q", total))
    for _ in range(total // len(CHUNK)):
        sock.sendall(CHUNK)
    assert sock.recv(1) == b"k"
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    sock.close()
    return total / elapsed, cpu / (total / 2**20)


def stream_asyncio(port: int, total: int) -> Tuple[float, float]:
    async def main() -> Tuple[float, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        cpu, start = time.process_time(), time.perf_counter()
        writer.write(struct.pack("!Q", total))
        for _ in range(total // len(CHUNK)):
            writer.write(CHUNK)
            await writer.drain()
        assert await reader.readexactly(1) == b"k"
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        writer.close()
        await writer.wait_closed()
        return total / elapsed, cpu / (total / 2**20)

    return asyncio.run(main())


def stream_ftcore(port: int, total: int) -> Tuple[float, float]:
    with ftcore.Runtime(config=CONFIG, entrypoints=False) as rt:
        sock, errors = _ftcore_connected(rt, port)
        finished = threading.Event()
        state = {"sent": 0}
        write = sock.write

        def produce(res: object = None) -> None:
            while state["sent"] < total:
                state["sent"] += len(CHUNK)
                if not write(CHUNK):
                    return

        sock.onDrain(produce)
        sock.onMessage(lambda res: finished.set())
        cpu, start = time.process_time(), time.perf_counter()
        write(struct.pack("!Q", total))
        rt.loop.call_soon_threadsafe(produce)  # the producer runs on the loop, as onDrain does
        if not finished.wait(600):
            raise RuntimeError("ftcore stream stalled at %d (errors: %r)" % (state["sent"], errors))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        sock.close()
        return total / elapsed, cpu / (total / 2**20)


Client = Callable[[int, int], Tuple[float, float]]
# (name, calling style, client, ftcore's?)
ECHO: List[Tuple[str, str, Client, bool]] = [
    ("blocking", CALLER, echo_blocking, False),
    ("asyncio", CALLBACKS, echo_asyncio, False),
    ("ftcore", CALLBACKS, echo_ftcore, True),
    ("ftcore", CALLER, echo_ftcore_caller_thread, True),
    ("ftcore iter_messages", CALLER, echo_ftcore_iter, True),
    ("ftcore host-driven iter_messages", CALLER, echo_ftcore_host_iter, True),
]
STREAM: List[Tuple[str, str, Client, bool]] = [
    ("blocking", NO_STYLE, stream_blocking, False),
    ("asyncio", NO_STYLE, stream_asyncio, False),
    ("ftcore", NO_STYLE, stream_ftcore, True),
]
GOALS = {  # issue 13, for the ftcore rows of issue 13's table
    ("echo", CALLBACKS): [Goal("blocking", ratio=0.8), Goal("asyncio", ratio=1.5)],
    ("one-way", NO_STYLE): [Goal("blocking", ratio=0.8)],
}
Samples = Dict[Tuple[str, str], List[Tuple[float, float]]]


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=20000, help="echo round trips per run")
    parser.add_argument("--gib", type=float, default=1.0, help="GiB per one-way run")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=("blocking", "asyncio", "ftcore"),
        default=["blocking", "asyncio", "ftcore"],
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.count, args.gib = min(args.rounds, 3), min(args.count, 3000), 1 / 16
    total = max(1, int(args.gib * 1024)) * len(CHUNK)
    two_cpus = args.pin and hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1
    if args.pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # the loop thread made later inherits it
    echo = [client for client in ECHO if client[0].split()[0] in args.only]
    if not hasattr(ftcore.TCPSocket, "iter_messages"):
        print("ftcore iter_messages: skipped (TCPSocket has no iter_messages() in this tree)")
        iterating = (echo_ftcore_iter, echo_ftcore_host_iter)
        echo = [client for client in echo if client[2] not in iterating]
    stream = [client for client in STREAM if client[0] in args.only]
    echo_samples: Samples = {(name, style): [] for name, style, _, _ in echo}
    stream_samples: Samples = {(name, style): [] for name, style, _, _ in stream}
    with tempfile.TemporaryDirectory() as workdir:
        echo_proc, echo_port, kind = start_server("echo", 0 if args.pin else None, workdir)
        sink_proc, sink_port, _ = start_server("sink", 1 if two_cpus else None, workdir)
        try:
            print(
                "TCP, %s servers, Python %s; echo: %d-byte messages, one in flight, %d per run; "
                "one-way: %d MiB per run; %d rounds; %s"
                % (
                    kind,
                    sys.version.split()[0],
                    len(PAYLOAD),
                    args.count,
                    total // 2**20,
                    args.rounds,
                    (
                        "client and echo server on CPU 0, one-way server on CPU 1"
                        if two_cpus
                        else "client and servers on CPU 0"
                    )
                    if args.pin
                    else "not pinned",
                )
            )
            for _, _, client, _ in echo:  # the same warm-up for every client
                client(echo_port, min(2000, args.count))
            for _, _, client, _ in stream:
                client(sink_port, min(64 * len(CHUNK), total))
            for round_no in range(args.rounds):
                forward = round_no % 2 == 0
                for name, style, client, _ in echo if forward else echo[::-1]:
                    echo_samples[name, style].append(client(echo_port, args.count))
                for name, style, client, _ in stream if forward else stream[::-1]:
                    stream_samples[name, style].append(client(sink_port, total))
                print(
                    "  round %d: echo %s; one-way %s"
                    % (
                        round_no + 1,
                        ", ".join(
                            "%s (%s) %.0f/s" % (k + (v[-1][0],)) for k, v in echo_samples.items()
                        ),
                        ", ".join(
                            "%s %.0f MiB/s" % (k[0], v[-1][0] / 2**20)
                            for k, v in stream_samples.items()
                        ),
                    )
                )
        finally:
            for proc in (echo_proc, sink_proc):
                proc.kill()
                proc.wait()
    results = Results("tcp", "TCP", quick=args.quick, servers="%s servers" % kind)
    pin_echo = ONE_CPU if args.pin else UNPINNED
    pin_stream = (SPLIT if two_cpus else ONE_CPU) if args.pin else UNPINNED
    for key, clients, samples, unit, scale, pinning, cpu_unit in (
        ("echo", echo, echo_samples, "round trips/s", 1.0, pin_echo, "client_cpu_us_per_rt"),
        ("one-way", stream, stream_samples, "MiB/s", 2.0**20, pin_stream,
         "client_cpu_us_per_mib"),
    ):  # fmt: skip
        title = "64 B echo" if key == "echo" else "%d MiB one-way" % (total // 2**20)
        workload = results.workload(title, unit, peer="blocking", pinning=pinning)
        for name, style, _, ours in clients:
            rates = [rate / scale for rate, _ in samples[name, style]]
            cpu = {cpu_unit: statistics.median(c * 1e6 for _, c in samples[name, style])}
            if ours:
                workload.ours(name, style, rates, goals=GOALS.get((key, style), ()), **cpu)
            else:
                workload.peer(name, style, rates, **cpu)
    results.print()
    results.write(args.json)


if __name__ == "__main__":
    main()
