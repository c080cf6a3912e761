"""UDP ping-pong: 64-byte echo datagrams per second, one in flight.

    python bench/udp.py [--rounds 5] [--count 20000] [--family udp4|udp6] [--no-pin]
                        [--quick] [--json PATH]

Clients, each against the same echo server in another process:

* ``blocking``: a blocking stdlib socket, connected, send then recv (the caller's thread);
* ``selectors``: a bare `selectors` loop (non-blocking sendto, select, recvfrom);
* ``asyncio``: an asyncio `DatagramProtocol` that answers from `datagram_received`;
* ``ftcore``, callbacks: a `UDPSocket` that sends the next datagram from its onMessage
  listener (goal: at least 1.0x blocking);
* ``ftcore``, caller's thread: the caller sends, then waits for the echo that onMessage puts
  on a queue (goal: at least 0.8x blocking);
* ``ftcore iter_messages``, caller's thread: the caller sends, then takes the echo from
  `sock.iter_messages()` (skipped, saying so, where UDPSocket has no such method);
* ``ftcore host-driven iter_messages``, caller's thread: the same on `Runtime(autostart=False)`,
  where the waiting caller runs the loop's passes itself: no thread hop.

The echo server is a small C program compiled with gcc when it is available (else a blocking
Python server). Client and server are pinned to CPU 0 (`taskset -c 0` / `sched_setaffinity`),
so each round trip pays for both sides on one core, as on a busy host. Every client is warmed
up the same way, then rounds are interleaved (the order reversed every other round) and the
medians are printed with their ratio to the blocking socket (of the medians, and the median of
the ratios within each round), plus the client process's CPU time per round trip, which load
on the machine disturbs much less than the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import selectors
import shutil
import socket
import statistics
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
    ONE_CPU,
    UNPINNED,
    Goal,
    Results,
    add_arguments,
)

PAYLOAD = b"x" * 64

ECHO_C = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
int main(int argc, char **argv) {  /* echo <v6?>: prints its port, returns every datagram */
    int v6 = argc > 1 && argv[1][0] == '6';
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_storage ss; memset(&ss, 0, sizeof ss);
    if (v6) { struct sockaddr_in6 *a = (void *)&ss; a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback; }
    else { struct sockaddr_in *a = (void *)&ss; a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK); }
    socklen_t len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (void *)&ss, len)) { perror("bind"); return 1; }
    getsockname(fd, (void *)&ss, &len);
    printf("%d\n", ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                            : ((struct sockaddr_in *)&ss)->sin_port));
    fflush(stdout);
    static char buf[65536];
    for (;;) {
        struct sockaddr_storage from; socklen_t flen = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (void *)&from, &flen);
        if (n >= 0) sendto(fd, buf, n, 0, (void *)&from, flen);
    }
}
"""

ECHO_PY = r"""
import socket, sys
v6 = sys.argv[1] == "6"
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("::1" if v6 else "127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while True:
    data, peer = s.recvfrom(65536)
    s.sendto(data, peer)
"""


def start_server(v6: bool, pin: bool, workdir: str) -> Tuple[subprocess.Popen, int, str]:
    gcc = shutil.which("gcc") or shutil.which("cc")
    kind = "python"
    argv = [sys.executable, "-c", ECHO_PY, "6" if v6 else "4"]
    if gcc:
        source = os.path.join(workdir, "echo.c")
        binary = os.path.join(workdir, "echo")
        with open(source, "w") as f:
            f.write(ECHO_C)
        if subprocess.run([gcc, "-O2", "-o", binary, source]).returncode == 0:
            argv, kind = [binary, "6" if v6 else "4"], "C"
    if pin and shutil.which("taskset"):
        argv = ["taskset", "-c", "0"] + argv
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, port, kind


def bench_blocking(family: int, addr: Tuple[str, int], count: int) -> Tuple[float, float]:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(5)
    sock.connect(addr)
    cpu, start = time.process_time(), time.perf_counter()
    for _ in range(count):
        sock.send(PAYLOAD)
        sock.recv(65536)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    sock.close()
    return count / elapsed, cpu / count


