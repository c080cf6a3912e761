"""uploadFile against real loopback servers: the body is parsed back by the stdlib parser."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from typing import Any, Callable

import pytest

from ftcore import Errno
from tests.files.support import (
    WAIT,
    Recorder,
    client_sockets,
    flush,
    open_files_under,
    open_fds,
    wait_until,
)
from tests.peers import hostile
from tests.support.results import fail_of

net = pytest.mark.timeout(30)


def user_file(rt: Any, name: str, content: bytes) -> str:
    path = os.path.join(rt.env["USER_DATA_PATH"], name)
    with open(path, "wb") as handle:
        handle.write(content)
    return path


@net
@pytest.mark.parametrize("relative", [False, True])
def test_upload_parsed_back_exactly(
    make_rt: Callable[..., Any], http_server: Any, relative: bool
) -> None:
    rt = make_rt()
    content = os.urandom(3 * 2**20 + 11)
    path = user_file(rt, "photo.jpg", content)
    rec = Recorder()
    task = rt.uploadFile(
        url=http_server.url + "/upload",
        filePath="photo.jpg" if relative else path,
        name="file",
        formData={"user": "张三", "n": 7, "flag": True, "none": None},
        header={"X-Test": "1"},
        **rec.callbacks(),
    )
    res = task.result(WAIT)
    assert set(res) >= {"data", "statusCode", "errMsg"}
    assert res["errMsg"] == "uploadFile:ok" and res["statusCode"] == 200
    assert isinstance(res["data"], str)  # never parsed, even when it is JSON
    seen = json.loads(res["data"])
    assert seen["fields"] == {"user": "张三", "n": "7", "flag": "true", "none": "null"}
    assert seen["order"] == ["user", "n", "flag", "none", "file"]
    assert seen["files"] == {
        "file": {
            "filename": "photo.jpg",
            "content_type": "image/jpeg",
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }
    }
    assert seen["content_length"] == seen["received"]  # exact Content-Length
    flush(rt)
    assert rec.names() == ["success", "complete"]


@net
def test_hostile_names_are_never_injected(make_rt: Callable[..., Any], http_server: Any) -> None:
    rt = make_rt()
    path = user_file(rt, 'we"ird\\.txt', b"hello")
    form = {
        'a"b': "1",
        "c\r\nd": "2",
        'x"; filename="evil.sh': "3",
        'e\r\n\r\nContent-Disposition: form-data; name="injected"': "4",
    }
    res = rt.uploadFile(
        url=http_server.url + "/upload", filePath=path, name='f"\r\nile', formData=form
    ).result(WAIT)
    seen = json.loads(res["data"])
    assert seen["fields"] == {
        "a%22b": "1",
        "c%0D%0Ad": "2",
        "x%22; filename=%22evil.sh": "3",
        "e%0D%0A%0D%0AContent-Disposition: form-data; name=%22injected%22": "4",
    }
    assert list(seen["files"]) == ["f%22%0D%0Aile"]
    assert seen["files"]["f%22%0D%0Aile"]["filename"] == "we%22ird%5C.txt"
    assert len(seen["order"]) == 5


@net
def test_a_value_containing_a_boundary_like_line(
    make_rt: Callable[..., Any], http_server: Any
) -> None:
    rt = make_rt()
    path = user_file(rt, "a.bin", b"\r\n------ftcore\r\n--")
    value = '\r\n------ftcore0123\r\nContent-Disposition: form-data; name="x"\r\n\r\nzz'
    seen = json.loads(
        rt.uploadFile(
            url=http_server.url + "/upload", filePath=path, name="f", formData={"v": value}
        ).result(WAIT)["data"]
    )
    assert seen["fields"] == {"v": value}
    assert seen["files"]["f"]["size"] == len(b"\r\n------ftcore\r\n--")


@net
def test_upload_progress(make_rt: Callable[..., Any], http_server: Any) -> None:
    rt = make_rt()
    path = user_file(rt, "p.bin", os.urandom(4 * 2**20))
    rec = Recorder()
    task = rt.uploadFile(
        url=http_server.url + "/upload", filePath=path, name="f", **rec.callbacks()
    )
    task.onProgressUpdate(rec.listener("progress"))
    res = task.result(WAIT)
    flush(rt)
    seen = json.loads(res["data"])
    progress = rec.of("progress")
    percents = [p["progress"] for p in progress]
    assert percents == sorted(set(percents)) and percents[-1] == 100 and len(percents) >= 10
    assert {p["totalBytesExpectedToSend"] for p in progress} == {seen["content_length"]}
    sent = [p["totalBytesSent"] for p in progress]
    assert sent == sorted(sent) and sent[-1] == seen["content_length"]
    assert rec.names()[-3:] == ["progress", "success", "complete"]


@net
def test_response_text_is_not_parsed(make_rt: Callable[..., Any], hostile_server: Any) -> None:
    body = "中文 {not json".encode("gbk")
    url = hostile_server(
        hostile.respond(
            hostile.response_head(
                201,
                "Created",
                [("Content-Type", "text/plain; charset=gbk"), ("Content-Length", str(len(body)))],
            )
            + body
        )
    )
    rt = make_rt()
    path = user_file(rt, "x.bin", b"x")
    res = rt.uploadFile(url=url, filePath=path, name="f").result(WAIT)
    assert res["statusCode"] == 201 and res["data"] == "中文 {not json"


# -- refused before any connection ----------------------------------------------------------


@net
@pytest.mark.parametrize(
    "file_path, errno",
    [
        ("/etc/passwd", 603303),
        ("../../../../etc/passwd", 603303),
        ("missing.bin", 603304),
        ("adir", 603303),
        ("link-out", 603303),
        ("link-dir/secret.txt", 603303),
        ("", 600012),
    ],
)
def test_bad_file_paths_fail_before_connecting(
    make_rt: Callable[..., Any], hostile_server: Any, tmp_path: Any, file_path: str, errno: int
) -> None:
    url = hostile_server(hostile.never_answer)
    rt = make_rt()
    user = rt.env["USER_DATA_PATH"]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    os.makedirs(os.path.join(user, "adir"))
    os.symlink(str(outside / "secret.txt"), os.path.join(user, "link-out"))
    os.symlink(str(outside), os.path.join(user, "link-dir"))
    error = fail_of(rt.uploadFile(url=url, filePath=file_path, name="f"))
    assert error.errno == errno
    assert error.errMsg.startswith("uploadFile:fail ")
    if errno == 603303:
        assert error.errMsg.startswith("uploadFile:fail permission denied")
    assert url.server.accepted == 0


@net
@pytest.mark.parametrize("options", [{"name": ""}, {"name": None}, {"formData": "a=b"}])
def test_bad_options(make_rt: Callable[..., Any], hostile_server: Any, options: Any) -> None:
    url = hostile_server(hostile.never_answer)
    rt = make_rt()
    path = user_file(rt, "x.bin", b"x")
    merged = {"url": url, "filePath": path, "name": "f"}
    merged.update(options)
    error = fail_of(rt.uploadFile(merged))
    assert error.errno == Errno.INVALID_OPTION
    assert url.server.accepted == 0


def test_upload_may_read_a_temp_file_path(make_rt: Callable[..., Any], http_server: Any) -> None:
    rt = make_rt()
    temp = rt.downloadFile(url=http_server.url + "/bytes/300").result(WAIT)["tempFilePath"]
    seen = json.loads(
        rt.uploadFile(url=http_server.url + "/upload", filePath=temp, name="f").result(WAIT)["data"]
    )
    assert seen["files"]["f"]["size"] == 300


# -- the file changes between the call and the send ----------------------------------------


@net
@pytest.mark.parametrize("change", ["removed", "grew", "shrank"])
def test_file_changed_while_queued(
    make_rt: Callable[..., Any], http_server: Any, change: str
) -> None:
    rt = make_rt(maxConcurrent={"http": 1})
    gate = "up-queued-%s-%d" % (change, id(rt))
    holder = rt.request(url=http_server.url + "/gate/" + gate)
    assert http_server.gates.wait_arrived(gate, 1)
    path = user_file(rt, "c.bin", b"0123456789")
    task = rt.uploadFile(url=http_server.url + "/upload?c=" + change, filePath=path, name="f")
    flush(rt)  # the call's checks ran (file present, size 10); the task waits for a slot
    if change == "removed":
        os.unlink(path)
    else:
        with open(path, "ab" if change == "grew" else "r+b") as handle:
            handle.write(b"more") if change == "grew" else handle.truncate(3)
    http_server.gates.open(gate)
    error = fail_of(task)
    assert error.errno == (Errno.FILE_NOT_FOUND if change == "removed" else Errno.INVALID_DATA)
    holder.result(WAIT)
    assert not [r for r in http_server.requests_to("/upload") if r.query == "c=" + change]


# -- abort ----------------------------------------------------------------------------------


def _settled_once(rec: Recorder, rt: Any) -> None:
    rt.close()
    kinds = [k for k in rec.names() if k != "progress"]
    assert kinds == ["fail", "complete"], kinds
    assert rec.of("fail")[0]["errMsg"] == "uploadFile:fail abort"


def slow_reader(conn: socket.socket, release: threading.Event) -> None:
    """Read the head and 64 KiB of the body, then stall (the client blocks in send)."""
    got = b""
    while len(got) < 65536:
        piece = conn.recv(65536)
        if not piece:
            return
        got += piece
    release.wait()


@net
def test_abort_while_queued(make_rt: Callable[..., Any], http_server: Any) -> None:
    rt = make_rt(maxConcurrent={"http": 1})
    gate = "up-abort-queued-%d" % id(rt)
    holder = rt.request(url=http_server.url + "/gate/" + gate)
    assert http_server.gates.wait_arrived(gate, 1)
    path = user_file(rt, "q.bin", b"q")
    rec = Recorder()
    task = rt.uploadFile(
        url=http_server.url + "/upload?queued", filePath=path, name="f", **rec.callbacks()
    )
    flush(rt)
    task.abort()
    assert fail_of(task).errno == Errno.ABORT
    http_server.gates.open(gate)
    holder.result(WAIT)
    assert not [r for r in http_server.requests_to("/upload") if r.query == "queued"]
    _settled_once(rec, rt)


@net
def test_abort_before_headers(make_rt: Callable[..., Any], hostile_server: Any) -> None:
    url = hostile_server(hostile.never_answer)
    rt = make_rt()
    path = user_file(rt, "b.bin", b"b" * 1000)
    rec = Recorder()
    task = rt.uploadFile(url=url, filePath=path, name="f", **rec.callbacks())
    assert url.server.wait_accepted(1)
    task.abort()
    assert fail_of(task).errMsg == "uploadFile:fail abort"
    _settled_once(rec, rt)


@net
def test_abort_mid_body(make_rt: Callable[..., Any], hostile_server: Any) -> None:
    url = hostile_server(slow_reader)
    rt = make_rt()
    path = user_file(rt, "m.bin", os.urandom(32 * 2**20))
    rec = Recorder()
    task = rt.uploadFile(url=url, filePath=path, name="f", **rec.callbacks())
    task.onProgressUpdate(rec.listener("progress"))
    assert rec.wait_name("progress")
    task.abort()
    assert fail_of(task).errno == Errno.ABORT
    _settled_once(rec, rt)
    assert max(p["progress"] for p in rec.of("progress")) < 100


@net
def test_abort_after_completion(make_rt: Callable[..., Any], http_server: Any) -> None:
    rt = make_rt()
    path = user_file(rt, "d.bin", b"d")
    rec = Recorder()
    task = rt.uploadFile(
        url=http_server.url + "/upload", filePath=path, name="f", **rec.callbacks()
    )
    res = task.result(WAIT)
    task.abort()
    flush(rt)
    assert task.result(0) is res
    rt.close()
    assert [k for k in rec.names() if k != "progress"] == ["success", "complete"]


@net
def test_stalled_upload_times_out(make_rt: Callable[..., Any], hostile_server: Any) -> None:
    url = hostile_server(slow_reader)
    rt = make_rt()
    path = user_file(rt, "t.bin", os.urandom(8 * 2**20))
    assert fail_of(rt.uploadFile(url=url, filePath=path, name="f", timeout=300)).errMsg == (
        "uploadFile:fail timeout"
    )


@net
def test_no_fd_left_after_a_batch_of_aborted_uploads(
    make_rt: Callable[..., Any], hostile_server: Any
) -> None:
    url = hostile_server(slow_reader)
    rt = make_rt(maxConcurrent={"http": 4})
    path = user_file(rt, "big.bin", os.urandom(8 * 2**20))
    before = None
    for _ in range(2):
        tasks, recs = [], []
        for _ in range(10):
            rec = Recorder()
            task = rt.uploadFile(url=url, filePath=path, name="f")
            task.onProgressUpdate(rec.listener("progress"))
            tasks.append(task)
            recs.append(rec)
        for rec in recs[:4]:
            assert rec.wait_name("progress")
        for task in tasks:
            task.abort()
        for task in tasks:
            assert fail_of(task).errno == Errno.ABORT
        flush(rt)
        assert open_files_under(rt.sandbox.root) == []
        assert wait_until(lambda: client_sockets(url.server.port) == 0)
        if before is None:
            before = open_fds() - url.server.accepted
        else:
            # the server side of each aborted connection stays open until the peer closes
            assert open_fds() - url.server.accepted <= before


@pytest.mark.timeout(30)
def test_filename_is_the_one_given_not_a_symlink_target(
    make_rt: Callable[..., Any], http_server: Any
) -> None:
    rt = make_rt()
    user = rt.env["USER_DATA_PATH"]
    target = os.path.join(user, "abc123")
    with open(target, "wb") as handle:
        handle.write(b"\xff\xd8jpeg-ish")
    os.symlink(target, os.path.join(user, "photo.jpg"))
    res = rt.uploadFile(url=http_server.url + "/upload", filePath="photo.jpg", name="f").result(20)
    seen = json.loads(res["data"])["files"]["f"]
    assert seen["filename"] == "photo.jpg" and seen["content_type"] == "image/jpeg"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("code", [307, 308])
def test_a_307_308_redirect_sends_a_consistent_body_again(
    make_rt: Callable[..., Any], http_server: Any, code: int
) -> None:
    rt = make_rt()
    content = os.urandom(300_000)
    path = user_file(rt, "r.bin", content)
    url = http_server.url + "/redirect/%d?to=%%2Fupload" % code
    res = rt.uploadFile(url=url, filePath=path, name="f", formData={"k": "v"}).result(20)
    seen = json.loads(res["data"])  # the boundary in Content-Type matches the body's
    assert seen["fields"] == {"k": "v"}
    assert seen["files"]["f"]["sha256"] == hashlib.sha256(content).hexdigest()
