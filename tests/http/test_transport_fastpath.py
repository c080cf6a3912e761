"""What the keep-alive fast path of the urllib3 transport must keep: the peer's address on a
reused connection (asked of the kernel once per socket, when its stream is made), `wait_idle`
woken when the last exchange ends (only waiting threads are notified), and the connections a
route parks: up to a pool's worth, each dropped when its server closes it while it waits."""

from __future__ import annotations

import socket
import threading
from typing import Any, List

import pytest

from tests.http.helpers import call
from tests.peers.hostile import Script, read_request, response_head
from tests.support.waits import WAIT, wait_until

pytestmark = pytest.mark.timeout(60)

BODY = b"ok"


def _answer(conn: socket.socket) -> None:
    conn.sendall(response_head(headers=[("Content-Length", str(len(BODY)))]) + BODY)


def answering_when(answer: threading.Event) -> Script:
    """A keep-alive server script that answers each request once `answer` is set."""

    def script(conn: socket.socket, release: threading.Event) -> None:
        while read_request(conn):
            answer.wait(WAIT)
            _answer(conn)

    return script


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

    url = hostile_server(answering_when(answer))
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


def _in_flight(rt: Any, url: str, count: int) -> List[dict]:
    """`count` requests started together; their profiles once all have ended."""
    done = threading.Semaphore(0)
    results: List[dict] = []

    def complete(res: dict) -> None:
        results.append(res)
        done.release()

    for _ in range(count):
        rt.request({"url": url, "complete": complete})
    for _ in range(count):
        assert done.acquire(timeout=WAIT), "a request never ended"
    assert all(res["statusCode"] == 200 for res in results), results
    return [res["profile"] for res in results]


def test_ten_in_flight_reuse_ten_parked_connections(make_runtime, http_server):
    """Every connection a burst gave back is parked for the route (none goes through urllib3's
    pool), and the next burst runs on them all."""
    rt = make_runtime({"maxConcurrent": {"http": 10}})
    transport: Any = rt.transport("http")
    url = http_server.url + "/json"
    _in_flight(rt, url, 10)
    assert wait_until(lambda: transport.checked_out == 0)
    (parked,) = transport._parked.values()
    assert len(parked) == len({id(conn) for _, conn in parked}) > 1
    again = _in_flight(rt, url, len(parked))
    assert all(profile["socketReused"] for profile in again)
    assert wait_until(lambda: transport.checked_out == 0)


def test_a_route_parks_at_most_a_pool_of_connections(make_runtime, hostile_server):
    """Past the pool's size, a connection given back goes to urllib3's pool; a route whose
    parked connections are all in use again is no longer listed."""
    answer = threading.Event()

    url = hostile_server(answering_when(answer))
    rt = make_runtime({"maxConcurrent": {"http": 2}})
    transport: Any = rt.transport("http")
    answer.set()
    _in_flight(rt, url, 6)  # two at a time: the slots queue the rest
    assert wait_until(lambda: transport.checked_out == 0)
    (parked,) = transport._parked.values()
    assert len(parked) == 2
    answer.clear()
    ended = threading.Semaphore(0)
    for _ in range(2):
        rt.request({"url": url, "complete": lambda res: ended.release()})
    assert wait_until(lambda: transport.checked_out == 2), "the requests never started"
    assert transport._parked == {}  # both parked connections are in use
    answer.set()
    assert ended.acquire(timeout=WAIT) and ended.acquire(timeout=WAIT)
    assert wait_until(lambda: transport.checked_out == 0)
    (parked,) = transport._parked.values()
    assert len(parked) == 2


def test_parked_connections_the_server_closes_are_dialled_again(make_runtime, hostile_server):
    """Every connection of a route's stack that its server closes while it waits is dropped;
    the next burst dials new ones, each request once, and none of them fails."""
    drop = threading.Event()

    def one_answer_then_close(conn: socket.socket, release: threading.Event) -> None:
        if read_request(conn):
            _answer(conn)
            drop.wait(WAIT)

    url = hostile_server(one_answer_then_close)
    rt = make_runtime({"maxConcurrent": {"http": 3}})
    transport: Any = rt.transport("http")
    first = _in_flight(rt, url, 3)
    assert not any(profile["socketReused"] for profile in first)
    assert wait_until(lambda: transport.checked_out == 0)
    (parked,) = transport._parked.values()
    assert len(parked) == 3
    drop.set()  # the server closes all three idle connections
    assert wait_until(lambda: all(conn.sock is None for _, conn in parked)), parked
    drop.clear()
    again = _in_flight(rt, url, 3)
    assert not any(profile["socketReused"] for profile in again)
    assert url.server.accepted == 6
    drop.set()
