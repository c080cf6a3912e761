"""Data: write rules and order, the send-buffer bound, a peer that never reads, 64 MiB
echoed byte-exact, IPv6, and the shape of onMessage."""

from __future__ import annotations

import hashlib
import socket
import threading
import tracemalloc
from typing import Any, Dict, List

import pytest

from tests.peers.udp import ipv6_available
from tests.tcp.support import Acceptor, connect, echo, listen
from tests.support.waits import barrier
from tests.support.runtimes import new_runtime
from tests.support.waits import WAIT

pytestmark = pytest.mark.timeout(120)


def pattern(size: int, seed: int = 0) -> bytes:
    block = bytes((seed + i * 7) % 256 for i in range(4093))  # a prime length: no alignment
    return (block * (size // len(block) + 1))[:size]


def test_write_before_connect_and_after_close_are_minus_2(rt: Any, hostile_server: Any) -> None:
    url = hostile_server(echo)
    sock = rt.createTCPSocket()
    events = listen(sock)
    sock.write(b"early")
    events.error(-2, "write:fail socket is not connected")
    sock.connect(address="127.0.0.1", port=url.server.port)
    events.expect("Connect")
    sock.close()
    assert sock.write("late") is False
    got = dict([events.next(), events.next()])  # the close may end before the error is heard
    assert got == {"Close": {}, "Error": {"errMsg": "write:fail socket is closed", "errCode": -2}}


def test_writes_made_while_connecting_go_out_first_and_in_order(
    rt: Any, hostile_server: Any
) -> None:
    url = hostile_server(echo)
    sock = rt.createTCPSocket()
    events = listen(sock)
    sock.connect(address="127.0.0.1", port=url.server.port)
    pieces: List[Any] = ["text é,", b"bytes,", bytearray(b"bytearray,"), memoryview(b"view,")]
    for piece in pieces:
        assert sock.write(piece) is True
    expected = "text é,".encode() + b"bytes,bytearray,view,"
    assert events.wait_bytes(len(expected)) == expected


def test_a_mutable_buffer_is_copied_at_the_call(rt: Any, hostile_server: Any) -> None:
    url = hostile_server(echo)
    sock, events = connect(rt, url.server.port)
    buffer = bytearray(b"first")
    sock.write(buffer)
    buffer[:] = b"XXXXX"  # the caller reuses its buffer at once
    assert events.wait_bytes(5) == b"first"


def test_message_shape_and_thread(rt: Any, hostile_server: Any) -> None:
    url = hostile_server(echo)
    sock, events = connect(rt, url.server.port)
    sock.write(b"ping")
    res = events.expect("Message")
    assert res["message"] == b"ping" and type(res["message"]) is bytes
    assert res["remoteInfo"] == {"address": "127.0.0.1", "family": "IPv4", "port": url.server.port}
    local = res["localInfo"]
    assert local["address"] == "127.0.0.1" and local["family"] == "IPv4" and local["port"] > 0
    assert events.threads == {"ftcore-loop"}


def test_a_write_past_the_bound_is_dropped_whole() -> None:
    """The peer never reads; chunks are written until one is refused: that one, and only it,
    is missing from what the peer then reads."""
    limit = 2 * 2**20
    chunk = 256 * 1024
    with Acceptor() as peer, new_runtime({"limits": {"tcpMaxBufferedBytes": limit}}) as rt:
        sock, events = connect(rt, peer.port)
        assert sock.write(b"x" * (limit + 1)) is False  # alone past the bound
        events.error(-2, "write:fail send buffer full")
        sent: List[bytes] = []
        for index in range(1000):
            data = pattern(chunk, seed=index)
            sock.write(data)
            barrier(rt)  # an onError of this write has been emitted by now
            if events.pending():
                refused = index
                break
            sent.append(data)
        else:
            pytest.fail("the bound was never reached")
        assert refused * chunk > limit  # the kernel took its share first
        sock.write(b"after")  # small enough to fit: accepted, after the earlier data
        barrier(rt)
        assert events.pending() == []
        [conn] = peer._conns
        conn.settimeout(WAIT)
        expected = b"".join(sent) + b"after"
        received = bytearray()
        while len(received) < len(expected):
            received += conn.recv(1 << 20)
        assert received == expected


def test_a_peer_that_never_reads_stops_the_writer_and_memory_stays_flat(
    rt: Any, quiet_log: None
) -> None:
    """A producer that writes while `write` says True: against a peer that does not read it
    stops near the high watermark, and onDrain lets it go on once the peer reads."""
    chunk = pattern(64 * 1024)
    with Acceptor() as peer:
        sock, events = connect(rt, peer.port)
        state = {"written": 0, "stops": 0}
        total = 64 * 2**20

        def produce(res: Any = None) -> None:
            while state["written"] < total:
                state["written"] += len(chunk)
                if not sock.write(chunk):
                    state["stops"] += 1
                    return

        sock.onDrain(produce)
        tracemalloc.start()
        try:
            rt.loop.call_soon_threadsafe(produce)
            barrier(rt)
            stalled = state["written"]
            assert state["stops"] == 1 and stalled < 32 * 2**20  # the kernel's share + 1 MiB
            threading.Event().wait(0.2)
            barrier(rt)
            assert state["written"] == stalled and "Drain" not in events.names()
            [conn] = peer._conns
            conn.settimeout(WAIT)
            digest = hashlib.sha256()
            received = 0
            while received < total:  # the peer reads now: drains resume the producer
                data = conn.recv(1 << 20)
                assert data
                digest.update(data)
                received += len(data)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert digest.hexdigest() == hashlib.sha256(chunk * (total // len(chunk))).hexdigest()
        assert state["stops"] > 1 and events.names().count("Drain") >= state["stops"] - 1
        assert peak < 12 * 2**20, "memory grew: peak %d bytes" % peak


def test_64_mib_echoed_byte_exact_in_order(rt: Any, hostile_server: Any) -> None:
    url = hostile_server(echo)
    total = 64 * 2**20
    data = pattern(total, seed=11)
    sock = rt.createTCPSocket()
    digest = hashlib.sha256()
    got = {"bytes": 0, "messages": 0}
    finished = threading.Event()
    position = {"sent": 0}

    def on_message(res: Dict[str, Any]) -> None:
        digest.update(res["message"])
        got["bytes"] += len(res["message"])
        got["messages"] += 1
        if got["bytes"] >= total:
            finished.set()

    def produce(res: Any = None) -> None:
        view = memoryview(data)
        while position["sent"] < total:
            piece = view[position["sent"] : position["sent"] + 2**20]
            position["sent"] += len(piece)
            if not sock.write(piece):
                return

    sock.onMessage(on_message)
    sock.onConnect(produce)
    sock.onDrain(produce)
    sock.connect(address="127.0.0.1", port=url.server.port)
    assert finished.wait(60)
    assert got["bytes"] == total and digest.digest() == hashlib.sha256(data).digest()
    assert got["messages"] > 1


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_on_loopback(rt: Any, hostile_server: Any) -> None:
    url = hostile_server(echo, host="::1")
    for sock in (rt.createTCPSocket({"type": "ipv6"}), rt.createTCPSocket(type="ipv6")):
        events = listen(sock)
        sock.connect(address="[::1]", port=url.server.port)
        events.expect("Connect")
        sock.write("over v6")
        res = events.expect("Message")
        assert res["message"] == b"over v6"
        assert res["remoteInfo"] == {"address": "::1", "family": "IPv6", "port": url.server.port}
        assert res["localInfo"]["family"] == "IPv6" and res["localInfo"]["address"] == "::1"
        sock.close()
        events.expect("Close")


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_an_ipv6_socket_reaches_ipv4_as_mapped(rt: Any) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        sock = rt.createTCPSocket({"type": "ipv6"})
        events = listen(sock)
        sock.connect(address="127.0.0.1", port=server.getsockname()[1])
        events.expect("Connect")
        conn, _ = server.accept()
        conn.sendall(b"v4")
        res = events.expect("Message")
        assert res["remoteInfo"]["address"] == "::ffff:127.0.0.1"
        assert res["remoteInfo"]["family"] == "IPv6"
        conn.close()
