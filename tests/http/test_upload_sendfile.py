"""uploadFile over plain HTTP to another machine sends its file part with `os.sendfile` (issue
15; the loopback servers here stand in for one: `remote_peers`), and keeps
every promise of the byte route (API.md §3): the exact body and Content-Length, progress from
the bytes the kernel took, a file that changes failing with 600010 before a body that
disagrees with Content-Length, 307/308 replay, aborts that leave nothing open, read errors,
and the silent fallback when the kernel refuses sendfile. TLS keeps the byte route; other
transports iterate the body and get bytes. Real loopback servers throughout."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import threading
import time
from typing import Any, Callable, List

import pytest

from ftcore import Errno, FtError
from ftcore._api.multipart import MultipartBody
from ftcore._net.stream import FileRegion
from tests.files.support import (
    WAIT,
    Recorder,
    client_sockets,
    flush,
    open_fds,
    open_files_under,
    wait_until,
)
from tests.net.support import remote_peers  # noqa: F401
from tests.support.results import fail_of

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("remote_peers")]

MIB = 2**20


class Spy:
    """Counts the bytes `os.sendfile` sent (the loop thread calls it)."""

    def __init__(self, real: Callable[..., int]) -> None:
        self.real = real
        self.bytes = 0
        self.calls = 0

    def __call__(self, out_fd: int, in_fd: int, offset: int, count: int) -> int:
        sent = self.real(out_fd, in_fd, offset, count)
        self.calls += 1
        self.bytes += sent
        return sent


@pytest.fixture
def make_rt(make_runtime: Any, tmp_path: Any) -> Callable[..., Any]:
    """`make_rt(**config)`: a runtime with its own sandbox, closed at the end."""

    def make(**config: Any) -> Any:
        config.setdefault("sandbox", str(tmp_path / "sandbox"))
        return make_runtime(config)

    return make


@pytest.fixture
def sendfile_spy(monkeypatch: Any) -> Spy:
    spy = Spy(os.sendfile)
    monkeypatch.setattr(os, "sendfile", spy)
    return spy


def user_file(rt: Any, name: str, content: bytes) -> str:
    path = os.path.join(rt.env["USER_DATA_PATH"], name)
    with open(path, "wb") as handle:
        handle.write(content)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the body's two routes -------------------------------------------------------------------------


def test_regions_are_the_same_body_with_the_file_as_regions(tmp_path: Any) -> None:
    content = os.urandom(3 * 1024 + 5)
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    with MultipartBody({"k": "v"}, "f", str(path), chunk_size=1024) as body:
        pieces = list(body.regions())
        assert pieces[0] == body.head and pieces[-1] == body.tail
        regions = pieces[1:-1]
        assert all(type(r) is FileRegion for r in regions)
        assert [(r.offset, r.count) for r in regions] == [
            (0, 1024),
            (1024, 1024),
            (2048, 1024),
            (3072, 5),
        ]
        as_bytes = list(body)  # what a transport that iterates gets: bytes only
        assert all(type(piece) is bytes for piece in as_bytes)
        assert b"".join(as_bytes) == body.head + content + body.tail
        assert sum(len(p) for p in as_bytes) == body.length


def test_the_regions_descriptor_is_the_iterators_own(tmp_path: Any) -> None:
    """A duplicate, open while the iterator lives (even after `close()` of the body, which
    may come from another thread), closed when it ends or is dropped."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 5000)
    before = open_fds()
    body = MultipartBody({}, "f", str(path), chunk_size=1024)
    pieces = body.regions()
    next(pieces)  # the head
    region = next(pieces)
    assert isinstance(region, FileRegion) and open_fds() == before + 2
    body.close()
    assert os.pread(region.fd, 4, 0) == b"xxxx"  # still the file
    del pieces  # dropped midway
    assert open_fds() == before
    with MultipartBody({}, "f", str(path)) as body:
        list(body.regions())
        assert open_fds() == before + 1  # the body's own
    assert open_fds() == before
    with pytest.raises(FtError) as raised:
        next(body.regions())
    assert raised.value.errno == Errno.ABORT


def test_regions_fail_before_the_tail_when_the_file_grew(tmp_path: Any) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100)
    with MultipartBody({}, "f", str(path)) as body:
        pieces = body.regions()
        assert next(pieces) == body.head
        assert next(pieces).count == 100
        with open(path, "ab") as handle:
            handle.write(b"more")
        with pytest.raises(FtError) as raised:
            next(pieces)
        assert raised.value.errno == Errno.INVALID_DATA


# -- plain HTTP: sendfile; TLS and a refusing kernel: the byte route -------------------------------


