"""Flow control over a real socket: a 64 MiB body read by a consumer slower than the network.

The client runs in a subprocess (its RSS is measured there); the server, here, sends with
non-blocking writes and records when they would block and how much it had sent over time.
While the consumer pauses for a second, the server can only fill the socket buffers: its
sends block, and the client's memory stays far below the body's size.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import select
import subprocess
import sys
import time
from typing import Callable, Dict, List, Tuple

from tests.streaming.peer import PeerConn, StreamPeer

BODY = 64 * 2**20
BLOCK = 64 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BigSender:
    """Serves /warm-up (a few bytes) and /big (BODY bytes, every block distinct)."""

    def __init__(self) -> None:
        self.timeline: List[Tuple[float, int]] = []  # (time.time(), bytes sent so far)
        self.blocked = 0.0  # seconds spent waiting for the socket to take more
        self.sha256 = ""

    def __call__(self, conn: PeerConn) -> None:
        while conn.read_request():
            if b"/warm-up" in conn.head.split(b"\r\n", 1)[0]:
                conn.respond(headers=[("Content-Length", "2")], chunked=False)
                conn.send(b"ok")
                continue
            conn.respond(headers=[("Content-Length", str(BODY))], chunked=False)
            self._send_big(conn)
            return

    def _send_big(self, conn: PeerConn) -> None:
        sock = conn.conn
        sock.setblocking(False)
        digest = hashlib.sha256()
        seed = os.urandom(BLOCK)
        sent = 0
        for index in range(BODY // BLOCK):
            block = index.to_bytes(8, "big") + seed[8:]
            digest.update(block)
            view = memoryview(block)
            while view:
                try:
                    n = sock.send(view)
                except BlockingIOError:
                    started = time.monotonic()
                    select.select([], [sock], [], 30)
                    self.blocked += time.monotonic() - started
                    continue
                view = view[n:]
                sent += n
            self.timeline.append((time.time(), sent))
        self.sha256 = digest.hexdigest()
        sock.setblocking(True)

    def sent_at(self, moment: float) -> int:
        times = [t for t, _ in self.timeline]
        index = bisect.bisect_right(times, moment)
        return self.timeline[index - 1][1] if index else 0


def test_a_slow_consumer_of_64_mib_blocks_the_server_and_keeps_memory_flat(
    stream_peer: Callable[..., StreamPeer],
) -> None:
    sender = BigSender()
    peer = stream_peer(sender)
    path = os.pathsep.join([ROOT, os.path.join(ROOT, "plugins")])  # as pytest's pythonpath
    done = subprocess.run(
        [sys.executable, "-m", "tests.streaming.flow_client", peer.url],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    report: Dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["received"] == BODY
    assert report["sha256"] == sender.sha256  # every byte, in order
    growth = report["rss_growth"]
    assert isinstance(growth, int) and growth < 32 * 2**20, growth
    start, end = report["pause"]  # type: ignore[misc]
    during_pause = sender.sent_at(end) - sender.sent_at(start)
    # socket buffers on both sides and one stream buffer, not the 56 MiB still to come
    assert during_pause < 24 * 2**20, during_pause
    assert sender.blocked > 0.5 * (end - start), sender.blocked  # the server's sends blocked
