#!/usr/bin/env python3
"""WebSocket benchmark: ftcore (pure and numpy-accelerated masking) beside aiohttp, websockets
and websocket-client (+wsaccel).

    python bench/websocket.py [--rounds 3] [--small 20000] [--big 200] [--sockets 1000]
                              [--quick] [--json PATH]

Echo rows, one message in flight, compression off:
* 32-byte text echo, round trips/s: server and client share CPU 0 (`taskset -c 0`), as one
  core serving both ends of a latency-bound exchange;
* 1 MiB binary echo, MiB/s each way: the server on CPU 1, the client on CPU 0, so that the
  server does not limit the client (bulk).

Every run is a fresh child process (pinned to CPU 0) that opens one connection, does the same
warm-up (a tenth of the count) and then times `count` round trips. Rounds are interleaved
(each round runs every contender once, the order reversed every other round); the table shows
medians and each contender's ratio to the named peer (websocket-client for 32 B, aiohttp for
1 MiB: the peers of issue 15's goals) and to the best peer of the row.

Styles: "callbacks" means the library's own loop or thread drives the exchange and the next
send comes from the message handler (ftcore's onMessage on its loop thread, websocket-client's
WebSocketApp, and the asyncio clients, whose coroutine the loop resumes); "caller's thread"
means the caller sends and waits for the answer (ftcore: `send`, then the message from a
queue filled by onMessage, or from `task.iter_messages()` where SocketTask has it, also on a
host-driven runtime, `Runtime(autostart=False)`, where the waiting caller runs the loop and no
other thread is involved; websocket-client's blocking socket; websockets' sync client).
"ftcore pure" runs with FTCORE_NO_ACCEL=1; "ftcore numpy" only when numpy is importable.

Also: masking rates (CPU time, medians) of ftcore's routes beside websockets' C `apply_mask`
and wsaccel; and a fan-out of 1,000 ftcore sockets on one loop (wall time, RSS per socket).

The echo server is node's `ws` when `node` can load it (`npm install ws bufferutil` in
/tmp/wsnode, or set NODE_PATH), else a `websockets` asyncio server.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import queue
import resource
import shutil
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
from bench.results import (  # noqa: E402
    CALLBACKS,
    CALLER,
    NO_STYLE,
    ONE_CPU,
    SPLIT,
    Goal,
    Results,
    add_arguments,
)
from ftcore_websocket import masking  # noqa: E402

MiB = 2**20
SMALL = "x" * 32
BIG = bytes(range(256)) * 4096  # 1 MiB
NODELAY = ((6, 1, 1),)  # IPPROTO_TCP, TCP_NODELAY, on
WAIT_S = 60.0

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


def _pinned(cpu: int) -> List[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []


def start_server(kind: str, cpu: int) -> Tuple["subprocess.Popen[bytes]", str, str]:
    """An echo server process pinned to `cpu` (all its threads); (process, url, name)."""
    env = dict(os.environ)
    env.setdefault("NODE_PATH", "/tmp/wsnode/node_modules")
    if kind in ("auto", "node") and shutil.which("node"):
        proc = subprocess.Popen(
            _pinned(cpu) + ["node", "-e", NODE_SERVER],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            preexec_fn=_raise_nofile,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line:
            return proc, "ws://127.0.0.1:%s/" % line.decode(), "node ws"
        proc.kill()
        proc.wait()
    if kind == "node":
        raise SystemExit("node ws server unavailable (npm install ws in /tmp/wsnode)")
    proc = subprocess.Popen(
        _pinned(cpu) + [sys.executable, "-c", PY_SERVER],
        stdout=subprocess.PIPE,
        preexec_fn=_raise_nofile,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    return proc, "ws://127.0.0.1:%s/" % line.decode(), "websockets asyncio"


# -- contenders (in the child): each returns seconds for `count` round trips after `warmup` --------

Stamp = Tuple[float, float]  # (wall clock, CPU time of the whole process: every thread)
Measure = Stamp  # seconds between two stamps
Echo = Callable[[str, Any, int, int], Measure]


def _now() -> Stamp:
    return time.perf_counter(), time.process_time()


def _between(start: Stamp, end: Stamp) -> Measure:
    return end[0] - start[0], end[1] - start[1]


def ftcore_callbacks(url: str, payload: Any, count: int, warmup: int) -> Measure:
    with ftcore.Runtime(config={"limits": {"wsMaxMessageBytes": 64 * MiB}}) as rt:
        opened, done = threading.Event(), threading.Event()
        times: List[Stamp] = []
        left = [warmup + count]
        task = rt.connectSocket(url=url, tcpNoDelay=True)
        send = task.send

        def on_message(res: Dict[str, Any]) -> None:
            left[0] -= 1
            if left[0] == count:
                times.append(_now())
            if left[0]:
                send({"data": payload})
            else:
                times.append(_now())
                done.set()

        task.onOpen(lambda res: opened.set())
        task.onMessage(on_message)
        if not opened.wait(WAIT_S):
            raise RuntimeError("ftcore did not open")
        if not warmup:
            times.append(_now())
        send({"data": payload})
        if not done.wait(WAIT_S * 5):
            raise RuntimeError("ftcore echo stalled with %d to go" % left[0])
        task.close()
        return _between(times[0], times[1])


def ftcore_caller_thread(url: str, payload: Any, count: int, warmup: int) -> Measure:
    with ftcore.Runtime(config={"limits": {"wsMaxMessageBytes": 64 * MiB}}) as rt:
        opened = threading.Event()
        messages: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        task = rt.connectSocket(url=url, tcpNoDelay=True)
        task.onOpen(lambda res: opened.set())
        task.onMessage(messages.put)
        if not opened.wait(WAIT_S):
            raise RuntimeError("ftcore did not open")
        send, get = task.send, messages.get
        for _ in range(warmup):
            send({"data": payload})
            get(timeout=WAIT_S)
        t0 = _now()
        for _ in range(count):
            send({"data": payload})
            get(timeout=WAIT_S)
        measure = _between(t0, _now())
        task.close()
        return measure


def ftcore_iter_messages(
    url: str, payload: Any, count: int, warmup: int, autostart: bool = True
) -> Measure:
    """The caller's thread sends, then takes the echo from `task.iter_messages()`."""
    config = {"limits": {"wsMaxMessageBytes": 64 * MiB}}
    with ftcore.Runtime(config=config, autostart=autostart) as rt:
        opened = threading.Event()
        task = rt.connectSocket(url=url, tcpNoDelay=True)
        task.onOpen(lambda res: opened.set())
        if autostart:
            opened.wait(WAIT_S)
        else:  # the caller runs the loop's passes until the socket opens
            deadline = time.monotonic() + WAIT_S
            while not opened.is_set() and time.monotonic() < deadline:
                rt.loop.run_once(0.1)
        if not opened.is_set():
            raise RuntimeError("ftcore did not open")
        with task.iter_messages(timeout=WAIT_S) as messages:
            send, receive = task.send, messages.__next__
            for _ in range(warmup):
                send({"data": payload})
                receive()
            t0 = _now()
            for _ in range(count):
                send({"data": payload})
                receive()
            measure = _between(t0, _now())
        task.close()
        return measure


