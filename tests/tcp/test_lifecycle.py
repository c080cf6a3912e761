"""Connections that fail or end, and every way to close: refused, a peer that never
completes the handshake, EOF, reset, close() in each state and from each listener, the
runtime's close, and 1,000 sockets that leave nothing behind."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any, Dict, List

import pytest

from tests.net.support import blackhole, refused_port
from tests.peers.lifecycle import non_peer_threads, open_fd_count
from tests.tcp.support import (
    Acceptor,
    connect,
    echo,
    listen,
    send_then,
)
from tests.support.events import close_on_message
from tests.support.runtimes import new_runtime
from tests.support.waits import WAIT, barrier, wait_until

pytestmark = pytest.mark.timeout(90)


def test_refused_is_minus_4_then_close(rt: Any, quiet_log: None) -> None:
    sock = rt.createTCPSocket()
    events = listen(sock)
    sock.connect(address="127.0.0.1", port=refused_port())
    events.error(-4, "connect:fail connection refused")
    events.expect("Close")
    barrier(rt)
    assert events.pending() == [] and sock.state.name == "FAILED"
    assert sock not in rt.live_tasks()


def test_a_name_that_does_not_resolve_is_minus_4(rt: Any) -> None:
    sock = rt.createTCPSocket()
    events = listen(sock)
    sock.connect(address="no-such-host.invalid", port=4567)
    assert events.error(-4)["errMsg"].startswith("connect:fail name not resolved")
    events.expect("Close")


def test_a_host_name_connects(rt: Any) -> None:
    with Acceptor() as peer:
        sock, events = connect(rt, peer.port, address="localhost")
        sock.close()
        events.expect("Close")


def test_a_handshake_that_never_completes_is_minus_4_at_the_timeout(rt: Any) -> None:
    """The peer's accept queue is full, so its kernel drops our SYNs: the default 2 s."""
    with blackhole() as port:
        sock = rt.createTCPSocket()
        events = listen(sock)
        start = time.monotonic()
        sock.connect(address="127.0.0.1", port=port)
        events.error(-4, "connect:fail timeout")
        elapsed = events.times[0] - start
        assert 1.8 <= elapsed <= 2.2, elapsed
        events.expect("Close")
        started = time.monotonic()
        other = rt.createTCPSocket()
        quick = listen(other)
        other.connect(address="127.0.0.1", port=port, timeout=0.5)  # seconds, as FinClip
        quick.error(-4, "connect:fail timeout")
        assert 0.45 <= quick.times[0] - started <= 0.55 + 0.1


def test_peer_eof_delivers_the_data_then_close(
    rt: Any, hostile_server: Any, quiet_log: None
) -> None:
    url = hostile_server(send_then(b"goodbye", "eof"))
    sock, events = connect(rt, url.server.port)
    assert events.wait_bytes(7) == b"goodbye"
    events.expect("Close")
    assert "Error" not in events.names() and sock.state.name == "CLOSED"
    sock.write(b"too late")
    events.error(-2, "write:fail socket is closed")


def test_peer_reset_is_minus_2_then_close(rt: Any, hostile_server: Any) -> None:
    url = hostile_server(send_then(b"x" * 1000, "reset"))
    sock, events = connect(rt, url.server.port)
    res = events.expect("Error")
    assert res["errCode"] == -2 and res["errMsg"].startswith("read:fail"), res
    events.expect("Close")
    assert sock.state.name == "FAILED" and events.names().count("Close") == 1


def test_listeners_attached_late_miss_nothing(rt: Any, hostile_server: Any) -> None:
    url = hostile_server(send_then(b"hello", "eof"))
    sock = rt.createTCPSocket()
    sock.connect(address="127.0.0.1", port=url.server.port)
    assert wait_until(lambda: sock.state.name == "CLOSED")  # every event emitted, none heard
    barrier(rt)
    events = listen(sock)
    assert [events.next()[0] for _ in range(3)] == ["Connect", "Message", "Close"]
    assert bytes(events.received) == b"hello"


def test_close_while_connecting(rt: Any, quiet_log: None) -> None:
    with blackhole() as port:
        sock = rt.createTCPSocket()
        events = listen(sock)
        sock.connect(address="127.0.0.1", port=port, timeout=30)
        barrier(rt)
        assert sock.state.name == "CONNECTING"
        sock.close()
        events.expect("Close")
        assert rt.net.live()["dials"] == 0
        barrier(rt)
        assert events.names() == ["Close"]


def test_close_twice_and_close_before_connect(rt: Any) -> None:
    sock = rt.createTCPSocket()
    events = listen(sock)
    sock.close()
    sock.close()
    events.expect("Close")
    with Acceptor() as peer:
        other, other_events = connect(rt, peer.port)
        other.close()
        other.close()
        other_events.expect("Close")
        barrier(rt)
    assert events.pending() == other_events.pending() == []