def test_plain_upload_sends_the_file_with_sendfile(
    make_rt: Any, http_server: Any, sendfile_spy: Spy
) -> None:
    rt = make_rt()
    content = os.urandom(4 * MIB + 11)
    path = user_file(rt, "photo.jpg", content)
    rec = Recorder()
    task = rt.uploadFile(
        url=http_server.url + "/upload",
        filePath=path,
        name="file",
        formData={"k": "v"},
        **rec.callbacks(),
    )
    task.onProgressUpdate(rec.listener("progress"))
    seen = json.loads(task.result(WAIT)["data"])
    flush(rt)
    assert sendfile_spy.bytes == len(content)  # every file byte, none of anything else
    assert seen["fields"] == {"k": "v"}
    assert seen["files"]["file"]["sha256"] == sha(content)
    assert seen["content_length"] == seen["received"]
    progress = rec.of("progress")
    percents = [p["progress"] for p in progress]
    assert percents == sorted(set(percents)) and percents[-1] == 100 and len(percents) >= 10
    sent = [p["totalBytesSent"] for p in progress]
    assert sent == sorted(sent) and sent[-1] == seen["content_length"]
    assert {p["totalBytesExpectedToSend"] for p in progress} == {seen["content_length"]}
    assert rec.names()[-3:] == ["progress", "success", "complete"]
    assert open_files_under(rt.sandbox.root) == []  # the body's descriptor and its duplicate


def test_tls_upload_keeps_the_byte_route(
    make_rt: Any, http_server_factory: Any, sendfile_spy: Spy
) -> None:
    server = http_server_factory(tls=True)
    rt = make_rt(tls={"cafile": server.cafile})
    content = os.urandom(MIB + 3)
    path = user_file(rt, "t.bin", content)
    seen = json.loads(
        rt.uploadFile(url=server.url + "/upload", filePath=path, name="f").result(WAIT)["data"]
    )
    assert seen["files"]["f"]["sha256"] == sha(content)
    assert seen["content_length"] == seen["received"]
    assert sendfile_spy.calls == 0


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EINVAL])
def test_a_kernel_that_refuses_sendfile_falls_back_silently(
    make_rt: Any, http_server: Any, monkeypatch: Any, code: int
) -> None:
    def refused(*args: Any) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "sendfile", refused)
    rt = make_rt()
    content = os.urandom(2 * MIB + 1)
    path = user_file(rt, "r.bin", content)
    res = rt.uploadFile(url=http_server.url + "/upload", filePath=path, name="f").result(WAIT)
    seen = json.loads(res["data"])
    assert seen["files"]["f"]["sha256"] == sha(content)
    assert seen["content_length"] == seen["received"]


@pytest.mark.parametrize("code", [307, 308])
def test_a_307_308_redirect_replays_the_file_with_sendfile(
    make_rt: Any, http_server: Any, sendfile_spy: Spy, code: int
) -> None:
    rt = make_rt()
    content = os.urandom(300_000)
    path = user_file(rt, "r.bin", content)
    url = http_server.url + "/redirect/%d?to=%%2Fupload" % code
    res = rt.uploadFile(url=url, filePath=path, name="f", formData={"k": "v"}).result(WAIT)
    seen = json.loads(res["data"])
    assert seen["files"]["f"]["sha256"] == sha(content)
    assert seen["content_length"] == seen["received"]
    assert sendfile_spy.bytes >= len(content)
    assert open_files_under(rt.sandbox.root) == []


# -- a server that reads part of the body, then waits for the test ---------------------------------


class HoldingServer:
    """Per connection: read the head and `first` bytes of the body, set `holding`, wait for
    `go`, then read until EOF or the whole body (then `answer` it, or stay silent), counting
    what arrived in `received` (body bytes) and `whole` (the body was complete)."""

    def __init__(self, first: int, answer: bool = True) -> None:
        self.first, self.answer = first, answer
        self.holding = threading.Event()
        self.go = threading.Event()
        self.done = threading.Event()
        self.received = 0
        self.length = -1
        self.tail = b""

    def __call__(self, conn: socket.socket, release: threading.Event) -> None:
        conn.settimeout(WAIT)
        data = b""
        while b"\r\n\r\n" not in data:
            piece = conn.recv(65536)
            if not piece:
                return
            data += piece
        head, _, body = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                self.length = int(value)
        got = len(body)
        try:
            while got < min(self.first, self.length):
                piece = conn.recv(65536)
                if not piece:
                    break
                got += len(piece)
            self.holding.set()
            while not (self.go.wait(0.05) or release.is_set()):
                pass
            while got < self.length:
                piece = conn.recv(min(MIB, self.length - got))
                if not piece:
                    break
                got += len(piece)
                self.tail = (self.tail + piece)[-64:]
        except OSError:
            pass
        self.received = got
        self.done.set()
        if got == self.length:
            if self.answer:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            else:
                release.wait()


