"""Every onError code of UDPSocket from a real cause (the seed's table: -1, -2, -3, 1, 2)."""

from __future__ import annotations

import socket
from typing import Any, Dict, List

import pytest

from ftcore import hookimpl
from ftcore._api.udp_checks import Reported
from tests.udp.support import HOSTS, free_port, listen
from tests.support.waits import barrier
from tests.support.runtimes import new_runtime

pytestmark = pytest.mark.timeout(30)


def send_error(rt: Any, options: Dict[str, Any], family: str = "udp4") -> Dict[str, Any]:
    sock = rt.createUDPSocket(family)
    events = listen(sock)
    sock.send(options)
    res = events.error()
    barrier(rt)
    assert events.pending() == [], "one error, nothing else"
    return res


@pytest.mark.parametrize(
    "address, errmsg",
    [
        ("256.1.1.1", "send:fail invalid address"),
        ("1.2.3", "send:fail invalid address"),
        ("bad host name", "send:fail invalid address"),
        ("", "send:fail invalid address"),
        (None, "send:fail invalid address"),
        (12345, "send:fail invalid address"),
        ("::1", "send:fail invalid address"),  # an IPv6 literal on a udp4 socket
        ("no-such-host.invalid", "send:fail address not resolved"),
    ],
)
def test_bad_address_is_errcode_1(rt: Any, address: Any, errmsg: str) -> None:
    res = send_error(rt, {"address": address, "port": 9, "message": b"x"})
    assert res == {"errMsg": errmsg, "errCode": 1}


@pytest.mark.parametrize("port", [-1, 0, 65536, 70000, "x", "9", None, True, 9.5])
def test_bad_port_is_errcode_2(rt: Any, port: Any) -> None:
    res = send_error(rt, {"address": "127.0.0.1", "port": port, "message": b"x"})
    assert res == {"errMsg": "send:fail invalid port", "errCode": 2}


def test_bad_port_on_udp6(rt: Any) -> None:
    res = send_error(rt, {"address": "::1", "port": 70000, "message": b"x"}, "udp6")
    assert res == {"errMsg": "send:fail invalid port", "errCode": 2}


def test_broadcast_without_flag_is_errcode_minus_3(rt: Any) -> None:
    res = send_error(rt, {"address": "255.255.255.255", "port": 9, "message": b"x"})
    assert res == {"errMsg": "send:fail broadcast not enabled", "errCode": -3}


def test_broadcast_with_flag_is_not_refused(rt: Any) -> None:
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.send(address="255.255.255.255", port=free_port(), message=b"x", setBroadcast=True)
    barrier(rt)
    # The network may still refuse it (-2 in a sandbox without broadcast), never as -3.
    assert all(res["errCode"] != -3 for name, res in events.pending() if name == "Error")


@pytest.mark.parametrize(
    "config, address",
    [
        ({"domains": {"udp": []}}, "127.0.0.1"),
        ({"domains": {"udp": ["example.com"]}}, "127.0.0.1"),
        ({"domains": {"udp": ["127.0.0.1"]}}, "localhost"),
        ({"domains": {"udp": ["udp://127.0.0.1:1"]}}, "127.0.0.1"),
    ],
)
def test_domain_list_refusal_is_errcode_minus_3(config: Any, address: str) -> None:
    with new_runtime(config) as rt:
        sock = rt.createUDPSocket()
        events = listen(sock)
        sock.send(address=address, port=9, message=b"x")
        sock.connect(address=address, port=9)
        assert events.error() == {"errMsg": "send:fail url not in domain list", "errCode": -3}
        assert events.error() == {"errMsg": "connect:fail url not in domain list", "errCode": -3}


def test_domain_list_allows_listed_destinations(udp_echo: Any) -> None:
    peer = udp_echo("udp4")
    with new_runtime({"domains": {"udp": ["udp://127.0.0.1:%d" % peer.port]}}) as rt:
        sock = rt.createUDPSocket()
        events = listen(sock)
        sock.send(address="127.0.0.1", port=peer.port, message=b"allowed")
        assert events.expect("Message")["message"] == b"allowed"


def test_bind_on_a_port_in_use_is_errcode_minus_2_and_socket_stays_usable(
    rt: Any, udp_echo: Any
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("0.0.0.0", 0))
        taken = holder.getsockname()[1]
        sock = rt.createUDPSocket()
        events = listen(sock)
        assert sock.bind(taken) == 0
        assert events.error() == {"errMsg": "bind:fail address in use", "errCode": -2}
    port = sock.bind()
    assert port > 0
    events.expect("Listening")
    peer = udp_echo("udp4")
    sock.send(address=peer.address, port=peer.port, message=b"again")
    assert events.expect("Message")["localInfo"]["port"] == port


