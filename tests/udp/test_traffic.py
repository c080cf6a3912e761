"""Datagrams through real loopback sockets, IPv4 and IPv6: shape, size, volume, peers."""

from __future__ import annotations

import struct
import threading
from typing import Any, Dict, List

import pytest

from tests.support.waits import WAIT
from tests.udp.support import FAMILY_NAMES, HOSTS, LOOP_THREAD, listen
from tests.support.waits import barrier

pytestmark = pytest.mark.timeout(30)

FAMILIES = ["udp4", "udp6"]


@pytest.mark.parametrize("family", FAMILIES)
def test_echo_round_trip_and_message_shape(rt: Any, udp_echo: Any, family: str) -> None:
    peer = udp_echo(family)
    sock = rt.createUDPSocket(family)
    events = listen(sock)
    port = sock.bind()
    assert events.expect("Listening") == {}
    sock.send({"address": peer.address, "port": peer.port, "message": b"ping"})
    res = events.expect("Message")
    wildcard = "::" if family == "udp6" else "0.0.0.0"
    assert res == {
        "message": b"ping",
        "remoteInfo": {
            "address": HOSTS[family],
            "family": FAMILY_NAMES[family],
            "port": peer.port,
            "size": 4,
        },
        "localInfo": {"address": wildcard, "family": FAMILY_NAMES[family], "port": port, "size": 4},
    }
    assert type(res["message"]) is bytes
    data, sender = peer.received.get(timeout=WAIT)
    assert data == b"ping" and sender[1] == port


def test_udp6_keyword_form_on_loopback(rt: Any, udp_echo: Any) -> None:
    peer = udp_echo("udp6")
    sock = rt.createUDPSocket(type="udp6")
    events = listen(sock)
    sock.send(address="::1", port=peer.port, message="v6")
    res = events.expect("Message")
    assert res["remoteInfo"]["family"] == "IPv6" and res["message"] == b"v6"


def test_str_is_sent_as_utf8(rt: Any, udp_echo: Any) -> None:
    peer = udp_echo("udp4")
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.send(address=peer.address, port=peer.port, message="héllo ✓")
    res = events.expect("Message")
    assert res["message"] == "héllo ✓".encode("utf-8")
    assert res["remoteInfo"]["size"] == len("héllo ✓".encode("utf-8"))


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_offset_and_length_slice_the_message(rt: Any, udp_echo: Any, kind: Any) -> None:
    peer = udp_echo("udp4")
    sock = rt.createUDPSocket()
    events = listen(sock)
    message = kind(b"0123456789")
    sock.send(address=peer.address, port=peer.port, message=message, offset=2, length=3)
    sock.send(address=peer.address, port=peer.port, message=message, offset=7)
    sock.send(address=peer.address, port=peer.port, message=message, length=2)
    sock.send(address=peer.address, port=peer.port, message=message, offset=10)
    got = [events.expect("Message")["message"] for _ in range(4)]
    assert got == [b"234", b"789", b"01", b""]


def test_mutable_buffer_is_copied_when_sent_from_another_thread(rt: Any, udp_echo: Any) -> None:
    peer = udp_echo("udp4")
    sock = rt.createUDPSocket()
    events = listen(sock)
    buffer = bytearray(b"before")
    sock.send(address=peer.address, port=peer.port, message=buffer)
    buffer[:] = b"AFTER!"  # the caller reuses its buffer at once
    assert events.expect("Message")["message"] == b"before"


@pytest.mark.parametrize("family", FAMILIES)
def test_largest_datagram_whole_both_ways(rt: Any, udp_echo: Any, family: str) -> None:
    peer = udp_echo(family)
    sock = rt.createUDPSocket(family)
    events = listen(sock)
    sock.bind()
    events.expect("Listening")
    payload = bytes(range(256)) * 255 + bytes(range(227))
    assert len(payload) == 65507
    sock.send(address=peer.address, port=peer.port, message=payload)
    data, _ = peer.received.get(timeout=WAIT)
    assert data == payload  # arrived whole at the peer
    res = events.expect("Message")  # and came back whole
    assert res["message"] == payload and res["remoteInfo"]["size"] == 65507


def test_two_ftcore_sockets_talk(rt: Any) -> None:
    a, b = rt.createUDPSocket(), rt.createUDPSocket()
    ea, eb = listen(a), listen(b)
    pa, pb = a.bind(), b.bind(0)
    ea.expect("Listening")
    eb.expect("Listening")
    a.send(address="127.0.0.1", port=pb, message=b"hello b")
    res = eb.expect("Message")
    assert res["message"] == b"hello b" and res["remoteInfo"]["port"] == pa
    b.send(address=res["remoteInfo"]["address"], port=res["remoteInfo"]["port"], message=b"hi a")
    res = ea.expect("Message")
    assert res["message"] == b"hi a" and res["remoteInfo"]["port"] == pb