def ftcore_host_iter_messages(url: str, payload: Any, count: int, warmup: int) -> Measure:
    """`ftcore_iter_messages` on a host-driven runtime: the caller's waits run the loop's
    passes and its sends go out inside the call, so no other thread is involved."""
    return ftcore_iter_messages(url, payload, count, warmup, autostart=False)


def aiohttp_echo(url: str, payload: Any, count: int, warmup: int) -> Measure:
    import aiohttp

    async def run() -> Measure:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, compress=0, max_msg_size=0) as ws:
                send = ws.send_bytes if isinstance(payload, bytes) else ws.send_str
                for _ in range(warmup):
                    await send(payload)
                    await ws.receive()
                t0 = _now()
                for _ in range(count):
                    await send(payload)
                    await ws.receive()
                return _between(t0, _now())

    return asyncio.run(run())


def websockets_asyncio_echo(url: str, payload: Any, count: int, warmup: int) -> Measure:
    from websockets.asyncio.client import connect

    async def run() -> Measure:
        async with connect(url, compression=None, max_size=None, ping_interval=None) as ws:
            for _ in range(warmup):
                await ws.send(payload)
                await ws.recv()
            t0 = _now()
            for _ in range(count):
                await ws.send(payload)
                await ws.recv()
            return _between(t0, _now())

    return asyncio.run(run())


