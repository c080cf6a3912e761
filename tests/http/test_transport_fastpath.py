"""What the keep-alive fast path of the urllib3 transport must keep: the peer's address on a
reused connection (asked of the kernel once per socket, when its stream is made), and
`wait_idle` woken when the last exchange ends (only waiting threads are notified)."""

from __future__ import annotations

import socket
import threading
from typing import Any, List

import pytest

from tests.http.helpers import call
from tests.peers.hostile import read_request, response_head
from tests.support.waits import WAIT, wait_until

pytestmark = pytest.mark.timeout(60)

BODY = b"ok"


def test_a_reused_connection_reports_the_peer_of_its_socket(make_runtime, http_server):
    rt = make_runtime()
    first = call(rt, url=http_server.url + "/json")["profile"]
    second = call(rt, url=http_server.url + "/json")["profile"]
    assert first["socketReused"] is False and second["socketReused"] is True
    for profile in (first, second):
        assert (profile["peerIP"], profile["port"]) == ("127.0.0.1", http_server.port)


def test_wait_idle_wakes_when_the_last_exchange_ends(make_runtime, hostile_server):
    """A thread waiting in `wait_idle` while a request is in flight is woken by its end."""
    answer = threading.Event()

    def script(conn: socket.socket, release: threading.Event) -> None:
        while read_request(conn):
            answer.wait(WAIT)
            conn.sendall(response_head(headers=[("Content-Length", str(len(BODY)))]) + BODY)

    url = hostile_server(script)
    rt = make_runtime()
    transport: Any = rt.transport("http")
    done = threading.Event()
    rt.request({"url": url + "/slow", "complete": lambda res: done.set()})
    assert wait_until(lambda: transport.checked_out == 1), "the request never started"
    woke: List[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(transport.wait_idle(WAIT)))
    waiter.start()
    assert wait_until(lambda: transport._idle_waiters == 1), "the waiter never started waiting"
    assert not woke  # the request is still in flight
    answer.set()
    waiter.join(WAIT)
    assert woke == [True] and done.wait(WAIT)
    assert transport._idle_waiters == 0 and transport.checked_out == 0
