"""The builtin UDP transport's write buffering: the kernel saying EAGAIN never blocks the loop.

Loopback never fills a UDP send buffer, so the kernel's answer is simulated: the endpoint's
`sendto` is wrapped to raise BlockingIOError while `full` is set.
"""

from __future__ import annotations

import threading
from typing import Any, List, Tuple

import pytest

from ftcore_udp.endpoint import QUEUE_MAX_DATAGRAMS
from tests.support.events import EventQueue
from tests.support.waits import WAIT, barrier
from tests.udp.support import listen

pytestmark = pytest.mark.timeout(30)


class FlakyKernel:
    """Wraps an endpoint's `sendto`: EAGAIN while `full` is set."""

    def __init__(self, endpoint: Any) -> None:
        self.endpoint = endpoint
        self.real = endpoint._sendto
        self.full = threading.Event()
        self.refused = 0
        endpoint._sendto = self

    def __call__(self, data: Any, address: Any) -> int:
        if self.full.is_set():
            self.refused += 1
            raise BlockingIOError(11, "Resource temporarily unavailable")
        return int(self.real(data, address))


def on_loop(rt: Any, fn: Any) -> None:
    done = threading.Event()
    rt.loop.call_soon_threadsafe(lambda: (fn(), done.set()))
    assert done.wait(WAIT)


def bound_to_a_full_kernel(rt: Any, udp_sink: Any) -> Tuple[Any, Any, EventQueue, FlakyKernel]:
    """A udp4 sink, and a bound socket (its events recorded) whose kernel refuses to send."""
    peer = udp_sink("udp4")
    sock = rt.createUDPSocket()
    events = listen(sock)
    sock.bind()
    events.expect("Listening")
    kernel = FlakyKernel(sock._endpoint)
    kernel.full.set()
    return peer, sock, events, kernel


def test_eagain_queues_datagrams_and_sends_them_in_order_when_writable(
    rt: Any, udp_sink: Any, quiet_log: None
) -> None:
    peer, sock, events, kernel = bound_to_a_full_kernel(rt, udp_sink)
    buffer = bytearray(b"mutable-0")
    for i in range(5):
        buffer[-1:] = b"%d" % i
        sock.send(address=peer.address, port=peer.port, message=buffer)
    barrier(rt)
    assert kernel.refused >= 1 and peer.count == 0
    assert rt.loop._writers, "the loop waits for writability instead of blocking"
    on_loop(rt, kernel.full.clear)
    got = [peer.received.get(timeout=WAIT)[0] for _ in range(5)]
    assert got == [b"mutable-%d" % i for i in range(5)]  # in order, each as it was when sent
    barrier(rt)
    assert not rt.loop._writers
    assert events.pending() == []


def test_a_full_queue_is_errcode_minus_2_and_the_rest_still_go(rt: Any, udp_sink: Any) -> None:
    peer, sock, events, kernel = bound_to_a_full_kernel(rt, udp_sink)
    total = QUEUE_MAX_DATAGRAMS + 3
    errors: List[Any] = []

    def blast() -> None:
        for i in range(total):
            sock.send({"address": peer.address, "port": peer.port, "message": b"%d" % i})

    on_loop(rt, blast)
    for _ in range(3):
        errors.append(events.error())
    assert errors == [{"errMsg": "send:fail no buffer space", "errCode": -2}] * 3
    on_loop(rt, kernel.full.clear)
    got = [peer.received.get(timeout=WAIT)[0] for _ in range(QUEUE_MAX_DATAGRAMS)]
    assert got == [b"%d" % i for i in range(QUEUE_MAX_DATAGRAMS)]


def test_close_with_queued_datagrams_drops_them_and_the_writer(
    rt: Any, udp_sink: Any, quiet_log: None
) -> None:
    peer = udp_sink("udp4")
    sock = rt.createUDPSocket()
    events = listen(sock)
    kernel = FlakyKernel(sock._endpoint)
    kernel.full.set()
    sock.send(address=peer.address, port=peer.port, message=b"never")
    sock.close()
    events.expect("Close")
    barrier(rt)
    assert not rt.loop._writers and not rt.loop._readers
    assert events.pending() == [] and peer.count == 0


def test_fast_path_reply_from_a_listener(rt: Any, udp_echo: Any, quiet_log: None) -> None:
    """A listener answering with a plain dict takes the fast path; closing stops it cleanly."""
    peer = udp_echo("udp6")
    sock = rt.createUDPSocket("udp6")
    rounds: List[int] = []
    errors: List[Any] = []
    finished = threading.Event()
    dest = {"address": peer.address, "port": peer.port}

    def on_message(res: Any) -> None:
        rounds.append(1)
        if len(rounds) == 100:
            sock.close()
        sock.send({"address": dest["address"], "port": dest["port"], "message": res["message"]})

    sock.onMessage(on_message)
    sock.onError(errors.append)
    sock.onClose(lambda res: finished.set())
    sock.send(dest, message=b"ball")
    assert finished.wait(WAIT)
    barrier(rt)
    assert len(rounds) == 100
    assert errors == [{"errMsg": "send:fail socket is closed", "errCode": -2}]
    assert peer.count == 100