def bench_selectors(family: int, addr: Tuple[str, int], count: int) -> Tuple[float, float]:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    cpu, start = time.process_time(), time.perf_counter()
    sock.sendto(PAYLOAD, addr)
    done = 0
    while done < count:
        for _key, _ in sel.select(5):
            data, peer = sock.recvfrom(65536)
            done += 1
            sock.sendto(data, addr)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    sel.close()
    sock.close()
    return done / elapsed, cpu / done


def bench_asyncio(family: int, addr: Tuple[str, int], count: int) -> Tuple[float, float]:
    class Ping(asyncio.DatagramProtocol):
        def __init__(self, done: "asyncio.Future[None]") -> None:
            self.n = 0
            self.done = done

        def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
            self.transport = transport

        def datagram_received(self, data: bytes, peer) -> None:  # type: ignore[no-untyped-def]
            self.n += 1
            if self.n >= count:
                self.done.set_result(None)
            else:
                self.transport.sendto(data, addr)

    async def main() -> Tuple[float, float]:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        transport, proto = await loop.create_datagram_endpoint(
            lambda: Ping(done),
            family=family,
            local_addr=("::1" if family == socket.AF_INET6 else "127.0.0.1", 0),
        )
        cpu, start = time.process_time(), time.perf_counter()
        transport.sendto(PAYLOAD, addr)
        await asyncio.wait_for(done, 60)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        transport.close()
        return count / elapsed, cpu / count

    return asyncio.run(main())


def _ftcore_bound(rt: "ftcore.Runtime", family: int) -> Tuple["ftcore.UDPSocket", List[dict]]:
    """An ftcore UDPSocket bound to a free port, and the list its errors go to."""
    sock = rt.createUDPSocket("udp6" if family == socket.AF_INET6 else "udp4")
    errors: List[dict] = []
    sock.onError(errors.append)
    sock.bind(0)
    return sock, errors


def bench_ftcore(family: int, addr: Tuple[str, int], count: int) -> Tuple[float, float]:
    with ftcore.Runtime(entrypoints=False) as rt:
        sock, errors = _ftcore_bound(rt, family)
        finished = threading.Event()
        n = 0
        host, port = addr[0], addr[1]
        send = sock.send

        def on_message(res: dict) -> None:
            nonlocal n
            n += 1
            if n >= count:
                finished.set()
            else:
                send({"address": host, "port": port, "message": res["message"]})

        sock.onMessage(on_message)
        cpu, start = time.process_time(), time.perf_counter()
        send({"address": host, "port": port, "message": PAYLOAD})
        if not finished.wait(60):
            raise RuntimeError("ftcore ping-pong stalled at %d (errors: %r)" % (n, errors))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        sock.close()
        return count / elapsed, cpu / count


def bench_ftcore_caller(family: int, addr: Tuple[str, int], count: int) -> Tuple[float, float]:
    """The caller's thread sends, then waits for the echo that onMessage queues."""
    with ftcore.Runtime(entrypoints=False) as rt:
        sock, errors = _ftcore_bound(rt, family)
        echoed: "queue.SimpleQueue[dict]" = queue.SimpleQueue()
        host, port = addr[0], addr[1]
        send, get = sock.send, echoed.get
        sock.onMessage(echoed.put)
        message = PAYLOAD
        cpu, start = time.process_time(), time.perf_counter()
        for n in range(count):
            send({"address": host, "port": port, "message": message})
            try:
                message = get(timeout=60)["message"]
            except queue.Empty:
                raise RuntimeError("ftcore echo stalled at %d (errors: %r)" % (n, errors)) from None
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        sock.close()
        return count / elapsed, cpu / count


def bench_ftcore_iter(
    family: int, addr: Tuple[str, int], count: int, autostart: bool = True
) -> Tuple[float, float]:
    """The caller's thread sends, then takes the echo from `sock.iter_messages()`."""
    with ftcore.Runtime(entrypoints=False, autostart=autostart) as rt:
        sock, errors = _ftcore_bound(rt, family)
        host, port = addr[0], addr[1]
        send = sock.send
        message = PAYLOAD
        with sock.iter_messages(timeout=60) as messages:
            receive = messages.__next__
            cpu, start = time.process_time(), time.perf_counter()
            for n in range(count):
                send({"address": host, "port": port, "message": message})
                try:
                    message = receive()["message"]
                except (TimeoutError, StopIteration):
                    raise RuntimeError(
                        "ftcore echo stalled at %d (errors: %r)" % (n, errors)
                    ) from None
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        sock.close()
        return count / elapsed, cpu / count


