"""Benchmark: streamed responses, ftcore's iterators against the usual Python clients.

    python bench/streaming.py              # both workloads (about a minute)
    python bench/streaming.py --quick      # a short smoke run: fewer rounds, less text
    python bench/streaming.py --json PATH  # also write the rows as JSON (bench/results.py)

Workloads (goals from issue 14, on the iterators):

* 100,000 Server-Sent Events of about 100 B each (one chunked response) read through
  `task.iter_events()` from the caller's thread, and counted by an onServerSentEvent listener
  (callbacks), against httpx + httpx-sse (`connect_sse(...).iter_sse()`, goal >= 1.5x) and
  aiohttp + aiohttp-sse-client (`EventSource`, goal >= 1.0x);
* a 1 GiB UTF-8 text body (multi-byte characters included) through `task.iter_text()`, and
  through an onTextChunkReceived listener (callbacks), against urllib3's `stream()` with an
  incremental decoder (goal >= 0.8x).

A small HTTP server runs in its own process on CPU 1; every measurement runs in a fresh child
process on CPU 0 (bulk transfers: the server does not share the client's CPU), so its peak
RSS is its own (VmHWM minus the RSS before the request). Each child warms up with one small
request on the connection the timed one reuses; the contenders alternate round after round,
and the table gives medians of events/s or MiB/s, the ratios, and the RSS each one grew by.
Contenders whose packages are not installed are listed as skipped.
"""

from __future__ import annotations

import os
import sys

# bench/http.py would shadow the stdlib's http package (urllib3 imports it): keep bench/ off.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import codecs  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable, Dict, List, Optional, Tuple  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "plugins")]

from bench.common import free_port, pinned, read_head, wait_listening  # noqa: E402
from bench.results import (  # noqa: E402
    CALLBACKS,
    CALLER,
    SPLIT,
    UNPINNED,
    Goal,
    Results,
    add_arguments,
)

EVENTS = 100_000
TEXT_BYTES = 2**30
TEXT_BLOCK = ("ftcore streams text: 流式输出不会乱码 😀 — every byte in order.\n" * 16384).encode()
CHUNK = 64 * 1024  # the server's chunk size for the SSE stream


def sse_body(count: int) -> bytes:
    """`count` events of about 100 bytes: an id, and a JSON token as an LLM sends it."""
    event = 'id: %07d\ndata: {"token": "%s", "index": %d}\n\n'
    return b"".join(
        (event % (i, "t" * (58 - len(str(i))), i)).encode("ascii") for i in range(count)
    )


# -- the server (its own process) ---------------------------------------------------------------


def serve(port: int) -> None:
    """Thread-per-connection HTTP/1.1: /sse (chunked SSE), /text?bytes=N (text/plain)."""
    body = sse_body(EVENTS)
    chunked = (
        b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + CHUNK]), body[i : i + CHUNK])
            for i in range(0, len(body), CHUNK)
        )
        + b"0\r\n\r\n"
    )
    block = memoryview(TEXT_BLOCK)

    def handle(conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                request = read_head(conn, buffer)
                if request is None:
                    return
                head, buffer = request
                target = head.split(b" ", 2)[1]
                if target.startswith(b"/sse"):
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                        b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
                    )
                    continue
                size = int(target.partition(b"bytes=")[2] or len(TEXT_BLOCK))
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    b"Content-Length: %d\r\n\r\n" % size
                )
                while size:
                    piece = block[: min(size, len(block))]
                    conn.sendall(piece)
                    size -= len(piece)

    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()


# -- contenders (each run in a fresh child) ------------------------------------------------------


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def warm_url(url: str) -> str:
    """The small text request every contender sends first, on the connection it then reuses."""
    return url.rsplit("/", 1)[0] + "/text?bytes=2"


