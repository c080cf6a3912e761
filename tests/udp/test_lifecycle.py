"""UDPSocket lifecycle: event order, off*, close (twice, in flight), runtime close, fds."""

from __future__ import annotations

import gc
import threading
from typing import Any, Dict, List

import pytest

from tests.support.events import close_on_message
from tests.support.waits import WAIT
from tests.udp.support import listen, open_fds
from tests.support.waits import barrier
from tests.support.runtimes import new_runtime

pytestmark = pytest.mark.timeout(30)


def test_listening_follows_bind_and_close_fires_once(rt: Any) -> None:
    sock = rt.createUDPSocket()
    events = listen(sock)
    assert sock.bind() > 0
    sock.close()
    sock.close()
    events.expect("Listening")
    events.expect("Close")
    sock.close()
    barrier(rt)
    assert events.pending() == []
    assert events.log == [("Listening", {}), ("Close", {})]


def test_close_without_bind_fires_close(rt: Any) -> None:
    sock = rt.createUDPSocket("udp6")
    events = listen(sock)
    sock.close()
    assert events.expect("Close") == {}


def test_listeners_attached_after_the_event_still_get_it(rt: Any) -> None:
    sock = rt.createUDPSocket()
    sock.bind()
    sock.close()
    barrier(rt)  # both events have been emitted with nobody listening
    events = listen(sock)
    events.expect("Listening")
    events.expect("Close")


def test_off_removes_one_listener_or_all(rt: Any, udp_echo: Any) -> None:
    peer = udp_echo("udp4")
    sock = rt.createUDPSocket()
    events = listen(sock)  # stays attached: tells when each message arrived
    first: List[bytes] = []
    second: List[bytes] = []

    def one(res: Dict[str, Any]) -> None:
        first.append(res["message"])

    def two(res: Dict[str, Any]) -> None:
        second.append(res["message"])

    sock.onMessage(one)
    sock.onMessage(two)
    sock.send(address=peer.address, port=peer.port, message=b"1")
    events.expect("Message")
    sock.offMessage(one)
    sock.send(address=peer.address, port=peer.port, message=b"2")
    events.expect("Message")
    sock.offMessage()  # no argument: every Message listener, the recorder's too
    sock.send(address=peer.address, port=peer.port, message=b"3")
    assert peer.received.get(timeout=WAIT)[0] == b"1"
    assert peer.received.get(timeout=WAIT)[0] == b"2"
    assert peer.received.get(timeout=WAIT)[0] == b"3"
    sock.onError(lambda res: None)
    sock.offError()
    sock.send(address=peer.address, port=-1, message=b"x")  # an error nobody hears
    sock.offClose()
    sock.close()
    barrier(rt)
    assert first == [b"1"]
    assert second == [b"1", b"2"]
    assert events.pending() == []  # not the third message, not the error, not Close


def test_off_of_a_listener_never_added_is_harmless(rt: Any) -> None:
    sock = rt.createUDPSocket()
    sock.offListening(lambda res: None)
    sock.offClose()
    events = listen(sock)
    sock.bind()
    events.expect("Listening")


def test_close_from_a_listener_while_datagrams_are_in_flight(
    rt: Any, udp_sink: Any, quiet_log: None
) -> None:
    """The peer floods us; the 10th message closes the socket: nothing after onClose."""
    peer = udp_sink("udp4")
    sock = rt.createUDPSocket()
    log, closed = close_on_message(sock, 10, also=("Error",))
    port = sock.bind()
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            try:
                peer.send_to(b"flood", ("127.0.0.1", port))
            except OSError:
                pass

    flooder = threading.Thread(target=flood, name="ftpeer-flood", daemon=True)
    flooder.start()
    try:
        assert closed.wait(WAIT)
        barrier(rt)
    finally:
        stop.set()
        flooder.join(WAIT)
    barrier(rt)
    assert log == ["Message"] * 10 + ["Close"]


def test_close_from_another_thread_while_datagrams_are_in_flight(
    rt: Any, udp_echo: Any, quiet_log: None
) -> None:
    """Ping-pong at full speed, closed from the test thread: onClose is the last event."""
    peer = udp_echo("udp4")
    sock = rt.createUDPSocket()
    log: List[str] = []
    running = threading.Event()
    closed = threading.Event()
    dest = {"address": peer.address, "port": peer.port}

    def on_message(res: Dict[str, Any]) -> None:
        log.append("Message")
        if len(log) > 50:
            running.set()
        sock.send(dest, message=res["message"])  # errors once closed: that is allowed

    sock.onMessage(on_message)
    sock.onClose(lambda res: (log.append("Close"), closed.set()))
    for _ in range(8):
        sock.send(dest, message=b"in flight")
    assert running.wait(WAIT)
    sock.close()
    assert closed.wait(WAIT)
    barrier(rt)
    assert log[-1] == "Close" and log.count("Close") == 1


def test_runtime_close_fires_on_close_and_releases_fds(udp_echo: Any) -> None:
    peer = udp_echo("udp4")
    gc.collect()
    before = open_fds()
    rt = new_runtime()
    sockets = [rt.createUDPSocket(), rt.createUDPSocket("udp6"), rt.createUDPSocket()]
    recorders = [listen(s) for s in sockets]
    sockets[0].bind()
    sockets[1].bind(0)
    sockets[2].send(address=peer.address, port=peer.port, message=b"x")
    recorders[0].expect("Listening")
    recorders[1].expect("Listening")
    recorders[2].expect("Message")
    assert open_fds() >= before + 3
    rt.close()
    for events in recorders:
        events.expect("Close")
        assert events.pending() == []
    assert open_fds() == before
    assert rt.live_tasks() == []


def test_close_releases_the_fd_at_once(rt: Any) -> None:
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.bind()
    events.expect("Listening")
    with_socket = open_fds()
    sock.close()
    events.expect("Close")  # emitted after the fd was closed
    assert open_fds() == with_socket - 1


def test_live_sockets_are_tracked_until_closed(rt: Any) -> None:
    sock = rt.createUDPSocket()
    events = listen(sock)
    assert sock in rt.live_tasks()
    sock.close()
    events.expect("Close")
    assert sock not in rt.live_tasks()


def test_create_on_a_closed_runtime_raises() -> None:
    rt = new_runtime()
    rt.close()
    with pytest.raises(RuntimeError):
        rt.createUDPSocket()


def test_without_a_loop_thread_the_host_drives_the_loop(udp_echo: Any) -> None:
    peer = udp_echo("udp4")
    rt = new_runtime(autostart=False)
    try:
        sock = rt.createUDPSocket()
        got: List[Any] = []
        sock.onListening(lambda res: got.append("Listening"))
        sock.onMessage(lambda res: got.append(res["message"]))
        sock.bind()
        sock.send(address=peer.address, port=peer.port, message=b"embedded")
        for _ in range(200):
            if len(got) == 2:
                break
            rt.loop.run_once(0.05)
        assert got == ["Listening", b"embedded"]
    finally:
        rt.close()


def test_send_then_close_sends_first(rt: Any, udp_sink: Any) -> None:
    peer = udp_sink("udp4")
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.send(address=peer.address, port=peer.port, message=b"last words")
    sock.close()
    events.expect("Close")
    assert peer.received.get(timeout=WAIT)[0] == b"last words"
    barrier(rt)
    assert events.pending() == []