def bench_ftcore_host_iter(family: int, addr: Tuple[str, int], count: int) -> Tuple[float, float]:
    """`bench_ftcore_iter` on a host-driven runtime: the caller's waits run the loop."""
    return bench_ftcore_iter(family, addr, count, autostart=False)


Client = Callable[[int, Tuple[str, int], int], Tuple[float, float]]
# (name, calling style, client, ftcore's?)
CLIENTS: List[Tuple[str, str, Client, bool]] = [
    ("blocking", CALLER, bench_blocking, False),
    ("selectors", CALLBACKS, bench_selectors, False),
    ("asyncio", CALLBACKS, bench_asyncio, False),
    ("ftcore", CALLBACKS, bench_ftcore, True),
    ("ftcore", CALLER, bench_ftcore_caller, True),
    ("ftcore iter_messages", CALLER, bench_ftcore_iter, True),
    ("ftcore host-driven iter_messages", CALLER, bench_ftcore_host_iter, True),
]
GOALS = {  # issue 15
    CALLBACKS: [Goal("blocking", ratio=1.0)],
    CALLER: [Goal("blocking", ratio=0.8)],
}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=20000, help="round trips per client run")
    parser.add_argument("--family", choices=("udp4", "udp6"), default="udp4")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    names = sorted({name.split()[0] for name, _, _, _ in CLIENTS})
    parser.add_argument("--only", nargs="*", choices=names, default=names)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.count = min(args.rounds, 3), min(args.count, 3000)
    v6 = args.family == "udp6"
    family = socket.AF_INET6 if v6 else socket.AF_INET
    clients = [client for client in CLIENTS if client[0].split()[0] in args.only]
    if not hasattr(ftcore.UDPSocket, "iter_messages"):
        print("ftcore iter_messages: skipped (UDPSocket has no iter_messages() in this tree)")
        iterating = (bench_ftcore_iter, bench_ftcore_host_iter)
        clients = [client for client in clients if client[2] not in iterating]
    if args.pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    samples: Dict[Tuple[str, str], List[Tuple[float, float]]] = {
        (name, style): [] for name, style, _, _ in clients
    }
    with tempfile.TemporaryDirectory() as workdir:
        proc, port, kind = start_server(v6, args.pin, workdir)
        try:
            addr = ("::1" if v6 else "127.0.0.1", port)
            print(
                "UDP ping-pong, %d-byte datagrams, one in flight, %d per run, %d rounds, %s, "
                "%s echo server, Python %s, %s"
                % (
                    len(PAYLOAD),
                    args.count,
                    args.rounds,
                    args.family,
                    kind,
                    sys.version.split()[0],
                    "client and server pinned to CPU 0" if args.pin else "not pinned",
                )
            )
            for _, _, client, _ in clients:  # the same warm-up for every client
                client(family, addr, min(2000, args.count))
            for round_no in range(args.rounds):
                for name, style, client, _ in clients if round_no % 2 == 0 else clients[::-1]:
                    samples[name, style].append(client(family, addr, args.count))
                print(
                    "  round %d: " % (round_no + 1)
                    + ", ".join("%s (%s) %.0f" % (k + (v[-1][0],)) for k, v in samples.items())
                )
        finally:
            proc.kill()
            proc.wait()
    results = Results("udp", "UDP", quick=args.quick, server="%s echo server" % kind)
    echo = results.workload(
        "64 B echo, %s" % args.family,
        "round trips/s",
        peer="blocking",
        pinning=ONE_CPU if args.pin else UNPINNED,
    )
    for name, style, _, ours in clients:
        rates = [rate for rate, _ in samples[name, style]]
        cpu_us = statistics.median(cpu * 1e6 for _, cpu in samples[name, style])
        if ours:
            echo.ours(name, style, rates, goals=GOALS[style], client_cpu_us_per_rt=cpu_us)
        else:
            echo.peer(name, style, rates, client_cpu_us_per_rt=cpu_us)
    results.print()
    results.write(args.json)


if __name__ == "__main__":
    main()
