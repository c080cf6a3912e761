"""`Stream.write_file` against real loopback peers, standing in for peers on another machine
(`remote_peers`): regions of a real file sent with `os.sendfile` in order with byte writes,
waiting for writability, the fallback to reading the file (sendfile refused, TLS), and its own
failures (ended early, read error)."""

from __future__ import annotations

import errno
import os
import socket
import threading
from typing import Any, List, Tuple

import pytest

from ftcore._net import Net, Stream
from ftcore._net.stream import FileEnded, FileError, FileRegion
from ftcore.transports import TlsSettings
from tests.net.support import (  # noqa: F401  (remote_peers: a fixture)
    LoopThread,
    StreamEvents,
    connected,
    dial,
    listener,
    remote_peers,
)
from tests.net.test_stream import pattern, read_exactly
from tests.support.waits import WAIT

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("remote_peers")]

MIB = 2**20


def read_in_background(peer: socket.socket, size: int) -> Tuple[threading.Thread, List[bytes]]:
    got: List[bytes] = []
    reader = threading.Thread(target=lambda: got.append(read_exactly(peer, size)), name="ftpeer")
    reader.start()
    return reader, got


def test_regions_and_bytes_arrive_in_order(
    loop_thread: LoopThread, make_pair: Any, data_file: Any
) -> None:
    fd, content = data_file
    stream, peer, _ = make_pair()
    assert loop_thread.call(lambda: stream.zero_copy) is True

    def send() -> None:
        stream.write(b"head")
        stream.write_file(FileRegion(fd, 10, 1000))
        stream.write(b"mid")
        stream.write_file(FileRegion(fd, 0, 5))
        stream.write_file(FileRegion(fd, 3, 0))  # empty: nothing

    loop_thread.call(send)
    expected = b"head" + content[10:1010] + b"mid" + content[:5]
    assert read_exactly(peer, len(expected)) == expected
    assert loop_thread.call(lambda: (stream.sent, stream.buffered)) == (len(expected), 0)


def test_a_large_region_waits_for_writability_and_obeys_the_watermarks(
    loop_thread: LoopThread, make_pair: Any, data_file: Any
) -> None:
    """16 MiB do not fit the socket buffers: the region waits in the queue (`buffered`), the
    writes behind it wait their turn (a sendmsg batch stops at a region), and the producer is
    paused, then resumed once it drained."""
    fd, content = data_file
    stream, peer, rec = make_pair(high_water=64 * 1024, low_water=0)
    first = pattern(4 * MIB, seed=2)

    def send() -> int:
        stream.write(first)  # waits in the queue: the region goes behind it
        stream.write_file(FileRegion(fd, 0, len(content)))
        stream.write(b"after")
        stream.write(b"-more")
        stream.write_file(FileRegion(fd, 7, 9))
        return stream.buffered

    assert loop_thread.call(send) > 64 * 1024
    assert rec.expect("pause") is None
    expected = first + content + b"after-more" + content[7:16]
    reader, got = read_in_background(peer, len(expected))
    assert rec.expect("resume") is None
    reader.join(WAIT)
    assert got == [expected]
    assert loop_thread.call(lambda: (stream.sent, stream.buffered)) == (len(expected), 0)


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EINVAL])
def test_sendfile_refused_falls_back_to_reading(
    loop_thread: LoopThread, make_pair: Any, data_file: Any, monkeypatch: Any, code: int
) -> None:
    fd, content = data_file
    calls: List[int] = []

    def refused(*args: Any) -> int:
        calls.append(1)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "sendfile", refused)
    stream, peer, rec = make_pair(high_water=0, low_water=0, keep_reading_on_write_error=True)
    loop_thread.call(stream.write_file, FileRegion(fd, 1, len(content) - 1))
    reader, got = read_in_background(peer, len(content) - 1)
    reader.join(WAIT)
    assert got == [content[1:]]
    assert loop_thread.call(lambda: (stream.zero_copy, stream.write_error)) == (False, None)
    loop_thread.call(stream.write_file, FileRegion(fd, 0, 3))  # reads from now on
    assert read_exactly(peer, 3) == content[:3] and calls == [1]
    assert [name for name, _ in rec.log if name not in ("pause", "resume")] == []


def test_a_failed_sendfile_is_retried_as_read_then_send(
    loop_thread: LoopThread, make_pair: Any, data_file: Any, monkeypatch: Any
) -> None:
    """sendfile does not say which side failed: a read then a send do. A transient failure of
    the file (a read that works) sends the bytes, and sendfile is still used after."""
    fd, content = data_file
    real = os.sendfile
    failures = [OSError(errno.EIO, "Input/output error")]

    def flaky(*args: Any) -> int:
        if failures:
            raise failures.pop()
        return real(*args)

    monkeypatch.setattr(os, "sendfile", flaky)
    stream, peer, _ = make_pair(keep_reading_on_write_error=True)
    loop_thread.call(stream.write_file, FileRegion(fd, 0, 2 * MIB))
    reader, got = read_in_background(peer, 2 * MIB)
    reader.join(WAIT)
    assert got == [content[: 2 * MIB]]
    assert loop_thread.call(lambda: (stream.zero_copy, stream.write_error)) == (True, None)


