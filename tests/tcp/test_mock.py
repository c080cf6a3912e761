"""The TCP mock of `ftcore.testing`: scripted peers through the `ft_mock` fixture, with every
TCPSocket rule still applied by the core."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ftcore.testing import ANY, MockTransport
from tests.tcp.support import listen
from tests.support.waits import barrier

pytestmark = pytest.mark.timeout(30)


def test_a_scripted_conversation(ft_mock: Any) -> None:
    peer = ft_mock.tcp.add("chat.example.com", 7000)
    peer.send(b"welcome").expect(b"ping").send("pong").expect().send(b"bye").close()
    sock = ft_mock.runtime.createTCPSocket()
    events = listen(sock)
    sock.connect(address="chat.example.com", port=7000)
    events.expect("Connect")
    assert events.expect("Message")["message"] == b"welcome"
    sock.write(b"pi")
    sock.write(b"ng")  # TCP is a stream: the script waits for the four bytes
    assert events.expect("Message")["message"] == b"pong"
    sock.write("anything")
    res = events.expect("Message")
    assert res["message"] == b"bye"
    assert res["remoteInfo"] == {"address": "chat.example.com", "family": "IPv4", "port": 7000}
    events.expect("Close")
    [conn] = peer.connections
    assert conn.received == b"pinganything" and conn.writes == [b"pi", b"ng", b"anything"]
    assert conn.sent == [b"welcome", b"pong", b"bye"] and conn.ended == "peer"
    ft_mock.verify()


def test_echo_push_and_client_close(ft_mock: Any) -> None:
    peer = ft_mock.tcp.add(port=9000, echo=True)  # any host
    sock = ft_mock.runtime.createTCPSocket()
    events = listen(sock)
    sock.connect(address="10.0.0.1", port=9000)
    events.expect("Connect")
    sock.write(b"echo?")
    assert events.expect("Message")["message"] == b"echo?"
    [conn] = peer.connections
    conn.push(b"pushed")
    assert events.expect("Message")["message"] == b"pushed"
    sock.close()
    events.expect("Close")
    assert conn.ended == "client" and not conn.open


def test_failures_as_the_real_transport_reports_them(ft_mock: Any) -> None:
    ft_mock.tcp.add("refused.example", 7000, error="refused")
    ft_mock.tcp.add("silent.example", 7000, delay=math.inf)
    ft_mock.tcp.add("reset.example", 7000).send(b"x").reset()
    rt = ft_mock.runtime
    cases = [
        ("refused.example", -4, "connect:fail connection refused"),
        ("silent.example", -4, "connect:fail timeout"),
        ("nobody.example", -4, None),
        ("reset.example", -2, "read:fail connection reset"),
    ]
    for host, code, msg in cases:
        sock = rt.createTCPSocket()
        events = listen(sock)
        sock.connect(address=host, port=7000, timeout=0.2)
        if code == -2:
            events.expect("Connect")
        events.error(code, msg)
        events.expect("Close")


def test_the_core_rules_apply_over_the_mock() -> None:
    mock = MockTransport()
    mock.tcp.add(echo=True)
    with mock.make_runtime({"domains": {"tcp": ["ok.example"]}}) as rt:
        refused = listen(rt.createTCPSocket())
        refused.sock.connect(address="other.example", port=7000)
        refused.error(-3, "connect:fail url not in domain list")
        banned = listen(rt.createTCPSocket())
        banned.sock.connect(address="ok.example", port=80)
        banned.error(-3, "connect:fail port not allowed")
        barrier(rt)
        assert mock.tcp.connections == []  # refused by the core: the peer never saw them


def test_a_mismatch_is_recorded_and_verify_says_so(ft_mock: Any) -> None:
    peer = ft_mock.tcp.add("strict.example", 7000).expect(b"hello").expect(ANY)
    sock = ft_mock.runtime.createTCPSocket()
    events = listen(sock)
    sock.connect(address="strict.example", port=7000)
    events.expect("Connect")
    sock.write(b"howdy")
    events.error(-2)
    events.expect("Close")
    assert peer.connections[0].mismatches == ["expected b'hello', received b'howdy'"]
    with pytest.raises(AssertionError, match="expected b'hello'"):
        ft_mock.verify()
