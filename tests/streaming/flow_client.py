"""The client half of the flow-control test, run in its own process so that its memory can be
measured: ``python -m tests.streaming.flow_client URL``. Prints one JSON line.

It warms up (a small request loads the transport), notes its RSS, then reads the big body
through `iter_chunks()` slower than the network delivers it (a pause of `PAUSE` seconds after
8 MiB, and a short sleep per chunk), hashing every byte in order.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

import ftcore

PAUSE = 1.0
SLOW = 0.002  # seconds per chunk: far slower than loopback


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    """The high-water mark of this process's memory (VmHWM). Not `ru_maxrss`: that one keeps
    the parent's mark across fork and exec, and the parent is pytest."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(url: str) -> None:
    with ftcore.Runtime(entrypoints=False) as rt:
        rt.request(url=url + "/warm-up").result(30)
        base = rss()
        task = rt.request(url=url + "/big", enableChunked=True, timeout=120000)
        digest = hashlib.sha256()
        received = chunks = 0
        pause_start = pause_end = 0.0
        for chunk in task.iter_chunks():
            digest.update(chunk)
            received += len(chunk)
            chunks += 1
            if not pause_start and received >= 8 * 2**20:
                pause_start = time.time()
                time.sleep(PAUSE)
                pause_end = time.time()
            else:
                time.sleep(SLOW)
        task.result(10)
    peak = peak_rss()
    print(
        json.dumps(
            {
                "received": received,
                "chunks": chunks,
                "sha256": digest.hexdigest(),
                "rss_growth": peak - base,
                "pause": [pause_start, pause_end],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