def test_a_read_error_of_the_file_is_a_file_error(
    loop_thread: LoopThread, make_pair: Any, data_file: Any, monkeypatch: Any
) -> None:
    fd, _ = data_file

    def failing(*args: Any) -> Any:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "sendfile", failing)
    monkeypatch.setattr(os, "pread", failing)
    monkeypatch.setattr(os, "preadv", failing, raising=False)
    stream, _, _ = make_pair(keep_reading_on_write_error=True)
    error = loop_thread.call(_write_file_error, stream, FileRegion(fd, 0, 100))
    assert type(error) is FileError and error.errno == errno.EIO
    assert "Input/output error" in str(error)
    assert not loop_thread.call(lambda: stream.closing)  # only the sending side ended


def _write_file_error(stream: Stream, region: FileRegion) -> Any:
    from ftcore._net import StreamClosed

    with pytest.raises(StreamClosed):
        stream.write_file(region)
    return stream.write_error


@pytest.mark.parametrize("when", ["at-once", "after-a-part", "while-queued"])
def test_a_file_that_ends_before_its_region_is_a_write_error(
    loop_thread: LoopThread, make_pair: Any, data_file: Any, when: str
) -> None:
    """The region promised more than the file holds (it shrank): the bytes it had go out,
    then sending ends with `FileEnded` (raised by `write_file` when it is seen there, else
    found by the producer woken by `resume_writing`); reading goes on."""
    fd, content = data_file
    stream, peer, rec = make_pair(high_water=0, low_water=0, keep_reading_on_write_error=True)
    if when == "at-once":  # nothing left of the file at the region's offset
        error = loop_thread.call(_write_file_error, stream, FileRegion(fd, len(content), 5))
        had = b""
    else:
        if when == "while-queued":
            loop_thread.call(stream.write, pattern(8 * MIB))
        loop_thread.call(stream.write_file, FileRegion(fd, len(content) - 1000, 5000))
        assert rec.expect("pause") is None
        if when == "while-queued":
            assert read_exactly(peer, 8 * MIB) == pattern(8 * MIB)
        assert rec.expect("resume") is None  # woken to find that sending ended
        error = loop_thread.call(lambda: stream.write_error)
        had = content[-1000:]
    assert isinstance(error, FileEnded) and isinstance(error, FileError)
    assert read_exactly(peer, len(had)) == had
    assert loop_thread.call(lambda: (stream.buffered, stream.closing)) == (0, False)
    peer.sendall(b"still read")
    assert rec.wait_bytes(10) == b"still read"


def test_a_file_that_ends_early_loses_a_stream_that_does_not_keep_reading(
    loop_thread: LoopThread, make_pair: Any, data_file: Any
) -> None:
    fd, content = data_file
    stream, peer, rec = make_pair()
    loop_thread.call(stream.write_file, FileRegion(fd, len(content) - 10, 20))
    assert isinstance(rec.expect("lost"), FileEnded)
    assert read_exactly(peer, 10) == content[-10:]


@pytest.mark.parametrize("how", ["close", "close_now"])
def test_closing_with_a_region_queued(
    loop_thread: LoopThread, make_pair: Any, data_file: Any, how: str
) -> None:
    """`close` flushes the region, then closes; `close_now` drops it. The stream never
    closes the region's descriptor: it is the writer's."""
    fd, content = data_file
    stream, peer, rec = make_pair()
    loop_thread.call(stream.write_file, FileRegion(fd, 0, len(content)))
    assert loop_thread.call(lambda: stream.buffered) > 0
    if how == "close":
        loop_thread.call(stream.close, WAIT, 0.0, rec.closed)
        assert read_exactly(peer, len(content)) == content
        rec.expect("closed")
    else:
        loop_thread.call(stream.close_now)
        assert loop_thread.call(lambda: stream.buffered) == 0
    assert peer.recv(len(content)) == b"" or how == "close_now"
    os.fstat(fd)  # still open


def test_a_tls_stream_reads_regions_into_its_queue(
    loop_thread: LoopThread, net: Net, tls_material: Any, data_file: Any
) -> None:
    fd, content = data_file
    context = tls_material.server_context(alpn=())
    expected = b"head" + content + b"tail"
    with listener() as server:
        box: List[Any] = []

        def serve() -> None:
            conn, _ = server.accept()
            conn.settimeout(WAIT)
            with context.wrap_socket(conn, server_side=True) as tls:
                box.append(read_exactly(tls, len(expected)))
                tls.sendall(b"thanks")
                tls.recv(1)  # until the client goes

        thread = threading.Thread(target=serve, name="ftpeer-tls")
        thread.start()
        settings = TlsSettings(cafile=tls_material.cafile)
        rec = dial(loop_thread, net, "127.0.0.1", server.getsockname()[1], tls=settings)
        stream = loop_thread.call(net.stream, connected(rec).sock, rec)
        assert stream.tls and not stream.zero_copy

        def send() -> None:
            stream.write(b"head")
            stream.write_file(FileRegion(fd, 0, len(content)))
            stream.write(b"tail")

        loop_thread.call(send)
        assert rec.wait_bytes(6) == b"thanks"
        loop_thread.call(stream.close, WAIT, 0.0, rec.closed)
        rec.expect("closed")
        thread.join(WAIT)
    assert box == [expected]
