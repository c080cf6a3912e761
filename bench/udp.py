"""UDP ping-pong: 64-byte echo datagrams per second, one in flight.

    python bench/udp.py [--rounds 5] [--count 20000] [--family udp4|udp6] [--no-pin]

Clients, each against the same echo server in another process:

* ``selectors``: a bare `selectors` loop (non-blocking sendto, select, recvfrom): the baseline;
* ``blocking``: a blocking stdlib sendto/recvfrom loop;
* ``asyncio``: an asyncio `DatagramProtocol` that answers from `datagram_received`;
* ``ftcore``: a `UDPSocket` that sends the next datagram from its onMessage listener
  (goal: at least 0.7x the selectors baseline).

The echo server is a small C program compiled with gcc when it is available (else a blocking
Python server). Client and server are pinned to CPU 0 (`taskset -c 0` / `sched_setaffinity`),
so each round trip pays for both sides on one core, as on a busy host; rounds are interleaved
and the medians are printed with their ratio to the selectors baseline (of the medians, and
the median of the ratios within each round), plus the client process's CPU time per round
trip, which load on the machine disturbs much less than the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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


def bench_blocking(family: int, addr: Tuple[str, int], count: int) -> Tuple[float, float]:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(5)
    cpu, start = time.process_time(), time.perf_counter()
    for _ in range(count):
        sock.sendto(PAYLOAD, addr)
        sock.recvfrom(65536)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    sock.close()
    return count / elapsed, cpu / count


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


def bench_ftcore(family: int, addr: Tuple[str, int], count: int) -> Tuple[float, float]:
    with ftcore.Runtime(entrypoints=False) as rt:
        sock = rt.createUDPSocket("udp6" if family == socket.AF_INET6 else "udp4")
        finished = threading.Event()
        errors: List[dict] = []
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
        sock.onError(errors.append)
        sock.bind(0)
        cpu, start = time.process_time(), time.perf_counter()
        send({"address": host, "port": port, "message": PAYLOAD})
        if not finished.wait(60):
            raise RuntimeError("ftcore ping-pong stalled at %d (errors: %r)" % (n, errors))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        sock.close()
        return count / elapsed, cpu / count


CLIENTS: Dict[str, Callable[[int, Tuple[str, int], int], Tuple[float, float]]] = {
    "selectors": bench_selectors,
    "blocking": bench_blocking,
    "asyncio": bench_asyncio,
    "ftcore": bench_ftcore,
}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=20000, help="round trips per client run")
    parser.add_argument("--family", choices=("udp4", "udp6"), default="udp4")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--only", nargs="*", choices=sorted(CLIENTS), default=list(CLIENTS))
    args = parser.parse_args(argv)
    v6 = args.family == "udp6"
    family = socket.AF_INET6 if v6 else socket.AF_INET
    if args.pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
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
            names = [name for name in CLIENTS if name in args.only]
            for name in names:  # warm up each client once
                CLIENTS[name](family, addr, min(2000, args.count))
            rates: Dict[str, List[float]] = {name: [] for name in names}
            cpus: Dict[str, List[float]] = {name: [] for name in names}
            for round_no in range(args.rounds):
                for name in names:
                    rate, cpu = CLIENTS[name](family, addr, args.count)
                    rates[name].append(rate)
                    cpus[name].append(cpu * 1e6)
                print(
                    "  round %d: " % (round_no + 1)
                    + ", ".join("%s %.0f" % (n, rates[n][-1]) for n in names)
                )
        finally:
            proc.kill()
            proc.wait()
    base = rates.get("selectors")
    print(
        "%-10s %10s %7s %12s %14s" % ("client", "median/s", "ratio", "round ratio", "client CPU/rt")
    )
    for name in names:
        median = statistics.median(rates[name])
        if base:
            ratio = "%.2fx" % (median / statistics.median(base))
            # the ratio inside each round first: robust to load drifting between rounds
            per_round = "%.2fx" % statistics.median(r / b for r, b in zip(rates[name], base))
        else:
            ratio = per_round = "-"
        cpu = "%.1f us" % statistics.median(cpus[name])
        print("%-10s %10.0f %7s %12s %14s" % (name, median, ratio, per_round, cpu))


if __name__ == "__main__":
    main()
