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
from tests.peers.lifecycle import reset_close
from tests.support.waits import WAIT, wait_until

pytestmark = pytest.mark.timeout(60)

BODY = b"ok"


def _readers(rt: Any) -> int:
    return int(rt.loop.pending_counts()["readers"])


@pytest.mark.parametrize("how", ["close", "unasked-bytes", "reset"])
def test_an_idle_connection_the_server_closes_writes_to_or_resets_is_dropped(
    make_runtime, hostile_server, how
):
    """Anything but silence on an idle keep-alive connection (a clean close, bytes no request
    asked for, a reset) ends it at once (`_IdleWatch`): the socket leaves the loop, and the
    next request dials a new one with nothing to retry."""
    act_now = threading.Event()
    connections: List[int] = []

    def script(conn: socket.socket, release: threading.Event) -> None:
        connections.append(len(connections) + 1)
        number = len(connections)
        while read_request(conn):
            head = response_head(headers=[("Content-Length", str(len(BODY)))])
            conn.sendall(head + BODY)
            if number == 1:  # the first connection answers once, then acts while idle
                act_now.wait(WAIT)
                if how == "close":
                    close_cleanly(conn)
                elif how == "reset":
                    reset_close(conn)
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")  # unasked
                    release.wait(WAIT)
                return

    url = hostile_server(script)
    rt = make_runtime()
    first = call(rt, url=url + "/1")
    assert first["data"] == "ok" and first["profile"]["socketReused"] is False
    assert _readers(rt) == 1  # idle, still watched
    act_now.set()
    assert wait_until(lambda: _readers(rt) == 0), "the idle socket is still watched"
    second = call(rt, url=url + "/2")
    assert second["data"] == "ok" and "exception" not in second  # dialled: nothing to retry
    assert second["profile"]["socketReused"] is False and connections == [1, 2]
    third = call(rt, url=url + "/3")
    assert third["profile"]["socketReused"] is True and _readers(rt) == 1


def test_an_idle_connection_closed_from_another_thread_leaves_the_loop(make_runtime, http_server):
    """urllib3 may close a pooled connection from another thread (a pool's GC finalizer):
    the loop then closes its stream, never the other thread."""
    rt = make_runtime()
    assert call(rt, url=http_server.url + "/json")["profile"]["socketReused"] is False
    transport = rt.transport("http")
    ((_, conn),) = [parked for stack in transport._parked.values() for parked in stack]
    assert _readers(rt) == 1
    closer = threading.Thread(target=conn.close)
    closer.start()
    closer.join(WAIT)
    # the loop unwatches, then forgets the stream: wait for both, they are not one step
    assert wait_until(lambda: _readers(rt) == 0), "the closed idle socket is still watched"
    assert wait_until(lambda: rt.net.live()["streams"] == 0), rt.net.live()
    again = call(rt, url=http_server.url + "/json")
    assert again["statusCode"] == 200 and again["profile"]["socketReused"] is False