@pytest.mark.parametrize("change", ["shrank", "grew"])
def test_a_file_that_changes_under_sendfile_fails_before_a_disagreeing_body(
    make_rt: Any, hostile_server: Any, sendfile_spy: Spy, change: str
) -> None:
    """Shrunk mid-body: sendfile finds the end early; grown: the check before the tail. Both
    fail with 600010, the server never gets a whole body, and nothing stays open."""
    server = HoldingServer(first=64 * 1024)
    url = hostile_server(server)
    rt = make_rt()
    size = 32 * MIB  # far more than the socket buffers hold
    path = user_file(rt, "c.bin", os.urandom(size))
    task = rt.uploadFile(url=url, filePath=path, name="f")
    assert server.holding.wait(WAIT)
    if change == "shrank":
        os.truncate(path, MIB)
    else:
        with open(path, "ab") as handle:
            handle.write(b"more")
    server.go.set()
    error = fail_of(task)
    assert (error.errno, error.errMsg) == (
        Errno.INVALID_DATA,
        "uploadFile:fail file changed during upload",
    )
    assert server.done.wait(WAIT)
    assert 0 < server.received < server.length
    if change == "grew":  # every file byte went out, and not the tail after them
        assert server.length - server.received == len(
            b"\r\n--" + b"----ftcore" + b"0" * 32 + b"--\r\n"
        )
    assert sendfile_spy.calls > 0
    flush(rt)
    assert open_files_under(rt.sandbox.root) == []
    assert wait_until(lambda: client_sockets(url.server.port) == 0)


def test_a_read_error_under_sendfile_fails_the_task(
    make_rt: Any, http_server: Any, monkeypatch: Any
) -> None:
    """EIO reading the file (sendfile, then the read that tells which side failed): the
    upload fails at once as the byte route does, and the loop goes on."""
    rt = make_rt()
    path = user_file(rt, "e.bin", os.urandom(4 * MIB))
    inode = os.stat(path).st_ino
    real_sendfile, real_pread, real_preadv = os.sendfile, os.pread, getattr(os, "preadv", None)
    calls: List[int] = []

    def failing(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            fd = args[1] if real is real_sendfile else args[0]
            if os.fstat(fd).st_ino == inode:
                calls.append(1)
                if len(calls) > 4:
                    raise OSError(errno.EIO, "Input/output error")
            return real(*args)

        return call

    monkeypatch.setattr(os, "sendfile", failing(real_sendfile))
    monkeypatch.setattr(os, "pread", failing(real_pread))
    if real_preadv is not None:
        monkeypatch.setattr(os, "preadv", failing(real_preadv))
    started = time.monotonic()
    error = fail_of(rt.uploadFile(url=http_server.url + "/sink", filePath=path, name="f"))
    assert time.monotonic() - started < 5
    assert error.errno == Errno.NETWORK and "Input/output error" in error.errMsg
    assert rt.request(url=http_server.url + "/json").result(WAIT)["statusCode"] == 200
    assert open_files_under(rt.sandbox.root) == []


@pytest.mark.parametrize("stage", ["during", "after"])
def test_abort_during_or_after_the_file_part_leaves_nothing_open(
    make_rt: Any, hostile_server: Any, sendfile_spy: Spy, stage: str
) -> None:
    """During: the server holds after 64 KiB (a region waits in the stream); after: it read
    the whole body and never answers. Either way the abort settles once and closes the
    file, its duplicate and the socket."""
    server = HoldingServer(first=64 * 1024, answer=False)
    url = hostile_server(server)
    rt = make_rt()
    path = user_file(rt, "a.bin", os.urandom(16 * MIB))
    rec = Recorder()
    task = rt.uploadFile(url=url, filePath=path, name="f", **rec.callbacks())
    task.onProgressUpdate(rec.listener("progress"))
    assert server.holding.wait(WAIT)
    if stage == "after":
        server.go.set()
        assert server.done.wait(WAIT) and server.received == server.length
        assert wait_until(lambda: any(p["progress"] == 100 for p in rec.of("progress")))
    task.abort()
    assert fail_of(task).errno == Errno.ABORT
    flush(rt)
    assert [k for k in rec.names() if k != "progress"] == ["fail", "complete"]
    assert open_files_under(rt.sandbox.root) == []
    assert wait_until(lambda: client_sockets(url.server.port) == 0)
    assert sendfile_spy.calls > 0
    server.go.set()
