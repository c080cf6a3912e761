"""An idle keep-alive connection stays in the loop's selector, watched for the server's close.

The urllib3 transport leaves a pooled connection's socket registered between requests (no
epoll_ctl per request); a server that closes it while it is idle gets it closed and taken off
the loop at once, so the next request dials instead of meeting a stale connection.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, List

import pytest

from tests.http.helpers import call
from tests.peers.hostile import close_cleanly, read_request, response_head
from tests.support.waits import WAIT, wait_until

pytestmark = pytest.mark.timeout(60)

BODY = b"ok"


def _readers(rt: Any) -> int:
    return int(rt.loop.pending_counts()["readers"])


def test_a_connection_the_server_closes_while_idle_leaves_the_loop(make_runtime, hostile_server):
    close_now = threading.Event()
    connections: List[int] = []

    def script(conn: socket.socket, release: threading.Event) -> None:
        connections.append(len(connections) + 1)
        number = len(connections)
        while read_request(conn):
            head = response_head(headers=[("Content-Length", str(len(BODY)))])
            conn.sendall(head + BODY)
            if number == 1:  # the first connection answers once, then closes while idle
                close_now.wait(WAIT)
                close_cleanly(conn)
                return

    url = hostile_server(script)
    rt = make_runtime()
    first = call(rt, url=url + "/1")
    assert first["data"] == "ok" and first["profile"]["socketReused"] is False
    assert _readers(rt) == 1  # idle, still watched
    close_now.set()
    assert wait_until(lambda: _readers(rt) == 0), "the closed idle socket is still watched"
    second = call(rt, url=url + "/2")
    assert second["data"] == "ok" and "exception" not in second  # dialled: nothing to retry
    assert second["profile"]["socketReused"] is False and connections == [1, 2]
    third = call(rt, url=url + "/3")
    assert third["profile"]["socketReused"] is True and _readers(rt) == 1