@pytest.mark.parametrize("listener", ["Connect", "Message", "Error", "Close", "Drain"])
def test_close_from_inside_every_listener(
    rt: Any, hostile_server: Any, listener: str, quiet_log: None
) -> None:
    url = hostile_server(echo)
    sock = rt.createTCPSocket()
    log: List[str] = []
    closed = threading.Event()

    def record(name: str) -> Any:
        def on(res: Dict[str, Any]) -> None:
            log.append(name)
            if name == listener:
                sock.close()
                sock.close()
            if name == "Close":
                closed.set()

        return on

    for name in ("Connect", "Message", "Error", "Close", "Drain"):
        getattr(sock, "on" + name)(record(name))
    if listener == "Error":
        sock.write(b"before connect")  # -2: its listener closes the socket
    else:
        sock.connect(address="127.0.0.1", port=url.server.port)
        if listener == "Drain":
            assert sock.write(b"x" * (2 * 2**20)) is False  # past the high watermark
        elif listener != "Connect":  # (a write would race the close in onConnect)
            sock.write(b"echo me")
        if listener == "Close":
            sock.close()  # its listener closes again
    assert closed.wait(WAIT)
    barrier(rt)
    assert log.count("Close") == 1 and log[-1] == "Close", log
    assert listener in log


def test_runtime_close_closes_every_socket_once(hostile_server: Any) -> None:
    url = hostile_server(echo)
    gc.collect()
    with blackhole() as silent, Acceptor() as sink:  # the sink accepts and never reads
        fds = open_fd_count()
        rt = new_runtime()
        fresh = listen(rt.createTCPSocket())
        connecting = listen(rt.createTCPSocket())
        connecting.sock.connect(address="127.0.0.1", port=silent, timeout=30)
        open_sock, open_events = connect(rt, url.server.port)
        open_sock.write(b"ping")
        open_events.wait_bytes(4)
        closing_sock, closing = connect(rt, sink.port)
        closing_sock.write(b"x" * (12 * 2**20))  # more than the kernel takes: flushing lasts
        closing_sock.close()
        barrier(rt)
        assert [e.sock.state.name for e in (fresh, connecting, open_events, closing)] == [
            "NEW",
            "CONNECTING",
            "OPEN",
            "CLOSING",
        ]
        rt.close()
        for events in (fresh, connecting, open_events, closing):
            events.expect("Close")
            assert events.names().count("Close") == 1
            assert "Error" not in events.names()
        assert rt.live_tasks() == []
        sink.reap()
        # the echo peer closes its side when it sees our FIN
        assert wait_until(lambda: open_fd_count() == fds), (open_fd_count(), fds)


def test_a_thousand_sockets_leave_nothing_behind(quiet_log: None) -> None:
    gc.collect()
    with Acceptor() as peer:
        fds = open_fd_count()
        threads = len(non_peer_threads())
        rt = new_runtime({"limits": {"tcpCreatesPer5Min": 1000}})
        try:
            done = threading.Semaphore(0)
            for _ in range(20):
                for _sock in range(50):
                    sock = rt.createTCPSocket()
                    sock.onConnect(lambda res, sock=sock: sock.close())
                    sock.onClose(lambda res: done.release())
                    sock.onError(lambda res: pytest.fail("error: %r" % res))
                    sock.connect(address="127.0.0.1", port=peer.port)
                for _ in range(50):
                    assert done.acquire(timeout=WAIT)
                peer.reap()
            barrier(rt)
            assert rt.live_tasks() == []
            assert rt.net.live() == {"dials": 0, "streams": 0, "lookups": 0}
            assert rt.loop.pending_counts() == {"ready": 0, "timers": 0, "readers": 0, "writers": 0}
            assert peer.accepted == 1000
        finally:
            rt.close()
        # bounded: a peer of an earlier test may still be closing its sockets on its threads,
        # and our acceptor may accept the last connections after the last reap: reap again
        assert wait_until(lambda: peer.reap() or open_fd_count() == fds), (open_fd_count(), fds)
        assert len(non_peer_threads()) == threads


def test_messages_stop_once_close_returns(rt: Any, hostile_server: Any, quiet_log: None) -> None:
    def flood(conn: Any, release: threading.Event) -> None:
        while not release.is_set():
            conn.sendall(b"flood" * 1000)

    url = hostile_server(flood)
    sock = rt.createTCPSocket()
    log, closed = close_on_message(sock, 10)
    sock.connect(address="127.0.0.1", port=url.server.port)
    assert closed.wait(WAIT)
    barrier(rt)
    assert log == ["Message"] * 10 + ["Close"]
