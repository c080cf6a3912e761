"""Flow control of `iter_messages()`: a fast sender and a slow consumer over real loopback
sockets (WebSocket and TCP). While the consumer lags past `limits.streamBufferBytes`, the socket
stops reading: the sender blocks once the kernel's buffers are full, and the client's memory
(traced) stays flat however much is sent. A connection that cannot pause ends the lagging
iterator instead (the socket goes on); an iterator left while it throttled lets it read again.

A host-driven consumer runs the loop only when its queue is empty, so it never lags: its
memory is flat by construction, and these tests check it does not grow either.

Every listener and iterator is attached before its socket connects: the sender floods from its
first moment, and messages that reach a socket with no onMessage listener yet wait in a bounded
backlog (64 events, then dropped with a warning). Attached after the connect, they raced the
flood: the loop thread could take more than 64 reads before the test's thread ran again.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import tracemalloc
from typing import Any, Callable, Iterator, List, Tuple

import pytest

import ftcore
from ftcore import FtError
from ftcore.errors import Errno
from ftcore_tcp.transport import TcpSocketConnection
from tests.semantics.test_iter_messages import connect_tcp, wait_open
from tests.support.waits import WAIT, wait_until

pytestmark = pytest.mark.timeout(180)

TOTAL = 64 * 2**20
BLOCK = 64 * 1024
PAUSE_S = 1.0
# what may leave the sender while the consumer sleeps: the kernel's socket buffers on both
# sides (loopback autotuning: several MiB each) and the iterator's bound, never the 56 MiB left
SENT_WHILE_PAUSED = 24 * 2**20
PEAK_TRACED = 12 * 2**20  # the iterator's 1 MiB, a read or a message in flight, the codec's


class Sender:
    """TOTAL bytes in BLOCK pieces, each block numbered, as fast as the socket takes them."""

    def __init__(self) -> None:
        self.sent = 0
        self.digest = hashlib.sha256()
        self._seed = bytes(range(256)) * (BLOCK // 256)

    def blocks(self) -> Iterator[bytes]:
        for index in range(TOTAL // BLOCK):
            block = index.to_bytes(8, "big") + self._seed[8:]
            self.digest.update(block)
            yield block

    def tcp(self, conn: socket.socket, release: threading.Event) -> None:
        try:
            for block in self.blocks():
                conn.sendall(block)
                self.sent += len(block)
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):
                pass
        except OSError:
            pass  # the test ended early and cut us off

    def ws(self, conn: Any, peer: Any) -> None:
        for block in self.blocks():
            conn.send(block)
            self.sent += len(block)
        conn.close(1000)


def consume_slowly(rt: ftcore.Runtime, messages: Iterator[Any], sender: Sender) -> None:
    """Take the first message, sleep PAUSE_S, then read the rest; check what the sender could
    send meanwhile, every byte in order, and the traced peak."""
    first = next(messages)
    before = sender.sent
    time.sleep(PAUSE_S)
    during = sender.sent - before
    digest = hashlib.sha256(first["message"] if "message" in first else first["data"])
    received = len(first.get("message", first.get("data")))
    for res in messages:
        data = res["message"] if "message" in res else res["data"]
        digest.update(data)
        received += len(data)
    assert received == TOTAL
    assert digest.hexdigest() == sender.digest.hexdigest()
    assert during < SENT_WHILE_PAUSED, during


@pytest.fixture
def traced() -> Iterator[Callable[[], int]]:
    """The peak of traced memory since the test began."""
    tracemalloc.start()
    try:
        yield lambda: tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def runtime_in(make_runtime: Callable[..., Any]) -> Callable[[str], ftcore.Runtime]:
    return lambda mode: make_runtime(autostart=mode == "thread")  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", ["thread", "host"])
def test_tcp_a_slow_consumer_blocks_the_sender_and_keeps_memory_flat(
    mode: str, runtime_in: Any, hostile_server: Any, traced: Callable[[], int]
) -> None:
    sender = Sender()
    url = hostile_server(sender.tcp)
    rt = runtime_in(mode)
    sock = rt.createTCPSocket()
    messages = sock.iter_messages(timeout=WAIT)  # before the flood starts: see the docstring
    connect_tcp(rt, url.server.port, sock)
    consume_slowly(rt, messages, sender)
    assert traced() < PEAK_TRACED, traced()


@pytest.mark.parametrize("mode", ["thread", "host"])
def test_ws_a_slow_consumer_blocks_the_sender_and_keeps_memory_flat(
    mode: str, runtime_in: Any, ws_server: Any, traced: Callable[[], int]
) -> None:
    sender = Sender()
    server = ws_server(sender.ws, compression=False)
    rt = runtime_in(mode)
    ws = rt.connectSocket(url=server.url)
    messages = ws.iter_messages(timeout=WAIT)  # before the flood starts: see the docstring
    wait_open(rt, ws)
    consume_slowly(rt, messages, sender)
    assert traced() < PEAK_TRACED, traced()


def counted_tcp(
    make_runtime: Callable[..., Any], hostile_server: Any
) -> Tuple[Any, List[int], Iterator[Any]]:
    """A TCP socket to a fast Sender, the bytes its onMessage listener got so far, and its
    iterator (both attached before it connects: see the docstring)."""
    sender = Sender()
    url = hostile_server(sender.tcp)
    rt = make_runtime()
    sock = rt.createTCPSocket()
    total = [0]
    sock.onMessage(lambda res: total.__setitem__(0, total[0] + len(res["message"])))
    messages = sock.iter_messages(timeout=WAIT)
    connect_tcp(rt, url.server.port, sock)
    return sock, total, messages


def test_a_connection_that_cannot_pause_ends_the_lagging_iterator(
    make_runtime: Callable[..., Any], hostile_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(TcpSocketConnection, "pause_reading")
    sock, total, messages = counted_tcp(make_runtime, hostile_server)
    assert wait_until(lambda: total[0] > 2 * 2**20)  # past the 1 MiB bound, nobody consuming
    with pytest.raises(FtError) as info:
        for _ in messages:
            pass
    assert info.value.errno == Errno.STREAM_BUFFER_FULL
    assert wait_until(lambda: total[0] == TOTAL), total  # the socket went on, whole
    assert not sock._listeners.ready("Message")[1:]  # only the test's listener is left


def test_an_iterator_left_while_it_throttles_lets_the_socket_read_again(
    make_runtime: Callable[..., Any], hostile_server: Any
) -> None:
    sock, total, messages = counted_tcp(make_runtime, hostile_server)
    next(messages)
    time.sleep(PAUSE_S)  # the iterator lags: the socket is paused
    assert total[0] < TOTAL - SENT_WHILE_PAUSED, total
    messages.close()
    assert wait_until(lambda: total[0] == TOTAL), total
