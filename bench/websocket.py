#!/usr/bin/env python3
"""WebSocket benchmark: ftcore beside websockets, websocket-client(+wsaccel) and aiohttp.

    python bench/websocket.py [--rounds 5] [--small 20000] [--big 200] [--sockets 1000]

One run, interleaved rounds (each round runs every contender once, in turn), medians printed
with ratios against the goals:

* small echo: 32-byte text messages, one in flight, round trips per second;
* big echo: 1 MiB binary messages, one in flight, MiB echoed per second (each MiB goes out
  and comes back once);
* masking: MiB/s of our pure-Python `masking.mask` beside websockets' C `apply_mask`;
* fan-out: 1,000 ftcore sockets open at once on one loop, each echoing one message: wall time
  and RSS growth per socket (measured in a fresh child process).

The echo server runs in another process pinned to CPU 1: node's `ws` when `node` can load it
(`npm install ws` in /tmp/wsnode, or set NODE_PATH), else a `websockets` asyncio server;
compression off. The client side (this process, ftcore's loop thread included) is pinned to
CPU 0, like `taskset -c 0`, so every contender gets one core for the one-in-flight echoes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# This file is named websocket.py: keep its directory off the path so that `import websocket`
# finds websocket-client, not this script.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path[:0] = [ROOT, os.path.join(ROOT, "plugins")]

import ftcore  # noqa: E402
from ftcore_websocket import masking  # noqa: E402

SMALL = "x" * 32
BIG = bytes(range(256)) * 4096  # 1 MiB
MiB = 2**20

NODE_SERVER = r"""
const { WebSocketServer } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false,
                                  maxPayload: 64 * 1024 * 1024 });
wss.on('listening', () => console.log(wss.address().port));
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
"""

PY_SERVER = r"""
import asyncio, websockets
async def echo(ws):
    async for message in ws:
        await ws.send(message)
async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, compression=None, max_size=None,
                                ping_interval=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


def _raise_nofile(limit: int = 65536) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(limit, hard) if hard != resource.RLIM_INFINITY else limit
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def start_server(kind: str) -> Tuple[subprocess.Popen, str, str]:
    """The echo server process pinned to CPU 1; returns (process, url, description)."""
    env = dict(os.environ)
    env.setdefault("NODE_PATH", "/tmp/wsnode/node_modules")
    pin = ["taskset", "-c", "1"] if os.cpu_count() and os.cpu_count() > 1 else []
    if kind in ("auto", "node"):
        try:
            proc = subprocess.Popen(
                pin + ["node", "-e", NODE_SERVER],
                stdout=subprocess.PIPE,
                env=env,
                preexec_fn=_raise_nofile,
            )
            line = proc.stdout.readline().strip()  # type: ignore[union-attr]
            if line:
                return proc, "ws://127.0.0.1:%s/" % line.decode(), "node ws"
            proc.kill()
        except FileNotFoundError:
            pass
        if kind == "node":
            raise SystemExit("node ws server unavailable (npm install ws in /tmp/wsnode)")
    proc = subprocess.Popen(
        pin + [sys.executable, "-c", PY_SERVER], stdout=subprocess.PIPE, preexec_fn=_raise_nofile
    )
    line = proc.stdout.readline().strip()  # type: ignore[union-attr]
    return proc, "ws://127.0.0.1:%s/" % line.decode(), "websockets asyncio"


# -- contenders: each returns seconds for `count` round trips of `payload` -------------------------


def ftcore_echo(url: str, payload: Any, count: int) -> float:
    config = {"limits": {"wsMaxMessageBytes": 64 * MiB}}
    with ftcore.Runtime(config=config) as rt:
        opened = threading.Event()
        done = threading.Event()
        state = {"n": 0, "t0": 0.0, "t1": 0.0}
        task = rt.connectSocket(url=url, tcpNoDelay=True)
        task.onOpen(lambda res: opened.set())
        send = task.send

        def on_message(res: Dict[str, Any]) -> None:
            state["n"] += 1
            if state["n"] < count:
                send({"data": res["data"]})
            else:
                state["t1"] = time.perf_counter()
                done.set()

        task.onMessage(on_message)
        if not opened.wait(10):
            raise RuntimeError("ftcore did not open")
        state["t0"] = time.perf_counter()
        send({"data": payload})
        if not done.wait(300):
            raise RuntimeError("ftcore echo stalled at %d" % state["n"])
        task.close()
        return state["t1"] - state["t0"]


