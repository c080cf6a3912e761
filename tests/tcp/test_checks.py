"""Bad input: each check's errCode, its place in the order, and that refused connects never
reach the network (a listener that would see them accepts nothing)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

import ftcore

from ftcore.loop import ManualClock
from tests.net.support import listener
from tests.support.events import EventQueue
from tests.tcp.support import Acceptor, listen
from tests.support.waits import barrier, wait_until
from tests.support.runtimes import new_runtime

pytestmark = pytest.mark.timeout(60)


def refused_connect(rt: Any, code: int, msg: str, **options: Any) -> EventQueue:
    sock = rt.createTCPSocket()
    events = listen(sock)
    sock.connect(options)
    events.error(code, msg)
    return events


def refused_before_the_network(rt: Any, peer: Acceptor, msg: str, address: str) -> None:
    """A connect to `peer` refused with -3 `msg` closes the socket; `peer` never sees it."""
    events = refused_connect(rt, -3, msg, address=address, port=peer.port)
    events.expect("Close")
    barrier(rt)
    assert peer.accepted == 0


@pytest.mark.parametrize(
    "address", [None, "", 123, "256.1.1.1", "1.2.3", "::1", "[::1]", "no spaces.example", b"x"]
)
def test_invalid_address_is_1_and_the_socket_stays_usable(rt: Any, address: Any) -> None:
    with listener() as server:
        sock = rt.createTCPSocket()  # ipv4: an IPv6 literal is an invalid address too
        events = listen(sock)
        sock.connect({"address": address, "port": server.getsockname()[1]})
        events.error(1, "connect:fail invalid address")
        sock.connect({"address": "127.0.0.1", "port": server.getsockname()[1]})
        events.expect("Connect")
        sock.close()
        events.expect("Close")


@pytest.mark.parametrize("port", [None, 0, -1, 65536, "8080", True, 80.5, [80]])
def test_invalid_port_is_2(rt: Any, port: Any) -> None:
    events = refused_connect(rt, 2, "connect:fail invalid port", address="127.0.0.1", port=port)
    barrier(rt)
    assert events.pending() == [] and events.sock.state.name == "NEW"


def test_the_address_is_checked_before_the_port(rt: Any) -> None:
    refused_connect(rt, 1, "connect:fail invalid address", address="1.2.3", port="x")


@pytest.mark.parametrize("timeout", [0, -1, "2", True, float("nan")])
def test_invalid_timeout_is_minus_1(rt: Any, timeout: Any) -> None:
    refused_connect(
        rt, -1, "connect:fail invalid timeout", address="127.0.0.1", port=9999, timeout=timeout
    )


@pytest.mark.parametrize("port", [1, 80, 443, 1023, 1099, 3306, 8000, 8050, 8100, 8443, 27018])
def test_default_banned_ports_are_minus_3_then_close(rt: Any, port: int) -> None:
    events = refused_connect(
        rt, -3, "connect:fail port not allowed", address="127.0.0.1", port=port
    )
    events.expect("Close")
    assert events.sock.state.name == "FAILED"


def test_a_banned_port_is_never_connected_to() -> None:
    with Acceptor() as peer:
        config = {"tcp": {"bannedPorts": [[peer.port - 1, peer.port + 1]]}}
        with new_runtime(config) as rt:
            refused_before_the_network(rt, peer, "connect:fail port not allowed", "127.0.0.1")
        assert peer.accepted == 0  # not even later, once the runtime has closed


def test_an_empty_banned_list_bans_nothing() -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 1023))  # a privileged port: only root may listen there
        except OSError:
            pytest.skip("cannot listen on a port below 1024 here")
        probe.listen(1)
        with new_runtime({"tcp": {"bannedPorts": []}}) as rt:
            sock = rt.createTCPSocket()
            events = listen(sock)
            sock.connect(address="127.0.0.1", port=1023)
            events.expect("Connect")


def test_outside_the_domain_list_is_minus_3_and_inside_connects() -> None:
    with Acceptor() as peer:
        config = {"domains": {"tcp": ["allowed.example", "tcp://127.0.0.1:%d" % peer.port]}}
        with new_runtime(config) as rt:
            refused_before_the_network(rt, peer, "connect:fail url not in domain list", "127.0.0.2")
            sock = rt.createTCPSocket()
            allowed = listen(sock)
            sock.connect(address="127.0.0.1", port=peer.port)
            allowed.expect("Connect")
    with new_runtime({"domains": {"tcp": []}}) as rt:  # an empty list allows nothing
        refused_connect(
            rt, -3, "connect:fail url not in domain list", address="127.0.0.1", port=9999
        )


def test_the_creation_limit_is_minus_3_at_connect_and_slides() -> None:
    clock = ManualClock(1000.0)
    with Acceptor() as peer, new_runtime({"limits": {"tcpCreatesPer5Min": 3}}, clock=clock) as rt:
        first = [rt.createTCPSocket() for _ in range(3)]
        fourth = rt.createTCPSocket()
        events = listen(fourth)
        fourth.connect(address="127.0.0.1", port=peer.port)
        events.error(-3, "connect:fail too many sockets created")
        events.expect("Close")
        for sock in first:
            recorder = listen(sock)
            sock.connect(address="127.0.0.1", port=peer.port)
            recorder.expect("Connect")
            sock.close()
        clock.advance(299.0)
        late = listen(rt.createTCPSocket())
        late.sock.connect(address="127.0.0.1", port=peer.port)
        late.error(-3)
        clock.advance(1.5)  # the first three are more than 5 minutes old
        fresh = listen(rt.createTCPSocket())
        fresh.sock.connect(address="127.0.0.1", port=peer.port)
        fresh.expect("Connect")


@pytest.mark.parametrize("kind", ["ipv5", "udp4", 6, None])
def test_an_invalid_type_ends_the_socket_and_late_listeners_hear_it(rt: Any, kind: Any) -> None:
    sock = rt.createTCPSocket({"type": kind})
    barrier(rt)  # the events were emitted before anyone listened
    events = listen(sock)
    events.error(-1, "createTCPSocket:fail invalid type")
    events.expect("Close")
    sock.connect(address="127.0.0.1", port=9999)
    events.error(-2, "connect:fail socket is closed")
    assert sock not in rt.live_tasks()


def test_the_type_forms(rt: Any) -> None:
    for sock in (
        rt.createTCPSocket(),
        rt.createTCPSocket({"type": "ipv6"}),
        rt.createTCPSocket(type="ipv6"),
        rt.createTCPSocket("ipv6"),
        rt.createTCPSocket({"type": "ipv4"}, type="ipv6"),  # keywords win
    ):
        assert sock.state.name == "NEW"
    assert [s.type for s in rt.live_tasks()] == ["ipv4", "ipv6", "ipv6", "ipv6", "ipv6"]
    assert all(type(s) is ftcore.TCPSocket for s in rt.live_tasks())  # the public export


@pytest.mark.parametrize("data", [None, 42, {"data": b"x"}, ["x"]])
def test_invalid_data_is_minus_1(rt: Any, data: Any) -> None:
    sock = rt.createTCPSocket()
    events = listen(sock)
    assert sock.write(data) is False
    events.error(-1, "write:fail invalid data")


def test_connect_twice_is_minus_2(rt: Any) -> None:
    with Acceptor() as peer:
        sock = rt.createTCPSocket()
        events = listen(sock)
        sock.connect(address="127.0.0.1", port=peer.port)
        sock.connect(address="127.0.0.1", port=peer.port)  # connecting, or connected already
        got = dict([events.next(), events.next()])
        assert got == {
            "Connect": {},
            "Error": {"errMsg": "connect:fail already connected", "errCode": -2},
        }
        # the kernel completed the handshake before the peer's thread counted it: wait for it
        assert wait_until(lambda: peer.accepted >= 1)
        barrier(rt)
        assert peer.accepted == 1  # the second connect dialled nothing


def test_the_default_banned_ports_are_finclips() -> None:
    from ftcore._core.config import DEFAULTS

    ports = DEFAULTS["tcp"]["bannedPorts"]
    singles = {p for p in ports if isinstance(p, int)}
    ranges = [tuple(p) for p in ports if not isinstance(p, int)]
    assert ranges == [(1, 1023), (8000, 8100), (27017, 27019)]
    assert singles == {
        1099,
        1433,
        1521,
        1719,
        1720,
        1723,
        2049,
        2375,
        3128,
        3306,
        3389,
        3659,
        4045,
        5060,
        5061,
        5432,
        5984,
        6000,
        6379,
        6566,
        7001,
        7002,
        8443,
        8888,
        9200,
        9300,
        10051,
        10080,
        11211,
    }


@pytest.mark.parametrize(
    "config, message",
    [
        ({"tcp": {"bannedPort": []}}, "unknown config key 'bannedPort' in tcp"),
        ({"tcp": {"bannedPorts": 80}}, "config tcp.bannedPorts must be list or tuple, not int"),
        ({"tcp": {"bannedPorts": ["80"]}}, "config tcp.bannedPorts entry must be int, not str"),
        ({"tcp": {"bannedPorts": [0]}}, "entry 0 is not a port (1-65535)"),
        ({"tcp": {"bannedPorts": [70000]}}, "entry 70000 is not a port"),
        ({"tcp": {"bannedPorts": [[9, 1]]}}, "range [9, 1] ends before it starts"),
        ({"tcp": {"bannedPorts": [[1, 2, 3]]}}, "ranges are [first, last], not [1, 2, 3]"),
        ({"tcp": {"bannedPorts": [True]}}, "entry must be int, not bool"),
        ({"limits": {"tcpCreatesPer5Min": 0}}, "limits.tcpCreatesPer5Min must be at least 1"),
        ({"limits": {"tcpMaxBufferedBytes": 1.5}}, "limits.tcpMaxBufferedBytes must be int"),
        ({"domains": {"tcp": "a.example"}}, "config domains.tcp must be list or tuple"),
    ],
)
def test_tcp_config_is_checked_with_clear_errors(config: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        new_runtime(config)
    assert message in str(info.value)
