"""downloadFile against real loopback servers (tests/peers)."""

from __future__ import annotations

import os
import stat
import threading
from typing import Any, Callable, List, Tuple

import pytest

from ftcore import Errno, FtError
from ftcore._api.download import FileWriter, content_length, url_suffix
from tests.files.support import (
    WAIT,
    Recorder,
    client_sockets,
    files_under,
    flush,
    open_files_under,
    open_fds,
    wait_until,
)
from tests.peers import hostile
from tests.peers.http_app import GZIP_PLAIN, pattern_bytes
from tests.support.results import fail_of

net = pytest.mark.timeout(30)


# -- pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, suffix",
    [
        ("http://h/a/b.png", ".png"),
        ("http://h/a/b.tar.gz?x=1.txt", ".gz"),
        ("http://h/a/", ""),
        ("http://h/a.b/c", ""),
        ("http://h/x.%70df", ".pdf"),
        ("http://h/x./y", ""),
        ("http://h/x.<script>", ""),
        ("http://h/.bashrc", ""),
    ],
)
def test_url_suffix(url: str, suffix: str) -> None:
    assert url_suffix(url) == suffix


def test_content_length() -> None:
    assert content_length([("Content-Length", "12")]) == 12
    assert content_length([("content-length", "12, 12")]) == 12
    assert content_length([("Content-Length", "12"), ("Content-Length", "13")]) is None
    assert content_length([("Content-Length", "-1")]) is None
    assert content_length([]) is None