def websockets_echo(url: str, payload: Any, count: int) -> float:
    from websockets.sync.client import connect

    with connect(url, compression=None, max_size=None) as ws:
        ws.socket.setsockopt(6, 1, 1)  # TCP_NODELAY
        t0 = time.perf_counter()
        for _ in range(count):
            ws.send(payload)
            ws.recv()
        return time.perf_counter() - t0


def websocket_client_echo(url: str, payload: Any, count: int) -> float:
    import websocket

    ws = websocket.create_connection(url, sockopt=((6, 1, 1),))
    try:
        binary = isinstance(payload, bytes)
        t0 = time.perf_counter()
        for _ in range(count):
            if binary:
                ws.send_binary(payload)
            else:
                ws.send(payload)
            ws.recv()
        return time.perf_counter() - t0
    finally:
        ws.close()


def aiohttp_echo(url: str, payload: Any, count: int) -> float:
    import aiohttp

    async def run() -> float:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, compress=0, max_msg_size=0) as ws:
                binary = isinstance(payload, bytes)
                t0 = time.perf_counter()
                for _ in range(count):
                    if binary:
                        await ws.send_bytes(payload)
                    else:
                        await ws.send_str(payload)
                    await ws.receive()
                return time.perf_counter() - t0

    return asyncio.run(run())


CONTENDERS: Dict[str, Callable[[str, Any, int], float]] = {
    "ftcore": ftcore_echo,
    "websockets (sync)": websockets_echo,
    "websocket-client": websocket_client_echo,
    "aiohttp": aiohttp_echo,
}


# -- masking -----------------------------------------------------------------------------------


def masking_rates(rounds: int) -> Dict[str, Dict[str, float]]:
    key = b"\x12\x34\x56\x78"
    small = b"y" * 32
    out: Dict[str, Dict[str, float]] = {}
    routines: Dict[str, Callable[[bytes, bytes], bytes]] = {"ftcore masking.mask": masking.mask}
    try:
        from websockets.speedups import apply_mask

        routines["websockets.speedups.apply_mask (C)"] = apply_mask
    except ImportError:
        pass
    for name, fn in routines.items():
        rates: Dict[str, List[float]] = {"1 MiB": [], "32 B": []}
        for _ in range(rounds):
            for label, data, reps in (("1 MiB", BIG, 50), ("32 B", small, 200000)):
                t0 = time.perf_counter()
                for _ in range(reps):
                    fn(data, key)
                elapsed = time.perf_counter() - t0
                rates[label].append(len(data) * reps / MiB / elapsed)
        out[name] = {label: statistics.median(v) for label, v in rates.items()}
    return out


# -- fan-out (child process) -------------------------------------------------------------------


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fanout_child(url: str, sockets: int) -> None:
    """Open `sockets` at once on one runtime, echo one message each; print wall time and RSS."""
    _raise_nofile(sockets * 2 + 256)
    rt = ftcore.Runtime(config={"maxConcurrent": {"socket": sockets + 10}})
    # Warm up: load the transport and the codec before measuring the baseline.
    warm = threading.Event()
    task = rt.connectSocket(url=url)
    task.onOpen(lambda res: task.send(data="w"))
    task.onMessage(lambda res: task.close())
    task.onClose(lambda res: warm.set())
    warm.wait(10)
    base = _rss_kib()
    lock = threading.Lock()
    done = threading.Event()
    state = {"echoed": 0, "failed": 0, "rss": 0}
    tasks = []

    def finish_one(failed: bool) -> None:
        with lock:
            state["echoed" if not failed else "failed"] += 1
            if state["echoed"] + state["failed"] == sockets:
                state["rss"] = _rss_kib()  # every socket is open and has echoed once
                done.set()

    t0 = time.perf_counter()
    for i in range(sockets):
        t = rt.connectSocket(url=url)
        t.onOpen(lambda res, t=t, i=i: t.send(data="socket %d" % i))
        t.onMessage(lambda res: finish_one(False))
        t.onError(lambda res: finish_one(True))
        tasks.append(t)
    done.wait(120)
    wall = time.perf_counter() - t0
    print(
        "%d %d %.3f %d %d" % (state["echoed"], state["failed"], wall, base, state["rss"]),
        flush=True,
    )
    rt.close()