def test_send_before_bind_binds_implicitly(rt: Any, udp_echo: Any) -> None:
    peer = udp_echo("udp4")
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.send(address=peer.address, port=peer.port, message=b"unbound")
    res = events.expect("Message")
    assert res["message"] == b"unbound" and res["localInfo"]["port"] > 0


def test_connect_then_write(rt: Any, udp_echo: Any) -> None:
    peer = udp_echo("udp4")
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.connect({"address": peer.address, "port": peer.port})
    sock.write({"message": b"short form"})
    sock.write({"address": peer.address, "port": peer.port, "message": b"seed form"})
    assert events.expect("Message")["message"] == b"short form"
    assert events.expect("Message")["message"] == b"seed form"
    assert [d for d, _ in peer.datagrams] == [b"short form", b"seed form"]


def test_write_without_connect_is_send(rt: Any, udp_echo: Any) -> None:
    peer = udp_echo("udp6")
    sock = rt.createUDPSocket("udp6")
    events = listen(sock)
    sock.write(address=peer.address, port=peer.port, message=b"as send")
    assert events.expect("Message")["message"] == b"as send"


def test_host_names_resolve_off_the_loop_and_keep_call_order(rt: Any, udp_sink: Any) -> None:
    peer = udp_sink("udp4")
    sock = rt.createUDPSocket()
    events = listen(sock)
    for i in range(5):
        host = "localhost" if i % 2 == 0 else "127.0.0.1"
        sock.send(address=host, port=peer.port, message=b"%d" % i)
    got = [peer.received.get(timeout=WAIT)[0] for _ in range(5)]
    assert got == [b"0", b"1", b"2", b"3", b"4"]
    barrier(rt)
    assert events.pending() == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("family", FAMILIES)
def test_ten_thousand_datagrams_none_lost(rt: Any, udp_echo: Any, family: str) -> None:
    """10,000 numbered datagrams through the echo peer, a window of 32 in flight."""
    total, window = 10000, 32
    peer = udp_echo(family)
    sock = rt.createUDPSocket(family)
    seen: List[int] = []
    errors: List[Dict[str, Any]] = []
    done = threading.Event()
    next_seq = [window]
    dest = {"address": peer.address, "port": peer.port}

    def on_message(res: Dict[str, Any]) -> None:
        seen.append(struct.unpack("!I", res["message"][:4])[0])
        if next_seq[0] < total:  # one back, one out: the window stays full
            sock.send(dest, message=struct.pack("!I", next_seq[0]) + b"." * 60)
            next_seq[0] += 1
        if len(seen) == total:
            done.set()

    sock.onMessage(on_message)
    sock.onError(errors.append)
    sock.bind()
    for seq in range(window):
        sock.send(dest, message=struct.pack("!I", seq) + b"." * 60)
    assert done.wait(45), "got %d of %d (errors %r)" % (len(seen), total, errors[:3])
    assert sorted(seen) == list(range(total))
    assert errors == []
    assert peer.count == total


def test_listeners_run_on_the_loop_thread(rt: Any, udp_echo: Any) -> None:
    peer = udp_echo("udp4")
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.bind()
    sock.send(address=peer.address, port=peer.port, message=b"x")
    sock.send(address=peer.address, port=-1, message=b"x")
    events.expect("Listening")
    names = {events.next()[0], events.next()[0]}
    assert names == {"Message", "Error"}
    sock.close()
    events.expect("Close")
    assert events.threads == {LOOP_THREAD}


def test_listeners_never_run_inside_the_call_even_on_the_loop_thread(rt: Any) -> None:
    sock = rt.createUDPSocket()
    inside = threading.local()
    seen: List[bool] = []
    finished = threading.Event()

    def on_event(res: Dict[str, Any]) -> None:
        seen.append(getattr(inside, "flag", False))
        if len(seen) == 3:
            finished.set()

    sock.onError(on_event)
    sock.onListening(on_event)
    sock.onClose(on_event)

    def on_loop() -> None:
        inside.flag = True
        sock.send(address="256.0.0.1", port=1, message=b"x")
        sock.bind()
        sock.close()
        inside.flag = False

    rt.loop.call_soon_threadsafe(on_loop)
    assert finished.wait(WAIT)
    assert seen == [False, False, False]
