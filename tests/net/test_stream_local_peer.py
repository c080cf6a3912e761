"""Which route a file region takes by where the peer is: a peer on this machine (a loopback
address, a Unix socket) gets reads (`os.preadv` into one reused buffer) and send, since its
kernel copies the page cache's pages into the reader itself and sendfile measured slower
there; any other peer gets `os.sendfile` (tests/net/test_stream_files.py runs that route).
The peer is asked for at the first file only: a stream that sends none never asks."""

from __future__ import annotations

import os
import socket
from typing import Any, List, Tuple

import pytest

from ftcore._net import stream as stream_module
from ftcore._net.stream import FileRegion, _local_peer
from tests.net.support import LoopThread
from tests.net.test_stream import read_exactly

pytestmark = pytest.mark.timeout(60)


class _Peer:
    """A socket stand-in whose peer address is given."""

    def __init__(self, address: Any) -> None:
        self.address = address

    def getpeername(self) -> Any:
        if isinstance(self.address, OSError):
            raise self.address
        return self.address


@pytest.mark.parametrize(
    "address, local",
    [
        (("127.0.0.1", 80), True),
        (("127.8.9.10", 80), True),
        (("::1", 80, 0, 0), True),
        (("::ffff:127.0.0.1", 80, 0, 0), True),
        ("/run/app.sock", True),
        (b"", True),
        (("192.0.2.1", 80), False),
        (("10.0.0.127", 80), False),
        (("2001:db8::1", 443, 0, 0), False),
        (("::ffff:192.0.2.1", 80, 0, 0), False),
        (OSError(107, "not connected"), False),
    ],
)
def test_a_peer_is_local_by_its_address(address: Any, local: bool) -> None:
    assert _local_peer(_Peer(address)) is local


def test_real_sockets_are_classified() -> None:
    left, right = socket.socketpair()
    unconnected = socket.socket()
    try:
        assert _local_peer(left) is True
        assert _local_peer(unconnected) is False
    finally:
        for sock in (left, right, unconnected):
            sock.close()


@pytest.mark.parametrize("preadv", [True, False], ids=["preadv-reused-buffer", "pread"])
def test_a_loopback_stream_sends_regions_without_sendfile(
    loop_thread: LoopThread,
    make_pair: Any,
    data_file: Tuple[int, bytes],
    monkeypatch: Any,
    preadv: bool,
) -> None:
    """16 MiB, more than the socket buffers hold: chunks leave in pieces while the region
    waits, and the reused buffer is read into again only once its chunk has gone."""

    def no_sendfile(*args: Any) -> int:
        raise AssertionError("sendfile called for a loopback peer")

    monkeypatch.setattr(os, "sendfile", no_sendfile)
    if preadv and not hasattr(os, "preadv"):
        pytest.skip("no os.preadv here")
    monkeypatch.setattr(stream_module, "_PREADV", preadv)
    fd, content = data_file
    stream, peer, _ = make_pair()
    assert loop_thread.call(lambda: stream.zero_copy) is False
    loop_thread.call(stream.write, b"head:")
    loop_thread.call(stream.write_file, FileRegion(fd, 0, len(content)))
    loop_thread.call(stream.write, b":tail")
    assert read_exactly(peer, len(content) + 10) == b"head:" + content + b":tail"
    assert loop_thread.call(lambda: (stream.sent, stream.write_error)) == (
        len(content) + 10,
        None,
    )
    assert loop_thread.call(lambda: stream._file_buffer) is None  # no file waits: let go


def test_the_peer_is_asked_for_at_the_first_file_only(
    loop_thread: LoopThread, make_pair: Any, data_file: Tuple[int, bytes], monkeypatch: Any
) -> None:
    asked: List[Any] = []

    def local_peer(sock: Any) -> bool:
        asked.append(sock)
        return _local_peer(sock)

    monkeypatch.setattr(stream_module, "_local_peer", local_peer)
    fd, content = data_file
    stream, peer, _ = make_pair()
    loop_thread.call(stream.write, b"bytes only")
    assert read_exactly(peer, 10) == b"bytes only"
    assert asked == []
    half = len(content) // 2
    loop_thread.call(stream.write_file, FileRegion(fd, 0, half))
    loop_thread.call(stream.write_file, FileRegion(fd, half, len(content) - half))
    assert read_exactly(peer, len(content)) == content
    assert asked == [stream.sock]