def fanout(url: str, sockets: int) -> Dict[str, float]:
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--fanout-child", url, str(sockets)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode:
        raise RuntimeError(out.stderr)
    echoed, failed, wall, base, rss = out.stdout.split()
    return {
        "echoed": int(echoed),
        "failed": int(failed),
        "wall": float(wall),
        "per_socket_kib": (int(rss) - int(base)) / sockets,
    }


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small", type=int, default=20000, help="round trips per small run")
    parser.add_argument("--big", type=int, default=200, help="1 MiB round trips per big run")
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--server", choices=("auto", "node", "websockets"), default="auto")
    parser.add_argument("--only", default="", help="comma-separated contender names")
    parser.add_argument("--fanout-child", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fanout_child:
        fanout_child(args.fanout_child[0], int(args.fanout_child[1]))
        return

    _raise_nofile()
    proc, url, server_name = start_server(args.server)
    try:
        _run(args, url, server_name)
    finally:
        proc.kill()
        proc.wait()


def _run(args: Any, url: str, server_name: str) -> None:
    try:
        from websockets import speedups  # noqa: F401

        speedups_on = True
    except ImportError:
        speedups_on = False
    try:
        import wsaccel  # noqa: F401

        wsaccel_on = True
    except ImportError:
        wsaccel_on = False
    import websockets

    contenders = dict(CONTENDERS)
    if args.only:
        wanted = set(args.only.split(","))
        contenders = {k: v for k, v in contenders.items() if k in wanted}
    print("server: %s at %s (pinned to CPU 1); client pinned to CPU 0" % (server_name, url))
    print(
        "python %s; websockets %s (C speedups %s); websocket-client%s"
        % (
            sys.version.split()[0],
            websockets.__version__,
            "on" if speedups_on else "off",
            " + wsaccel" if wsaccel_on else " (no wsaccel)",
        )
    )
    os.sched_setaffinity(0, {0})  # as `taskset -c 0`: ftcore's loop thread included

    small: Dict[str, List[float]] = {name: [] for name in contenders}
    big: Dict[str, List[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            small[name].append(args.small / fn(url, SMALL, args.small))
        for name, fn in contenders.items():
            big[name].append(args.big / fn(url, BIG, args.big))
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))

    print("\n32-byte text echo, one in flight (round trips/s, median of %d)" % args.rounds)
    _table(small, "websocket-client", "%.0f")
    print("\n1 MiB binary echo, one in flight (MiB/s, median of %d)" % args.rounds)
    _table(big, "aiohttp", "%.1f")

    print("\nmasking (MiB/s, median)")
    for name, rates in masking_rates(max(3, args.rounds)).items():
        print("  %-36s 1 MiB %9.1f   32 B %8.1f" % (name, rates["1 MiB"], rates["32 B"]))

    if args.sockets:
        result = fanout(url, args.sockets)
        print(
            "\n%d ftcore sockets on one loop, one echo each: %d echoed, %d failed, %.2f s wall, "
            "%.1f KiB RSS per socket (goal < 64)"
            % (
                args.sockets,
                result["echoed"],
                result["failed"],
                result["wall"],
                result["per_socket_kib"],
            )
        )

    ft_small = statistics.median(small.get("ftcore", [0]))
    ft_big = statistics.median(big.get("ftcore", [0]))
    if "websocket-client" in small and "aiohttp" in big:
        print(
            "\ngoals: small echo %.2fx websocket-client%s (goal >= 1.0); "
            "1 MiB %.2fx aiohttp (goal >= 0.6)"
            % (
                ft_small / statistics.median(small["websocket-client"]),
                "+wsaccel" if wsaccel_on else "",
                ft_big / statistics.median(big["aiohttp"]),
            )
        )


def _table(results: Dict[str, List[float]], reference: str, fmt: str) -> None:
    ref = statistics.median(results[reference]) if reference in results else None
    for name, values in results.items():
        median = statistics.median(values)
        ratio = " %.2fx %s" % (median / ref, reference) if ref else ""
        print(
            "  %-20s %12s   (min %s, max %s)%s"
            % (name, fmt % median, fmt % min(values), fmt % max(values), ratio)
        )


if __name__ == "__main__":
    main()