def ft_events(url: str) -> int:
    import ftcore

    with ftcore.Runtime(entrypoints=False) as rt:
        rt.request(url=warm_url(url)).result(10)
        return measured(
            lambda: sum(
                1 for _ in rt.request(url=url, enableChunked=True, timeout=600000).iter_events()
            )
        )


def httpx_events(url: str) -> int:
    import httpx
    from httpx_sse import connect_sse

    with httpx.Client(timeout=600) as client:
        client.get(warm_url(url))

        def run() -> int:
            with connect_sse(client, "GET", url) as source:
                return sum(1 for _ in source.iter_sse())

        return measured(run)


def aiohttp_events(url: str) -> int:
    import asyncio

    import aiohttp
    from aiohttp_sse_client import client as sse_client

    async def main() -> int:
        async with aiohttp.ClientSession() as session:
            async with session.get(warm_url(url)) as warm:
                await warm.read()

            async def run() -> int:
                count = 0
                async with sse_client.EventSource(url, session=session) as source:
                    async for _ in source:
                        count += 1
                        if count == EVENTS:  # it would reconnect at the end of the stream
                            break
                return count

            return await measured_async(run)

    return asyncio.run(main())


def ft_callbacks(url: str, events: bool) -> int:
    """Events counted by an onServerSentEvent listener (`events`), or the characters of the
    chunks an onTextChunkReceived listener gets."""
    import ftcore

    with ftcore.Runtime(entrypoints=False) as rt:
        rt.request(url=warm_url(url)).result(10)

        def run() -> int:
            total = [0]

            def on_event(res: Dict[str, Any]) -> None:
                total[0] += 1

            def on_text(res: Dict[str, Any]) -> None:
                total[0] += len(res["data"])

            task = rt.request(url=url, enableChunked=True, timeout=600000)
            if events:
                task.onServerSentEvent(on_event)
            else:
                task.onTextChunkReceived(on_text)
            task.result()
            return total[0]

        return measured(run)


def ft_text(url: str) -> int:
    import ftcore

    with ftcore.Runtime(entrypoints=False) as rt:
        rt.request(url=warm_url(url)).result(10)

        def run() -> int:
            task = rt.request(url=url, enableChunked=True, timeout=600000)
            return sum(map(len, task.iter_text()))

        return measured(run)


def urllib3_text(url: str) -> int:
    import urllib3

    pm = urllib3.PoolManager()
    pm.request("GET", warm_url(url))

    def run() -> int:
        response = pm.request("GET", url, preload_content=False)
        decode = codecs.getincrementaldecoder("utf-8")("replace").decode
        total = sum(len(decode(chunk)) for chunk in response.stream(256 * 1024))
        total += len(decode(b"", True))
        response.release_conn()
        return total

    return measured(run)


RESULT: Dict[str, Any] = {}


def measured(run: Callable[[], int]) -> int:
    base = rss()
    started = time.perf_counter()
    count = run()
    RESULT.update(seconds=time.perf_counter() - started, count=count, rss=peak_rss() - base)
    return count


async def measured_async(run: Callable[[], Any]) -> int:
    base = rss()
    started = time.perf_counter()
    count = await run()
    RESULT.update(seconds=time.perf_counter() - started, count=count, rss=peak_rss() - base)
    return int(count)


# name: (contender, calling style, client, modules it needs, ftcore's?)
CONTENDERS: Dict[str, Tuple[str, str, Callable[[str], int], Tuple[str, ...], bool]] = {
    "ft_events": ("ftcore iter_events()", CALLER, ft_events, (), True),
    "ft_events_callbacks": (
        "ftcore onServerSentEvent",
        CALLBACKS,
        lambda url: ft_callbacks(url, events=True),
        (),
        True,
    ),
    "httpx_events": ("httpx-sse", CALLER, httpx_events, ("httpx", "httpx_sse"), False),
    "aiohttp_events": (
        "aiohttp-sse-client",
        CALLBACKS,
        aiohttp_events,
        ("aiohttp", "aiohttp_sse_client"),
        False,
    ),
    "ft_text": ("ftcore iter_text()", CALLER, ft_text, (), True),
    "ft_text_callbacks": (
        "ftcore onTextChunkReceived",
        CALLBACKS,
        lambda url: ft_callbacks(url, events=False),
        (),
        True,
    ),
    "urllib3_text": ("urllib3", CALLER, urllib3_text, ("urllib3",), False),
}
GOALS = {  # issue 14, on the iterators
    "ft_events": [Goal("httpx-sse", ratio=1.5), Goal("aiohttp-sse-client", ratio=1.0)],
    "ft_text": [Goal("urllib3", ratio=0.8)],
}