def websockets_sync_echo(url: str, payload: Any, count: int, warmup: int) -> Measure:
    from websockets.sync.client import connect

    with connect(url, compression=None, max_size=None) as ws:
        ws.socket.setsockopt(*NODELAY[0])
        for _ in range(warmup):
            ws.send(payload)
            ws.recv()
        t0 = _now()
        for _ in range(count):
            ws.send(payload)
            ws.recv()
        return _between(t0, _now())


def websocket_client_echo(url: str, payload: Any, count: int, warmup: int) -> Measure:
    import websocket

    ws = websocket.create_connection(url, sockopt=NODELAY)
    try:
        send = ws.send_binary if isinstance(payload, bytes) else ws.send
        for _ in range(warmup):
            send(payload)
            ws.recv()
        t0 = _now()
        for _ in range(count):
            send(payload)
            ws.recv()
        return _between(t0, _now())
    finally:
        ws.close()


def websocket_client_app_echo(url: str, payload: Any, count: int, warmup: int) -> Measure:
    import websocket

    opcode = websocket.ABNF.OPCODE_BINARY if isinstance(payload, bytes) else 1
    times: List[Stamp] = []
    left = [warmup + count]

    def on_open(ws: Any) -> None:
        if not warmup:
            times.append(_now())
        ws.send(payload, opcode)

    def on_message(ws: Any, message: Any) -> None:
        left[0] -= 1
        if left[0] == count:
            times.append(_now())
        if left[0]:
            ws.send(payload, opcode)
        else:
            times.append(_now())
            ws.close()

    app = websocket.WebSocketApp(url, on_open=on_open, on_message=on_message)
    app.run_forever(sockopt=NODELAY)
    if len(times) != 2:
        raise RuntimeError("websocket-client app stopped with %d to go" % left[0])
    return _between(times[0], times[1])


def contenders() -> List[Tuple[str, str, Echo, Dict[str, str]]]:
    """(name, style, function, environment of its child) for what is importable here."""
    pure = {masking.NO_ACCEL_ENV: "1"}
    accel = {masking.NO_ACCEL_ENV: ""}
    variants = [("ftcore pure", pure)]
    if masking._numpy_masker() is not None:
        variants.append(("ftcore numpy", accel))
    rows: List[Tuple[str, str, Echo, Dict[str, str]]] = []
    for name, env in variants:
        rows += [
            (name, CALLBACKS, ftcore_callbacks, env),
            (name, CALLER, ftcore_caller_thread, env),
        ]
        if hasattr(ftcore.SocketTask, "iter_messages"):
            rows.append((name + " iter_messages", CALLER, ftcore_iter_messages, env))
            rows.append(
                (name + " host-driven iter_messages", CALLER, ftcore_host_iter_messages, env)
            )
    peers: List[Tuple[str, str, Echo, str]] = [
        ("aiohttp", CALLBACKS, aiohttp_echo, "aiohttp"),
        ("websockets asyncio", CALLBACKS, websockets_asyncio_echo, "websockets"),
        ("websockets sync", CALLER, websockets_sync_echo, "websockets"),
        ("websocket-client app", CALLBACKS, websocket_client_app_echo, "websocket"),
        ("websocket-client", CALLER, websocket_client_echo, "websocket"),
    ]
    for name, style, fn, module in peers:
        if _importable(module):
            rows.append((name, style, fn, {}))
    return rows


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


CHILD_FUNCTIONS: Dict[str, Echo] = {
    fn.__name__: fn
    for fn in (
        ftcore_callbacks,
        ftcore_caller_thread,
        ftcore_iter_messages,
        ftcore_host_iter_messages,
        aiohttp_echo,
        websockets_asyncio_echo,
        websockets_sync_echo,
        websocket_client_echo,
        websocket_client_app_echo,
    )
}


def child(function: str, url: str, size: str, count: int, warmup: int) -> None:
    payload = BIG if size == "big" else SMALL
    wall, cpu = CHILD_FUNCTIONS[function](url, payload, count, warmup)
    print(json.dumps({"wall": wall, "cpu": cpu}))


