"""Streams against real loopback peers: the read pump and its pause, the writer's
watermarks and order, the closes (flush, bound, reset, linger), EOF and reset, TLS."""

from __future__ import annotations

import errno
import socket
import threading
import time
import tracemalloc
from typing import Any, Callable, List

import pytest

from ftcore._net import Net, StreamClosed
from ftcore.transports import TlsSettings
from tests.net.support import LoopThread, Pair, connected, dial, listener, pattern
from tests.peers.lifecycle import reset_close
from tests.support.waits import WAIT

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def pair(make_pair: Callable[..., Pair]) -> Pair:
    """A stream (client side, on the loop, 64/16 KiB watermarks) and its blocking peer."""
    return make_pair(high_water=64 * 1024, low_water=16 * 1024)  # type: ignore[no-any-return]


def read_exactly(peer: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = peer.recv(min(size, 1 << 20))
        assert chunk, "EOF with %d bytes to go" % size
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def test_data_both_ways(loop_thread: LoopThread, pair: Any) -> None:
    stream, peer, rec = pair
    loop_thread.call(stream.write, b"hello")
    assert read_exactly(peer, 5) == b"hello"
    peer.sendall(b"world")
    assert rec.wait_bytes(5) == b"world"
    assert loop_thread.loop.thread_id is not None


def test_a_peer_that_never_reads_stops_the_writer(loop_thread: LoopThread, pair: Any) -> None:
    stream, peer, rec = pair
    chunk = pattern(16 * 1024)
    written: List[int] = []

    def produce() -> None:  # on the loop: write until told to stop
        while not any(name == "pause" for name, _ in rec.log):
            stream.write(chunk)
            written.append(len(chunk))
            assert sum(written) < 256 * 2**20, "the writer was never paused"

    loop_thread.call(produce)
    assert rec.expect("pause") is None
    assert 64 * 1024 < stream.buffered <= 64 * 1024 + len(chunk)
    time.sleep(0.1)
    loop_thread.flush()
    assert rec.log == [("pause", None)]  # no resume while the peer does not read
    total = sum(written)
    got: List[bytes] = []
    reader = threading.Thread(
        target=lambda: got.append(read_exactly(peer, total)), name="ftpeer-reader"
    )
    reader.start()
    assert rec.expect("resume") is None  # the peer reads again: the producer may go on
    reader.join(WAIT)
    assert got == [chunk * (total // len(chunk))] and stream.buffered == 0


def test_a_producer_that_obeys_the_watermarks_keeps_memory_flat(
    loop_thread: LoopThread, pair: Any
) -> None:
    """64 MiB to a slow reader, written whenever the stream says so: the queue never holds
    much more than the high watermark."""
    stream, peer, rec = pair
    total = 64 * 2**20
    chunk = pattern(64 * 1024, seed=3)
    state = {"written": 0, "peak": 0, "paused": False}

    def produce() -> None:
        state["paused"] = False
        while not state["paused"] and state["written"] < total:
            stream.write(chunk)
            state["written"] += len(chunk)
            state["peak"] = max(state["peak"], stream.buffered)

    def pause() -> None:
        state["paused"] = True

    rec.pause_writing = pause  # type: ignore[method-assign]
    rec.resume_writing = produce  # type: ignore[method-assign]
    tracemalloc.start()
    try:
        loop_thread.call(produce)
        received = 0
        while received < total:  # a slow reader: small reads
            piece = peer.recv(256 * 1024)
            assert piece
            assert piece == chunk[received % len(chunk) :][: len(piece)] or _matches(
                piece, chunk, received
            )
            received += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    loop_thread.flush()  # the last chunk can arrive before `produce` counts it: let it finish
    assert state["written"] == total
    assert state["peak"] <= 64 * 1024 + len(chunk)
    assert peak < 8 * 2**20, "memory grew: peak %d bytes" % peak


def _matches(piece: bytes, chunk: bytes, offset: int) -> bool:
    """`piece` is the stream of repeated `chunk`s from `offset` on."""
    size = len(chunk)
    repeated = chunk * (len(piece) // size + 2)
    start = offset % size
    return piece == repeated[start : start + len(piece)]


def test_many_small_writes_keep_their_order(loop_thread: LoopThread, pair: Any) -> None:
    stream, peer, rec = pair
    pieces = [("%06d," % i).encode() for i in range(50000)]  # queued: the peer is not reading

    def write_all() -> None:
        for piece in pieces:
            stream.write(piece)
        stream.write(memoryview(pattern(100000))[10:])

    loop_thread.call(write_all)
    expected = b"".join(pieces) + pattern(100000)[10:]
    assert read_exactly(peer, len(expected)) == expected


def test_pause_reading_stops_delivery_until_resumed(loop_thread: LoopThread, pair: Any) -> None:
    stream, peer, rec = pair
    loop_thread.call(stream.pause_reading)
    peer.sendall(b"x" * 1000)
    time.sleep(0.1)
    loop_thread.flush()
    assert bytes(rec.received) == b""
    loop_thread.call(stream.resume_reading)
    assert rec.wait_bytes(1000) == b"x" * 1000


def test_close_flushes_then_closes(loop_thread: LoopThread, pair: Any) -> None:
    stream, peer, rec = pair
    data = pattern(8 * 2**20)

    def write_and_close() -> None:
        stream.write(data)
        stream.close(timeout=WAIT, on_closed=rec.closed)

    loop_thread.call(write_and_close)
    with pytest.raises(StreamClosed):
        loop_thread.call(stream.write, b"late")
    assert read_exactly(peer, len(data)) == data
    assert peer.recv(1) == b""  # then EOF
    rec.expect("closed")


def test_a_flush_that_outlasts_its_bound_resets(loop_thread: LoopThread, pair: Any) -> None:
    stream, peer, rec = pair
    start = time.monotonic()

    def write_and_close() -> None:
        stream.write(pattern(16 * 2**20))  # more than the kernel's buffers: the peer never reads
        stream.close(timeout=0.3, on_closed=rec.closed)

    loop_thread.call(write_and_close)
    rec.expect("closed")
    assert 0.3 <= time.monotonic() - start < 0.3 + 2.0
    with pytest.raises(ConnectionResetError):
        while peer.recv(1 << 20):
            pass


def test_abort_resets_at_once(loop_thread: LoopThread, pair: Any) -> None:
    stream, peer, rec = pair
    loop_thread.call(stream.abort)
    with pytest.raises(ConnectionResetError):
        peer.recv(1)
    loop_thread.flush()
    assert rec.log == []  # nothing is reported after abort


def test_linger_waits_for_the_peer_to_close(loop_thread: LoopThread, pair: Any) -> None:
    stream, peer, rec = pair
    loop_thread.call(stream.write, b"bye")
    loop_thread.call(stream.close, WAIT, 5.0, rec.closed)
    assert read_exactly(peer, 3) == b"bye"
    peer.sendall(b"ignored")  # read and dropped while lingering
    time.sleep(0.1)
    loop_thread.flush()
    assert rec.log == [] and bytes(rec.received) == b""
    peer.shutdown(socket.SHUT_WR)
    rec.expect("closed")


def test_linger_ends_at_its_bound(loop_thread: LoopThread, pair: Any) -> None:
    stream, peer, rec = pair
    start = time.monotonic()
    loop_thread.call(stream.close, WAIT, 0.3, rec.closed)
    rec.expect("closed")
    assert 0.3 <= time.monotonic() - start < 2.3


def test_eof_and_reset_reach_the_handler(loop_thread: LoopThread, net: Net) -> None:
    with listener() as server:
        for how in ("eof", "reset"):
            rec = dial(loop_thread, net, "127.0.0.1", server.getsockname()[1])
            result = connected(rec)
            peer, _ = server.accept()
            stream = loop_thread.call(net.stream, result.sock, rec)
            peer.sendall(b"last")
            if how == "eof":
                peer.shutdown(socket.SHUT_WR)
                assert rec.expect("eof") is None and bytes(rec.received) == b"last"
                loop_thread.call(stream.write, b"after eof")  # half-closed: we may still write
                assert read_exactly(peer, 9) == b"after eof"
                loop_thread.call(stream.close, 1.0, 0.0, rec.closed)
                rec.expect("closed")
                peer.close()
            else:
                time.sleep(0.05)
                reset_close(peer)
                error = rec.expect("lost")
                assert isinstance(error, ConnectionResetError) or getattr(error, "errno", None) in (
                    errno.ECONNRESET,
                    errno.EPIPE,
                )
            assert net.live()["streams"] == (0 if how == "reset" else 0)


def _keep_reading_pair(loop_thread: LoopThread, net: Net, server: socket.socket) -> Any:
    rec = dial(loop_thread, net, "127.0.0.1", server.getsockname()[1])
    result = connected(rec)
    peer, _ = server.accept()
    rec.log.clear()
    stream = loop_thread.call(
        net.stream, result.sock, rec, high_water=0, low_water=0, keep_reading_on_write_error=True
    )
    return stream, peer, rec


def test_a_failed_write_keeps_the_answer_that_came_before_it(
    loop_thread: LoopThread, net: Net
) -> None:
    """An HTTP server that refuses a body answers, then closes with the body unread (RST):
    the write fails, and the answer is still delivered before the reset."""
    with listener() as server:
        stream, peer, rec = _keep_reading_pair(loop_thread, net, server)
        loop_thread.call(stream.pause_reading)  # the answer waits in the kernel meanwhile
        loop_thread.call(stream.write, b"unread body")
        time.sleep(0.05)
        peer.sendall(b"413 answer")
        reset_close(peer)  # unread input: the kernel resets
        time.sleep(0.05)

        def write_after_reset() -> Any:
            with pytest.raises(StreamClosed):
                stream.write(b"more body")
            return stream.write_error

        assert isinstance(loop_thread.call(write_after_reset), OSError)
        assert not loop_thread.call(lambda: stream.closing)  # only the sending side ended
        loop_thread.call(stream.resume_reading)
        assert rec.wait_bytes(10) == b"413 answer"
        rec.expect()  # "eof" or "lost": Linux may read the reset as EOF after the data
        assert rec.log[-1][0] in ("eof", "lost")
        loop_thread.call(stream.close_now)
        assert net.live()["streams"] == 0


def test_a_write_that_fails_while_queued_wakes_the_paused_producer(
    loop_thread: LoopThread, net: Net
) -> None:
    with listener() as server:
        stream, peer, rec = _keep_reading_pair(loop_thread, net, server)
        loop_thread.call(stream.pause_reading)  # only the writer sees the reset
        loop_thread.call(stream.write, pattern(32 * 2**20))  # far more than the buffers hold
        assert rec.expect("pause") is None
        reset_close(peer)
        assert rec.expect("resume") is None  # woken to find that sending ended
        assert isinstance(loop_thread.call(lambda: stream.write_error), OSError)
        assert loop_thread.call(lambda: stream.buffered) == 0
        loop_thread.call(stream.resume_reading)
        rec.expect()  # "eof" or "lost", as above
        assert rec.log[-1][0] in ("eof", "lost")
        loop_thread.call(stream.close_now)
        assert net.live()["streams"] == 0


def test_tls_stream_carries_large_writes(
    loop_thread: LoopThread, net: Net, tls_material: Any
) -> None:
    context = tls_material.server_context(alpn=())
    size = 4 * 2**20 + 123
    data = pattern(size, seed=7)
    with listener() as server:
        settings = TlsSettings(cafile=tls_material.cafile)
        box: List[Any] = []

        def serve() -> None:
            conn, _ = server.accept()
            conn.settimeout(WAIT)
            with context.wrap_socket(conn, server_side=True) as tls:
                box.append(read_exactly(tls, size))
                tls.sendall(b"thanks")
                tls.recv(1)  # until the client goes

        thread = threading.Thread(target=serve, name="ftpeer-tls")
        thread.start()
        rec = dial(loop_thread, net, "127.0.0.1", server.getsockname()[1], tls=settings)
        result = connected(rec)
        stream = loop_thread.call(net.stream, result.sock, rec)
        assert stream.tls
        loop_thread.call(stream.write, data)
        assert rec.wait_bytes(6) == b"thanks"
        loop_thread.call(stream.close, WAIT, 0.0, rec.closed)
        rec.expect("closed")
        thread.join(WAIT)
    assert box == [data]


def test_net_close_ends_what_transports_left(loop_thread: LoopThread) -> None:
    from tests.peers.lifecycle import open_fd_count

    net = Net(loop_thread.loop)
    fds = open_fd_count()
    with listener() as server:
        rec = dial(loop_thread, net, "127.0.0.1", server.getsockname()[1])
        result = connected(rec)
        loop_thread.call(net.stream, result.sock, rec)

        def dial_then_close() -> None:  # in one pass: the dial is still in flight
            net.dial("127.0.0.1", server.getsockname()[1], rec.done)
            net.close()

        loop_thread.call(dial_then_close)
        assert net.live() == {"dials": 0, "streams": 0, "lookups": 0}
        with pytest.raises(RuntimeError):
            loop_thread.call(net.dial, "127.0.0.1", 1, rec.done)
    loop_thread.flush()
    assert open_fd_count() == fds