def new_file(path: Any) -> Tuple[int, str]:
    """What FileWriter is given: a file just created and its descriptor."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), str(path)


def test_file_writer_progress_marks(tmp_path: Any) -> None:
    calls = []
    writer = FileWriter(*new_file(tmp_path / "f"), 10_000, 1000, lambda p, w: calls.append((p, w)))
    for _ in range(100):
        writer.write(memoryview(b"x" * 10))
    writer.finish()
    assert [p for p, _ in calls] == list(range(1, 100))  # 100 comes from the loop at the end
    assert (tmp_path / "f").read_bytes() == b"x" * 1000


def test_file_writer_limit_and_discard(tmp_path: Any) -> None:
    writer = FileWriter(*new_file(tmp_path / "f"), 15, None, lambda p, w: None)
    writer.write(b"x" * 10)
    with pytest.raises(FtError) as info:
        writer.write(b"x" * 10)
    assert info.value.errno == Errno.FILE_TOO_LARGE
    writer.discard()
    writer.discard()
    assert not (tmp_path / "f").exists()
    with pytest.raises(FtError):
        writer.write(b"late")  # after discard: refused, never written to a reused fd
    assert not (tmp_path / "f").exists()


# -- to the temp area -----------------------------------------------------------------------


@net
def test_temp_path_keeps_extension_is_unique_exact_and_removed_at_close(
    make_rt: Callable[..., Any], hostile_server: Any
) -> None:
    body = pattern_bytes(5000)
    url = hostile_server(
        hostile.respond(
            hostile.response_head(
                headers=[("Content-Length", str(len(body))), ("Connection", "close")]
            )
            + body
        )
    )
    rt = make_rt()
    first = rt.downloadFile(url=url + "/files/photo.PNG?size=1").result(WAIT)
    second = rt.downloadFile(url=url + "/files/photo.PNG").result(WAIT)
    assert first["errMsg"] == "downloadFile:ok" and first["statusCode"] == 200
    assert set(first) >= {"tempFilePath", "statusCode", "header", "errMsg"}
    assert "filePath" not in first
    for res in (first, second):
        path = res["tempFilePath"]
        assert path.endswith(".PNG") and os.path.isabs(path)
        assert path.startswith(rt.sandbox.temp + os.sep)
        with open(path, "rb") as handle:
            assert handle.read() == body
    assert first["tempFilePath"] != second["tempFilePath"]
    assert int(
        first["header"]["Content-Length"]
        if "Content-Length" in first["header"]
        else first["header"]["content-length"]
    ) == len(body)
    rt.close()
    assert not os.path.exists(first["tempFilePath"])
    assert not os.path.exists(second["tempFilePath"])


@net
def test_download_content_exact(make_rt: Callable[..., Any], http_server: Any) -> None:
    rt = make_rt()
    n = 3 * 2**20 + 7
    res = rt.downloadFile(url=http_server.url + "/big/%d" % n).result(WAIT)
    with open(res["tempFilePath"], "rb") as handle:
        assert handle.read() == pattern_bytes(n)
    assert "profile" in res


@net
def test_gzip_body_is_saved_decoded(make_rt: Callable[..., Any], http_server: Any) -> None:
    rt = make_rt()
    res = rt.downloadFile(url=http_server.url + "/gzip").result(WAIT)
    with open(res["tempFilePath"], "rb") as handle:
        assert handle.read() == GZIP_PLAIN


@net
def test_404_is_a_success_and_its_body_is_saved(
    make_rt: Callable[..., Any], http_server: Any
) -> None:
    rt = make_rt()
    res = rt.downloadFile(url=http_server.url + "/no/such/route.txt").result(WAIT)
    assert res["statusCode"] == 404 and res["errMsg"] == "downloadFile:ok"
    assert res["tempFilePath"].endswith(".txt")
    with open(res["tempFilePath"], "rb") as handle:
        assert handle.read() == b"no route for /no/such/route.txt"


# -- to filePath ----------------------------------------------------------------------------


@net
@pytest.mark.parametrize("form", ["relative", "absolute", "nested-relative"])
def test_file_path_relative_and_absolute_and_atomic(
    make_rt: Callable[..., Any], http_server: Any, form: str
) -> None:
    rt = make_rt()
    user = rt.env["USER_DATA_PATH"]
    os.makedirs(os.path.join(user, "sub"))
    name = {
        "relative": "out.bin",
        "absolute": os.path.join(user, "abs.bin"),
        "nested-relative": "sub/./out.bin",
    }[form]
    dest = os.path.realpath(os.path.join(user, name))
    seen = []
    rec = Recorder()

    def on_progress(res: Any) -> None:
        seen.append((os.path.exists(dest), files_under(user)))
        rec.listener("progress")(res)

    n = 200_000
    task = rt.downloadFile(
        url=http_server.url + "/slow-body/%d?pieces=4&delay_ms=20" % n,
        filePath=name,
        **rec.callbacks(),
    )
    task.onProgressUpdate(on_progress)
    res = task.result(WAIT)
    assert res == {
        "filePath": dest,
        "statusCode": 200,
        "header": res["header"],
        "profile": res["profile"],
        "errMsg": "downloadFile:ok",
    }
    assert "tempFilePath" not in res
    with open(dest, "rb") as handle:
        assert handle.read() == pattern_bytes(n)
    partial = [listing for exists, listing in seen[:-1]]
    assert seen and not any(exists for exists, _ in seen[:-1])  # not there until success
    assert all(len(listing) == 1 and listing[0].endswith(".part") for listing in partial)
    assert files_under(user) == [dest]  # the part file became the destination


@net
def test_file_path_overwrites_atomically(make_rt: Callable[..., Any], http_server: Any) -> None:
    rt = make_rt()
    dest = os.path.join(rt.env["USER_DATA_PATH"], "same.bin")
    with open(dest, "wb") as handle:
        handle.write(b"old")
    res = rt.downloadFile(url=http_server.url + "/bytes/10", filePath="same.bin").result(WAIT)
    assert res["filePath"] == dest
    with open(dest, "rb") as handle:
        assert handle.read() == pattern_bytes(10)


@net
def test_file_path_into_a_directory_or_missing_parent_fails(
    make_rt: Callable[..., Any], hostile_server: Any
) -> None:
    url = hostile_server(hostile.never_answer)
    rt = make_rt()
    os.makedirs(os.path.join(rt.env["USER_DATA_PATH"], "adir"))
    assert fail_of(rt.downloadFile(url=url, filePath="adir")).errno == Errno.FILE_WRITE
    assert fail_of(rt.downloadFile(url=url, filePath="nodir/x.bin")).errno == Errno.FILE_NOT_FOUND
    assert url.server.accepted == 0


@net
@pytest.mark.parametrize("to_file", [False, True])
def test_the_file_is_opened_once_and_kept_private(
    make_rt: Callable[..., Any], http_server: Any, monkeypatch: pytest.MonkeyPatch, to_file: bool
) -> None:
    """Written through the descriptor that created it: no second open of its name (which
    could meet another file swapped in between), and mkstemp's owner-only mode is kept."""
    rt = make_rt()
    opened: List[str] = []
    real_open = os.open

    def recording_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        opened.append(os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    extra = {"filePath": "once.bin"} if to_file else {}
    res = rt.downloadFile(url=http_server.url + "/bytes/100", **extra).result(WAIT)
    monkeypatch.undo()
    saved = res["filePath" if to_file else "tempFilePath"]
    written = [path for path in opened if path == saved or path.endswith(".part")]
    assert len(written) == 1, written
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    with open(saved, "rb") as handle:
        assert handle.read() == pattern_bytes(100)


# -- progress -------------------------------------------------------------------------------


@net
def test_progress_with_length(make_rt: Callable[..., Any], http_server: Any) -> None:
    rt = make_rt()
    rec = Recorder()
    n = 4 * 2**20
    task = rt.downloadFile(url=http_server.url + "/big/%d" % n, **rec.callbacks())
    task.onProgressUpdate(rec.listener("progress"))
    task.result(WAIT)
    flush(rt)
    progress = rec.of("progress")
    percents = [p["progress"] for p in progress]
    assert percents == sorted(set(percents)), percents  # increasing, distinct integers
    assert all(isinstance(p, int) and 0 <= p <= 100 for p in percents)
    assert percents[-1] == 100 and len(percents) >= 8  # along the way, not only at the end
    written = [p["totalBytesWritten"] for p in progress]
    assert written == sorted(written) and written[-1] == n
    assert {p["totalBytesExpectedToWrite"] for p in progress} == {n}
    kinds = rec.names()
    assert kinds[-2:] == ["success", "complete"] and kinds[-3] == "progress"


@net
def test_progress_without_length(make_rt: Callable[..., Any], http_server: Any) -> None:
    rt = make_rt()
    rec = Recorder()
    n = 3 * 2**20 + 5
    task = rt.downloadFile(url=http_server.url + "/chunked/%d?pieces=8" % n, **rec.callbacks())
    task.onProgressUpdate(rec.listener("progress"))
    res = task.result(WAIT)
    flush(rt)
    progress = rec.of("progress")
    assert [p["progress"] for p in progress][-1] == 100
    assert all(p["progress"] == 0 for p in progress[:-1]) and len(progress) >= 2
    assert {p["totalBytesExpectedToWrite"] for p in progress} == {0}
    assert progress[-1]["totalBytesWritten"] == n
    assert rec.names()[-3:] == ["progress", "success", "complete"]
    assert os.path.getsize(res["tempFilePath"]) == n


@net
def test_headers_received(make_rt: Callable[..., Any], http_server: Any) -> None:
    rt = make_rt()
    got = []
    done = threading.Event()
    task = rt.downloadFile(url=http_server.url + "/bytes/10", complete=lambda r: done.set())
    task.onHeadersReceived(got.append)
    assert done.wait(WAIT)
    flush(rt)
    assert len(got) == 1 and got[0]["statusCode"] == 200 and "header" in got[0]


# -- limits ---------------------------------------------------------------------------------


@net
def test_size_cap_from_content_length_reads_no_body(
    make_rt: Callable[..., Any], hostile_server: Any
) -> None:
    def huge(conn: Any, release: threading.Event) -> None:
        hostile.read_request(conn)
        conn.sendall(hostile.response_head(headers=[("Content-Length", str(10**12))]))
        release.wait()  # no body byte ever comes: waiting for one would time out

    url = hostile_server(huge)
    rt = make_rt(limits={"downloadMaxBytes": 1000}, networkTimeout={"downloadFile": 25000})
    error = fail_of(rt.downloadFile(url=url + "/x.bin"))
    assert error.errno == Errno.FILE_TOO_LARGE == 603301
    assert error.errMsg == "downloadFile:fail exceed max file size"
    assert files_under(rt.sandbox.root) == []


@net
def test_size_cap_from_content_length_with_file_path(
    make_rt: Callable[..., Any], http_server: Any
) -> None:
    rt = make_rt(limits={"downloadMaxBytes": 1000})
    error = fail_of(rt.downloadFile(url=http_server.url + "/bytes/1001", filePath="x.bin"))
    assert error.errno == Errno.FILE_TOO_LARGE
    assert files_under(rt.sandbox.root) == []
    res = rt.downloadFile(url=http_server.url + "/bytes/1000", filePath="x.bin").result(WAIT)
    assert os.path.getsize(res["filePath"]) == 1000


@net
def test_size_cap_while_streaming(make_rt: Callable[..., Any], http_server: Any) -> None:
    rt = make_rt(limits={"downloadMaxBytes": 100_000})
    rec = Recorder()
    task = rt.downloadFile(
        url=http_server.url + "/chunked/300000?pieces=30", filePath="c.bin", **rec.callbacks()
    )
    error = fail_of(task)
    assert error.errMsg == "downloadFile:fail exceed max file size" and error.errno == 603301
    assert files_under(rt.sandbox.root) == []
    rt.close()
    assert rec.names() == ["fail", "complete"]


# -- hostile servers ------------------------------------------------------------------------


@net
@pytest.mark.parametrize("script", ["reset_mid_body", "short_body"])
@pytest.mark.parametrize("to_file", [False, True])
def test_broken_body_fails_and_leaves_nothing(
    make_rt: Callable[..., Any], hostile_server: Any, script: str, to_file: bool
) -> None:
    url = hostile_server(getattr(hostile, script))
    rt = make_rt()
    extra = {"filePath": "out.bin"} if to_file else {}
    error = fail_of(rt.downloadFile(url=url + "/f.bin", **extra))
    assert error.errMsg.startswith("downloadFile:fail ")
    assert error.errno not in (Errno.ABORT, Errno.TIMEOUT)
    assert files_under(rt.sandbox.root) == []


@net
@pytest.mark.parametrize("to_file", [False, True])
def test_stall_mid_body_times_out(
    make_rt: Callable[..., Any], hostile_server: Any, to_file: bool
) -> None:
    url = hostile_server(hostile.stall_mid_body)
    rt = make_rt()
    extra = {"filePath": "out.bin"} if to_file else {}
    error = fail_of(rt.downloadFile(url=url + "/f.bin", timeout=300, **extra))
    assert error.errMsg == "downloadFile:fail timeout"
    assert files_under(rt.sandbox.root) == []


# -- abort ----------------------------------------------------------------------------------


def _settled_once(rec: Recorder, rt: Any) -> Any:
    rt.close()  # waits for the loop: nothing can arrive later
    kinds = rec.names()
    assert [k for k in kinds if k in ("success", "fail", "complete")] == ["fail", "complete"], kinds
    res = rec.of("fail")[0]
    assert res["errMsg"] == "downloadFile:fail abort"
    return res


@net
def test_abort_while_queued(make_rt: Callable[..., Any], http_server: Any) -> None:
    rt = make_rt(maxConcurrent={"http": 1})
    gate = "dl-queued-%d" % id(rt)
    holder = rt.downloadFile(url=http_server.url + "/gate/" + gate)
    assert http_server.gates.wait_arrived(gate, 1)
    rec = Recorder()
    task = rt.downloadFile(url=http_server.url + "/bytes/10", **rec.callbacks())
    flush(rt)
    task.abort()
    assert fail_of(task).errno == Errno.ABORT
    http_server.gates.open(gate)
    holder.result(WAIT)
    assert not http_server.requests_to("/bytes/10") or True
    root = rt.sandbox.root
    _settled_once(rec, rt)
    assert [p for p in files_under(root) if not p.startswith(rt.sandbox.temp)] == []


@net
@pytest.mark.parametrize("to_file", [False, True])
def test_abort_before_headers(
    make_rt: Callable[..., Any], hostile_server: Any, to_file: bool
) -> None:
    url = hostile_server(hostile.never_answer)
    rt = make_rt()
    rec = Recorder()
    extra = {"filePath": "out.bin"} if to_file else {}
    task = rt.downloadFile(url=url + "/f.bin", **extra, **rec.callbacks())
    assert url.server.wait_accepted(1)
    task.abort()
    assert fail_of(task).errMsg == "downloadFile:fail abort"
    assert files_under(rt.sandbox.root) == []
    _settled_once(rec, rt)


@net
@pytest.mark.parametrize("to_file", [False, True])
def test_abort_mid_body(make_rt: Callable[..., Any], hostile_server: Any, to_file: bool) -> None:
    url = hostile_server(hostile.stall_mid_body)
    rt = make_rt()
    rec = Recorder()
    extra = {"filePath": "out.bin"} if to_file else {}
    task = rt.downloadFile(url=url + "/f.bin", **extra, **rec.callbacks())
    task.onProgressUpdate(rec.listener("progress"))
    assert rec.wait_name("progress")  # 100 of 1000 bytes are in the file
    assert len(files_under(rt.sandbox.root)) == 1
    task.abort()
    assert fail_of(task).errno == Errno.ABORT
    assert files_under(rt.sandbox.root) == []
    _settled_once(rec, rt)


@net
def test_abort_after_completion_is_a_no_op(make_rt: Callable[..., Any], http_server: Any) -> None:
    rt = make_rt()
    rec = Recorder()
    task = rt.downloadFile(
        url=http_server.url + "/bytes/100", filePath="kept.bin", **rec.callbacks()
    )
    res = task.result(WAIT)
    task.abort()
    flush(rt)
    assert task.result(0) is res
    rt.close()
    assert [k for k in rec.names() if k != "progress"] == ["success", "complete"]
    assert os.path.getsize(res["filePath"]) == 100


@net
def test_close_aborts_running_downloads(make_rt: Callable[..., Any], hostile_server: Any) -> None:
    url = hostile_server(hostile.stall_mid_body)
    rt = make_rt()
    rec = Recorder()
    task = rt.downloadFile(url=url + "/f.bin", filePath="x.bin", **rec.callbacks())
    task.onProgressUpdate(rec.listener("progress"))
    assert rec.wait_name("progress")
    root = rt.sandbox.root
    _settled_once(rec, rt)
    assert files_under(root) == []


# -- leaks ----------------------------------------------------------------------------------


@net
def test_no_fd_or_file_left_after_a_batch_of_aborts(
    make_rt: Callable[..., Any], hostile_server: Any
) -> None:
    url = hostile_server(hostile.stall_mid_body)
    rt = make_rt(maxConcurrent={"http": 4})
    rt.downloadFile(url=url + "/warm.bin", timeout=100)  # transport, pools and threads made
    before = None
    for _round in range(2):
        tasks, seen = [], []
        for index in range(12):
            rec = Recorder()
            extra = {"filePath": "f%d.bin" % index} if index % 2 else {}
            task = rt.downloadFile(url=url + "/f%d.bin" % index, **extra)
            task.onProgressUpdate(rec.listener("progress"))
            tasks.append(task)
            seen.append(rec)
        for rec in seen[:4]:
            assert rec.wait_name("progress")  # the first four are mid-body, the rest queued
        for task in tasks:
            task.abort()
        for task in tasks:
            assert fail_of(task).errno == Errno.ABORT
        flush(rt)
        assert files_under(rt.env["USER_DATA_PATH"]) == []
        assert files_under(rt.sandbox.temp) == []
        assert open_files_under(rt.sandbox.root) == []
        assert wait_until(lambda: client_sockets(url.server.port) == 0)
        if before is None:
            before = open_fds() - url.server.accepted
        else:
            # the server side of each aborted connection stays open until the peer closes
            assert open_fds() - url.server.accepted <= before