@pytest.mark.parametrize("port", [-1, 65536, 70000, "x", None, 1.5])
def test_bind_bad_port_is_errcode_2(rt: Any, port: Any) -> None:
    sock = rt.createUDPSocket()
    events = listen(sock)
    assert sock.bind(port) == 0
    assert events.error() == {"errMsg": "bind:fail invalid port", "errCode": 2}
    assert sock.bind(0) > 0  # still usable
    events.expect("Listening")


def test_bind_twice_is_errcode_minus_2(rt: Any) -> None:
    sock = rt.createUDPSocket()
    events = listen(sock)
    assert sock.bind() > 0
    assert sock.bind() == 0
    events.expect("Listening")
    assert events.error() == {"errMsg": "bind:fail socket already bound", "errCode": -2}


def test_calls_after_close_are_errcode_minus_2(rt: Any) -> None:
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.close()
    assert sock.bind(0) == 0
    sock.send(address="127.0.0.1", port=9, message=b"x")
    sock.write(address="127.0.0.1", port=9, message=b"x")
    sock.connect(address="127.0.0.1", port=9)
    sock.setTTL(64)
    sock.send(address="127.0.0.1", port=9, message=b"x")
    events.expect("Close")  # events keep the order of the calls
    for method in ("bind", "send", "write", "connect", "setTTL", "send"):
        assert events.error() == {"errMsg": method + ":fail socket is closed", "errCode": -2}


def test_oversize_datagram_is_refused_never_truncated(rt: Any, udp_sink: Any) -> None:
    peer = udp_sink("udp4")
    res = send_error(rt, {"address": peer.address, "port": peer.port, "message": b"x" * 65508})
    assert res == {"errMsg": "send:fail message too long", "errCode": -1}
    # the same through offset/length: the slice is what counts
    big = bytearray(70000)
    res = send_error(
        rt, {"address": peer.address, "port": peer.port, "message": big, "length": 65508}
    )
    assert res["errCode"] == -1
    assert peer.count == 0


@pytest.mark.parametrize(
    "offset, length, errmsg",
    [
        (-1, None, "send:fail invalid offset"),
        (11, None, "send:fail invalid offset"),
        ("1", None, "send:fail invalid offset"),
        (None, 11, "send:fail invalid length"),
        (None, -1, "send:fail invalid length"),
        (5, 6, "send:fail invalid length"),
        (0, "2", "send:fail invalid length"),
    ],
)
def test_bad_offset_or_length_is_errcode_minus_1(
    rt: Any, offset: Any, length: Any, errmsg: str
) -> None:
    opts = {"address": "127.0.0.1", "port": 9, "message": b"0123456789"}
    if offset is not None:
        opts["offset"] = offset
    if length is not None:
        opts["length"] = length
    assert send_error(rt, opts) == {"errMsg": errmsg, "errCode": -1}


@pytest.mark.parametrize("message", [None, 42, {"a": 1}, ["x"]])
def test_bad_message_is_errcode_minus_1(rt: Any, message: Any) -> None:
    res = send_error(rt, {"address": "127.0.0.1", "port": 9, "message": message})
    assert res == {"errMsg": "send:fail invalid message", "errCode": -1}


@pytest.mark.parametrize(
    "family, ttl", [("udp4", 300), ("udp4", -1), ("udp4", 0), ("udp4", "64"), ("udp6", 256)]
)
def test_bad_ttl_is_errcode_minus_1(rt: Any, family: str, ttl: Any) -> None:
    sock = rt.createUDPSocket(family)
    events = listen(sock)
    sock.setTTL(ttl)
    assert events.error() == {"errMsg": "setTTL:fail invalid ttl", "errCode": -1}


@pytest.mark.parametrize("family, ttl", [("udp4", 1), ("udp4", 255), ("udp6", 0), ("udp6", 64)])
def test_good_ttl_is_silent(rt: Any, family: str, ttl: int) -> None:
    sock = rt.createUDPSocket(family)
    events = listen(sock)
    sock.setTTL(ttl)
    barrier(rt)
    assert events.pending() == []


def test_invalid_type_is_errcode_minus_1(rt: Any) -> None:
    sock = rt.createUDPSocket("udp5")
    events = listen(sock)
    assert events.error() == {"errMsg": "createUDPSocket:fail invalid type", "errCode": -1}
    assert sock.bind() == 0
    assert events.error()["errMsg"] == "bind:fail socket is closed"