def child(name: str, url: str) -> None:
    CONTENDERS[name][2](url)
    print(json.dumps(RESULT))


def installed(modules: Tuple[str, ...]) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(module) is not None for module in modules)


def run_child(name: str, url: str) -> Dict[str, float]:
    out = subprocess.run(
        pinned(0) + [sys.executable, __file__, "--child", name, url],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def workload(
    results: Results,
    title: str,
    url: str,
    names: List[str],
    rounds: int,
    unit: str,
    scale: float,
    peer: str,
) -> None:
    runnable = [n for n in names if installed(CONTENDERS[n][3])]
    samples: Dict[str, List[Dict[str, float]]] = {n: [] for n in runnable}
    for round_no in range(rounds):
        for name in runnable if round_no % 2 == 0 else runnable[::-1]:
            samples[name].append(run_child(name, url))
    counts = {r["count"] for runs in samples.values() for r in runs}
    if len(counts) > 1:  # every contender must have read the whole body, and the same one
        raise SystemExit("%s: the contenders disagree: %s" % (title, sorted(counts)))
    rows = results.workload(title, unit, peer=peer, pinning=SPLIT if pinned(0) else UNPINNED)
    for name in names:
        label, style, _, _, ours = CONTENDERS[name]
        if name not in samples:
            print("%s: %s skipped (not installed)" % (title, label))
            continue
        rates = [r["count"] / r["seconds"] / scale for r in samples[name]]
        growth = statistics.median(r["rss"] for r in samples[name]) / 2**20
        if ours:
            rows.ours(label, style, rates, goals=GOALS.get(name, ()), rss_growth_mib=growth)
        else:
            rows.peer(label, style, rates, rss_growth_mib=growth)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=2, metavar=("NAME", "URL"), help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.child:
        child(*args.child)
        return
    port = free_port()
    server: Optional[subprocess.Popen] = subprocess.Popen(
        pinned(1) + [sys.executable, __file__, "--serve", str(port)]
    )
    results = Results("streaming", "Streaming", quick=args.quick)
    try:
        if not wait_listening(port):
            raise SystemExit("the benchmark server did not start")
        base = "http://127.0.0.1:%d" % port
        rounds = 3 if args.quick else 5
        text_bytes = TEXT_BYTES // 16 if args.quick else TEXT_BYTES
        print("Python %s, %d CPUs" % (sys.version.split()[0], os.cpu_count() or 0))
        workload(
            results,
            "%d SSE events of ~100 B" % EVENTS,
            base + "/sse",
            ["ft_events", "ft_events_callbacks", "httpx_events", "aiohttp_events"],
            rounds,
            "events/s",
            1.0,
            "httpx-sse",
        )
        workload(
            results,
            "%d MiB of UTF-8 text" % (text_bytes // 2**20),
            base + "/text?bytes=%d" % text_bytes,
            ["ft_text", "ft_text_callbacks", "urllib3_text"],
            rounds,
            "MiB/s (of characters decoded, as MiB)",
            2**20 * (len(TEXT_BLOCK.decode()) / len(TEXT_BLOCK)),
            "urllib3",
        )
    finally:
        if server is not None:
            server.kill()
            server.wait()
    results.print()
    results.write(args.json)


if __name__ == "__main__":
    main()
