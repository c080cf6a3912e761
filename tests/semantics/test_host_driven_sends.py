"""Sends on a host-driven runtime between passes: UDP `send`, WebSocket `send` and TCP `write`
from the host's thread go out inside the call (`EventLoop.run_or_post`), with no pass; what
they cause for listeners still waits for the host's next pass, on the host's thread; and a
call made while earlier ones are still queued keeps its place behind them. Real peers."""

from __future__ import annotations

import queue
import socket
import threading
from typing import Any, Callable, Dict, List

import pytest

import ftcore
from tests.support.waits import WAIT, wait_until

pytestmark = pytest.mark.timeout(120)

Res = Dict[str, Any]


@pytest.fixture
def host(make_runtime: Callable[..., Any]) -> ftcore.Runtime:
    return make_runtime(autostart=False)  # type: ignore[no-any-return]


def pump(rt: ftcore.Runtime, predicate: Callable[[], Any]) -> None:
    """Run the host's passes until `predicate` holds (bounded)."""
    assert wait_until(lambda: predicate() or rt.loop.run_once(0.01), WAIT), "timed out"


def test_udp_send_leaves_inside_the_call(host: ftcore.Runtime, udp_sink: Any) -> None:
    peer = udp_sink("udp4")
    sock = host.createUDPSocket()
    sock.bind(0)
    pump(host, lambda: not host.loop.has_ready())
    sock.send(address=peer.address, port=peer.port, message=b"now")
    assert peer.received.get(timeout=WAIT)[0] == b"now"  # no pass has run since
    sock.close()


def test_udp_an_error_is_heard_on_the_hosts_next_pass_not_inside_send(
    host: ftcore.Runtime,
) -> None:
    sock = host.createUDPSocket()
    sock.bind(0)
    heard: List[Res] = []
    sock.onError(heard.append)
    pump(host, lambda: not host.loop.has_ready())
    sock.send(address="127.0.0.1", port=0, message=b"x")
    assert heard == []
    pump(host, lambda: heard)
    assert heard[0]["errCode"] == 2
    sock.close()


def test_udp_a_write_queued_behind_a_connect_keeps_its_place(
    host: ftcore.Runtime, udp_sink: Any
) -> None:
    peer = udp_sink("udp4")
    sock = host.createUDPSocket()
    sock.bind(0)
    errors: List[Res] = []
    sock.onError(errors.append)
    sock.connect(address=peer.address, port=peer.port)  # posted: connect always hops
    sock.write(message=b"after connect")  # so this waits behind it
    with pytest.raises(queue.Empty):
        peer.received.get(timeout=0.05)
    pump(host, lambda: peer.count)
    assert peer.received.get(timeout=WAIT)[0] == b"after connect"
    assert errors == []
    sock.close()


def test_websocket_send_leaves_inside_the_call(host: ftcore.Runtime, ws_server: Any) -> None:
    server = ws_server("echo")
    ws = host.connectSocket(url=server.url)
    opened = threading.Event()
    ws.onOpen(lambda res: opened.set())
    pump(host, opened.is_set)
    pump(host, lambda: not host.loop.has_ready())
    results: List[Res] = []
    ws.send(data="now", success=results.append)
    assert server.messages.get(timeout=WAIT) == "now"  # no pass has run since
    assert results == []  # success is the host's, on its next pass
    me = threading.current_thread().name
    thread: List[str] = []
    ws.onMessage(lambda res: thread.append(threading.current_thread().name))
    pump(host, lambda: results and thread)
    assert results[0]["errMsg"] == "sendSocketMessage:ok" and thread == [me]
    ws.close()
    pump(host, lambda: ws.state.name in ("SUCCEEDED", "FAILED", "ABORTED"))


def test_tcp_write_leaves_inside_the_call(host: ftcore.Runtime, hostile_server: Any) -> None:
    received: "queue.Queue[bytes]" = queue.Queue()

    def record(conn: socket.socket, release: threading.Event) -> None:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            received.put(data)

    url = hostile_server(record)
    sock = host.createTCPSocket()
    connected = threading.Event()
    sock.onConnect(lambda res: connected.set())
    sock.connect(address="127.0.0.1", port=url.server.port)
    pump(host, connected.is_set)
    pump(host, lambda: not host.loop.has_ready())
    sock.write(b"now")
    assert received.get(timeout=WAIT) == b"now"  # no pass has run since
    sock.close()
    closed = threading.Event()
    sock.onClose(lambda res: closed.set())
    pump(host, closed.is_set)