def test_write_to_another_destination_after_connect_is_refused(rt: Any, udp_echo: Any) -> None:
    peer = udp_echo("udp4")
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.connect(address=peer.address, port=peer.port)
    sock.write(address="127.0.0.2", port=peer.port, message=b"x")
    sock.write(address=peer.address, port=peer.port + 1 if peer.port < 65535 else 1, message=b"x")
    assert events.error() == {"errMsg": "write:fail not the connected address", "errCode": 1}
    assert events.error() == {"errMsg": "write:fail not the connected port", "errCode": 2}


def test_write_without_connect_or_address_is_errcode_1(rt: Any) -> None:
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.write(message=b"x")
    assert events.error() == {"errMsg": "write:fail invalid address", "errCode": 1}


def test_icmp_unreachable_on_connected_socket_then_still_usable(rt: Any, udp_echo: Any) -> None:
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.connect(address="127.0.0.1", port=free_port())
    sock.write(message=b"nobody")
    res = events.error()
    assert res["errCode"] == -2
    assert res["errMsg"] in ("recv:fail connection refused", "write:fail connection refused")
    peer = udp_echo("udp4")
    sock.connect({"address": peer.address, "port": peer.port})
    sock.write({"address": peer.address, "port": peer.port, "message": b"back"})
    assert events.expect("Message")["message"] == b"back"


def test_unresolvable_name_in_connect_is_errcode_1(rt: Any) -> None:
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.connect(address="no-such-host.invalid", port=9)
    assert events.error() == {"errMsg": "connect:fail address not resolved", "errCode": 1}


def test_ipv4_literal_on_udp6_is_v4_mapped(rt: Any, udp_echo: Any) -> None:
    peer = udp_echo("udp4")
    sock = rt.createUDPSocket("udp6")
    events = listen(sock)
    sock.send(address=HOSTS["udp4"], port=peer.port, message=b"mapped")
    res = events.expect("Message")
    assert res["message"] == b"mapped"
    assert res["remoteInfo"]["address"] == "::ffff:127.0.0.1"
    assert res["remoteInfo"]["family"] == "IPv6"


def test_a_cached_destination_does_not_make_true_a_port(rt: Any, udp_sink: Any) -> None:
    peer = udp_sink("udp4")
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.send(address="127.0.0.1", port=1, message=b"x")  # caches ("127.0.0.1", 1)
    sock.send(address="127.0.0.1", port=True, message=b"x")
    on_loop_send = {"address": "127.0.0.1", "port": True, "message": b"x"}
    sock.onMessage(lambda res: None)
    rt.loop.call_soon_threadsafe(sock.send, on_loop_send)  # the fast path's own check
    errors = [res for res in (events.error(), events.error()) if res["errCode"] == 2]
    assert len(errors) == 2, errors
    assert peer.count == 0


def test_bind_after_an_implicit_bind_is_errcode_minus_2(rt: Any, udp_echo: Any) -> None:
    peer = udp_echo("udp4")
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.send(address=peer.address, port=peer.port, message=b"x")
    events.expect("Message")
    assert sock.bind() == 0
    assert events.error() == {"errMsg": "bind:fail socket already bound", "errCode": -2}


def test_internationalised_host_name_is_looked_up(rt: Any) -> None:
    res = send_error(rt, {"address": "bücher.invalid", "port": 9, "message": b"x"})
    assert res == {"errMsg": "send:fail address not resolved", "errCode": 1}


class BrokenPolicy:
    """A url-check plugin with a bug (it raises something other than FtError)."""

    @staticmethod
    @hookimpl
    def ftcore_url_check(runtime: Any, api: str, url: str) -> None:
        if api == "udp":
            raise ZeroDivisionError("policy bug")


def test_a_broken_policy_is_errcode_minus_1_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with new_runtime(plugins=[BrokenPolicy()]) as rt:
        sock = rt.createUDPSocket()
        events = listen(sock)
        sock.send(address="127.0.0.1", port=9, message=b"x")
        res = events.error()
    assert res == {"errMsg": "send:fail internal error: policy bug", "errCode": -1}
    assert any("policy bug" in (r.exc_text or str(r.exc_info)) for r in caplog.records)


def test_reported_passes_through_what_is_not_a_failure_of_the_call() -> None:
    """KeyboardInterrupt and SystemExit leave a call unreported: they are not ours to turn
    into an onError (the three kinds of failure are above: refusals, OS errors, bugs)."""
    heard: List[Any] = []
    for interruption in (KeyboardInterrupt, SystemExit):
        with pytest.raises(interruption):
            with Reported(lambda *args: heard.append(args), "send"):
                raise interruption()
    assert heard == []