def run_child(fn: Echo, env: Dict[str, str], url: str, size: str, count: int) -> Measure:
    """(wall, client CPU) seconds for `count` round trips, in a fresh process pinned to CPU 0."""
    child_env = dict(os.environ)
    child_env.update(env)
    argv = [sys.executable, os.path.abspath(__file__), "--child", fn.__name__, url, size]
    out = subprocess.run(
        _pinned(0) + argv + [str(count), str(max(1, count // 10))],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=600,
    )
    if out.returncode:
        raise RuntimeError("%s failed:\n%s" % (fn.__name__, out.stderr[-2000:]))
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return float(result["wall"]), float(result["cpu"])


# -- masking -----------------------------------------------------------------------------------


def masking_rates(rounds: int) -> Dict[str, Dict[str, List[float]]]:
    """MiB/s per route and size, from per-call CPU time (one sample per interleaved round)."""
    key = b"\x12\x34\x56\x78"
    sizes = {"32 B": 32, "64 KiB": 64 * 1024, "1 MiB": MiB, "16 MiB": 16 * MiB}
    routines: Dict[str, Callable[[bytes, bytes], Any]] = {
        "ftcore pure (int)": functools.partial(masking._mask_pure, b""),
    }
    accelerated = masking._numpy_masker()
    if accelerated is not None:
        routines["ftcore numpy"] = functools.partial(accelerated, b"")
    try:
        from websockets.speedups import apply_mask

        routines["websockets apply_mask (C)"] = apply_mask
    except ImportError:
        pass
    try:
        from wsaccel.xormask import XorMaskerSimple

        def wsaccel_mask(data: bytes, key: bytes) -> Any:
            return XorMaskerSimple(key).process(data)

        routines["wsaccel XorMaskerSimple (C)"] = wsaccel_mask
    except ImportError:
        pass
    samples: Dict[Tuple[str, str], List[float]] = {}
    for _ in range(rounds):
        for label, size in sizes.items():
            data = os.urandom(size)
            reps = max(2, (4 * MiB) // size)
            for name, fn in routines.items():
                t0 = time.thread_time()
                for _ in range(reps):
                    fn(data, key)
                elapsed = max(time.thread_time() - t0, 1e-9)
                samples.setdefault((name, label), []).append(size * reps / MiB / elapsed)
    return {name: {label: samples[name, label] for label in sizes} for name in routines}


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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", type=int, default=20000, help="round trips per 32 B run")
    parser.add_argument("--big", type=int, default=200, help="round trips per 1 MiB run")
    parser.add_argument("--sockets", type=int, default=1000, help="fan-out sockets (0: skip)")
    parser.add_argument("--server", choices=("auto", "node", "websockets"), default="auto")
    parser.add_argument("--only", default="", help="comma-separated contender names")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    add_arguments(parser)
    parser.add_argument("--fanout-child", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        function, url, size, count, warmup = args.child
        if os.environ.get(masking.NO_ACCEL_ENV) == "":  # the numpy rows: imported by the host,
            import numpy  # noqa: F401  as ftcore asks (it never imports numpy on the loop)
        child(function, url, size, int(count), int(warmup))
        return
    if args.fanout_child:
        fanout_child(args.fanout_child[0], int(args.fanout_child[1]))
        return
    if args.quick:
        args.rounds, args.small, args.big = min(args.rounds, 2), 2000, 20
        args.sockets = min(args.sockets, 100)

    _raise_nofile()
    servers: List["subprocess.Popen[bytes]"] = []
    try:
        shared, shared_url, server_name = start_server(args.server, 0)
        servers.append(shared)
        apart, apart_url, _ = start_server(args.server, 1)
        servers.append(apart)
        _run(args, shared_url, apart_url, server_name)
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()


GOALS = {  # issue 15: (workload, contender, style) -> goals
    ("small", "ftcore pure", CALLBACKS): [Goal("websocket-client", ratio=1.3)],
    ("small", "ftcore pure", CALLER): [Goal("websocket-client", ratio=1.0)],
    ("big", "ftcore pure"): [Goal("aiohttp", ratio=0.55)],
    ("big", "ftcore numpy"): [Goal("aiohttp", ratio=1.0)],
}


def _goals(size: str, name: str, style: str) -> List[Goal]:
    """The 32 B goals are on the pure rows (masking does not matter there), by style: the
    iter_messages rows are the caller's thread too; the 1 MiB ones on every row of a masking
    route, whatever its style."""
    route = name.replace(" host-driven", "").replace(" iter_messages", "")
    return GOALS.get((size, route, style), GOALS.get((size, route), []))


def _run(args: Any, shared_url: str, apart_url: str, server_name: str) -> None:
    import websockets

    rows = contenders()
    if args.only:
        wanted = set(args.only.split(","))
        rows = [row for row in rows if row[0] in wanted]
    if not hasattr(ftcore.SocketTask, "iter_messages"):
        print("ftcore iter_messages: skipped (SocketTask has no iter_messages() in this tree)")
    print("server: %s; python %s" % (server_name, sys.version.split()[0]))
    versions = "websockets %s (C speedups %s); websocket-client%s; numpy %s" % (
        websockets.__version__,
        "on" if _importable("websockets.speedups") else "off",
        " + wsaccel" if _importable("wsaccel") else " (no wsaccel)",
        "importable" if masking._numpy_masker() is not None else "not importable",
    )
    print(versions)
    results = Results(
        "websocket", "WebSocket", quick=args.quick, server=server_name, libraries=versions
    )
    echo_rows = [  # (size, title, url, round trips per run, unit, pinning); 1 MiB: rt/s = MiB/s
        ("small", "32 B text echo", shared_url, args.small, "round trips/s", ONE_CPU),
        ("big", "1 MiB binary echo", apart_url, args.big, "MiB/s each way", SPLIT),
    ]  # fmt: skip
    samples: Dict[str, Dict[Tuple[str, str], List[Measure]]] = {row[0]: {} for row in echo_rows}
    failed: Dict[Tuple[str, str, str], str] = {}  # (size, name, style): why, shown in the docs
    for round_no in range(args.rounds):
        order = rows if round_no % 2 == 0 else rows[::-1]
        for size, _, url, count, _, _ in echo_rows:
            for name, style, fn, env in order:
                if (size, name, style) in failed:
                    continue
                try:
                    wall, cpu = run_child(fn, env, url, size, count)
                except RuntimeError as exc:  # a contender that breaks is reported, not fatal
                    why = failed[size, name, style] = str(exc).strip().splitlines()[-1]
                    print("  %s (%s), %s: failed: %s" % (name, style, size, why))
                    continue
                samples[size].setdefault((name, style), []).append((count / wall, cpu / count))
        print("  round %d done" % (round_no + 1))
    for size, title, _, _, unit, pinning in echo_rows:
        peer = "websocket-client" if size == "small" else "aiohttp"
        broken = [
            "%s (%s) failed: %s" % (n, st, why) for (sz, n, st), why in failed.items() if sz == size
        ]
        workload = results.workload(
            title,
            unit,
            peer=peer,
            pinning=pinning,
            note="Not shown: " + "; ".join(broken) if broken else "",
        )
        for (name, style), values in samples[size].items():
            if (size, name, style) in failed:
                continue
            rates = [rate for rate, _ in values]
            cpu = {"client_cpu_us_per_rt": statistics.median(c for _, c in values) * 1e6}
            if name.startswith("ftcore"):
                workload.ours(name, style, rates, goals=_goals(size, name, style), **cpu)
            else:
                workload.peer(name, style, rates, **cpu)

    rounds = max(3, args.rounds)
    masks = masking_rates(rounds)
    for label in next(iter(masks.values())):
        workload = results.workload(
            "masking " + label, "MiB/s (CPU time)", peer="websockets apply_mask (C)"
        )
        for name, rates in masks.items():
            add = workload.ours if name.startswith("ftcore") else workload.peer
            add(name, NO_STYLE, rates[label])

    if args.sockets:
        result = fanout(apart_url, args.sockets)
        title = "%d sockets on one loop, one echo each" % args.sockets
        print("\n%s: %d echoed, %d failed" % (title, result["echoed"], result["failed"]))
        results.workload(title + ": wall time", "s", higher_is_better=False).ours(
            "ftcore", CALLBACKS, [result["wall"]]
        )
        results.workload(title + ": RSS per socket", "KiB", higher_is_better=False).ours(
            "ftcore", CALLBACKS, [result["per_socket_kib"]], goals=[Goal(limit=64.0)]
        )
    results.print()
    results.write(args.json)


if __name__ == "__main__":
    main()
