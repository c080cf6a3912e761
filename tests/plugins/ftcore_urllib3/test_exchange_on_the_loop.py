"""The loop-driven urllib3 transport through the public API, against real loopback peers.

What the exchange on the runtime's loop must get right beyond the older suites: content
decoding (several codings, members, cuts, corrupt bodies, bombs), when a connection is reused
and when it must not be, framing on real sockets, early answers to uploads, big TLS bodies both
ways, the profile of fresh and reused connections, a loop that stays responsive during a long
body, and an abort while a dial cannot finish. Every test also checks that the transport gave
every connection back (`wait_idle`, `checked_out == 0`).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import random
import resource
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import pytest

import ftcore
from tests.files.support import client_sockets, wait_until
from tests.http.helpers import LOOP_THREAD, Recorder, call, paused_loop
from tests.peers import hostile
from tests.peers.http_app import GZIP_BODY, GZIP_PLAIN, pattern_bytes
from tests.support.waits import PROMPT, WAIT

pytestmark = pytest.mark.timeout(60)

ABORT = {"errMsg": "request:fail abort", "errno": 600003}
MIB = 2**20
HEADS = 4096  # more than any head (and chunked framing) these peers and the client write

# -- scripted peers ----------------------------------------------------------------------------

# what a route does with a request: a raw response to send, or a function (conn, request head)
# returning None (keep serving) or "gone" (it closed the connection)
Action = Union[bytes, Callable[[socket.socket, bytes], Optional[str]]]


def resp(
    body: bytes = b"",
    status: int = 200,
    reason: str = "OK",
    headers: Sequence[Tuple[str, str]] = (),
    version: str = "HTTP/1.1",
    length: bool = True,
) -> bytes:
    """A raw response; with `length`, a Content-Length matching `body` is added."""
    fields = list(headers) + ([("Content-Length", str(len(body)))] if length else [])
    lines = ["%s %d %s" % (version, status, reason)] + ["%s: %s" % f for f in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


NOT_FOUND = resp(b"no route", 404, "Not Found")
CLOSE = ("Connection", "close")


def routes(table: Dict[str, Action]) -> hostile.Script:
    """A keep-alive server: each request on a connection gets the action of its target."""

    def script(conn: socket.socket, release: threading.Event) -> None:
        while True:
            head = hostile.read_request(conn)
            if not head:
                return
            target = head.split(b" ", 2)[1].decode("latin-1")
            action = table.get(target, NOT_FOUND)
            if callable(action):
                outcome = action(conn, head)
            else:
                conn.sendall(action)
                outcome = None
            if outcome == "gone":  # the action closed the connection
                return

    return script


def then_close(raw: bytes, closed: Optional[threading.Event] = None) -> Action:
    """Send `raw`, close the connection (FIN), then set `closed`."""

    def action(conn: socket.socket, head: bytes) -> str:
        conn.sendall(raw)
        hostile.close_cleanly(conn)
        if closed is not None:
            closed.set()
        return "gone"

    return action


def trickle(raw: bytes, piece: int) -> Action:
    """Send `raw` in `piece`-byte TCP segments, a millisecond apart."""

    def action(conn: socket.socket, head: bytes) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for start in range(0, len(raw), piece):
            conn.sendall(raw[start : start + piece])
            time.sleep(0.001)  # a paced body is the point: the client reads between pieces

    return action


def chunked(body: bytes, size: int) -> bytes:
    """`body` as chunked transfer coding with `size`-byte chunks."""
    out = b"".join(
        b"%x\r\n" % len(body[i : i + size]) + body[i : i + size] + b"\r\n"
        for i in range(0, len(body), size)
    )
    return out + b"0\r\n\r\n"


@pytest.fixture
def tls_hostile(tls_material: Any) -> Iterator[Callable[[hostile.Script], hostile.HostileServer]]:
    """`tls_hostile(script)`: a scripted server with an https:// `.url`; the script wraps the
    connection itself with `server_context` (passed as a third argument)."""
    servers: List[hostile.HostileServer] = []

    def make(script: Callable[..., None]) -> hostile.HostileServer:
        context = tls_material.server_context()
        server = hostile.HostileServer(
            lambda conn, release: script(conn, release, context), scheme="https"
        )
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


# -- helpers -----------------------------------------------------------------------------------


def assert_idle(rt: ftcore.Runtime, timeout: float = 1.0) -> None:
    transport = rt.transport("http")
    assert transport.wait_idle(timeout)
    assert transport.checked_out == 0


def get(rt: ftcore.Runtime, url: str, **options: Any) -> Dict[str, Any]:
    return call(rt, url=url, responseType="arraybuffer", **options)


def sandboxed(make_runtime: Callable[..., ftcore.Runtime], tmp_path: Any, **config: Any) -> Any:
    config.setdefault("sandbox", str(tmp_path / "sandbox"))
    return make_runtime(config)


def read_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def raw_deflate(data: bytes) -> bytes:
    obj = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return obj.compress(data) + obj.flush()


def text_plain(n: int, seed: int = 1) -> bytes:
    """n bytes that compress, but not to nothing."""
    return bytes(random.Random(seed).choices(b"abcdefgh \n", k=n))


@functools.lru_cache(maxsize=None)
def gzip_bomb(layers: int) -> bytes:
    """64 MiB of zeros, gzip-compressed `layers` times (made in 1 MiB steps)."""
    zeros = bytes(MIB)
    obj = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = b"".join(obj.compress(zeros) for _ in range(64)) + obj.flush()
    for _ in range(layers - 1):
        out = gzip.compress(out, 9, mtime=0)
    return out


def maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


# -- 1. Content-Encoding -----------------------------------------------------------------------

PLAIN = text_plain(20000)


@pytest.mark.parametrize(
    "coding, body",
    [
        ("deflate", zlib.compress(PLAIN)),
        ("deflate", raw_deflate(PLAIN)),
        ("gzip", gzip.compress(PLAIN[:7000], mtime=0) + gzip.compress(PLAIN[7000:], mtime=0)),
        ("x-gzip", gzip.compress(PLAIN, mtime=0)),
        ("gzip, deflate", zlib.compress(gzip.compress(PLAIN, mtime=0))),
        ("identity", PLAIN),
    ],
    ids=["deflate-zlib", "deflate-raw", "gzip-two-members", "x-gzip", "gzip-then-deflate", "id"],
)
def test_content_encoding_is_decoded_and_the_connection_reused(rt, hostile_server, coding, body):
    raw = resp(body, headers=[("Content-Encoding", coding)])
    url = hostile_server(routes({"/z": raw, "/next": resp(b"n")}))
    res = get(rt, url + "/z")
    assert res["statusCode"] == 200
    assert res["data"] == PLAIN
    assert res["profile"]["receivedBytedCount"] == len(raw)  # as on the wire, head included
    assert get(rt, url + "/next")["profile"]["socketReused"] is True
    assert url.server.accepted == 1
    assert_idle(rt)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_gzip_cut_into_many_small_tcp_writes(rt, hostile_server, framing):
    body = gzip.compress(PLAIN[:6000], mtime=0)
    coding = [("Content-Encoding", "gzip")]
    if framing == "chunked":
        raw = resp(
            chunked(body, 13), headers=coding + [("Transfer-Encoding", "chunked")], length=False
        )
    else:
        raw = resp(body, headers=coding)
    url = hostile_server(routes({"/z": trickle(raw, 29), "/next": resp(b"n")}))
    res = get(rt, url + "/z")
    assert res["data"] == PLAIN[:6000]
    assert res["profile"]["receivedBytedCount"] == len(raw)
    assert get(rt, url + "/next")["profile"]["socketReused"] is True
    assert_idle(rt)


@pytest.mark.parametrize("coding", ["x-foo", "gzip, x-foo", "compress"])
def test_unknown_coding_is_passed_through_unchanged(rt, hostile_server, coding):
    body = b"\x1f\x8b not really \x00\xff" + gzip.compress(b"inner", mtime=0)
    url = hostile_server(routes({"/u": resp(body, headers=[("Content-Encoding", coding)])}))
    res = get(rt, url + "/u")
    assert res["statusCode"] == 200
    assert res["data"] == body
    assert res["header"]["Content-Encoding"] == coding
    assert_idle(rt)


GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
GOOD_GZIP = gzip.compress(PLAIN[:3000], mtime=0)
CORRUPT = {
    "invalid-block-type": GZIP_HEADER + b"\xff" * 64,  # BFINAL=1, BTYPE=11 (reserved)
    "bad-crc": GOOD_GZIP[:-8] + bytes(b ^ 0xFF for b in GOOD_GZIP[-8:-4]) + GOOD_GZIP[-4:],
    "not-gzip-at-all": b"this is plain text, labelled gzip" * 10,
}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_corrupt_gzip_fails_600018_and_the_connection_is_dropped(rt, hostile_server, kind):
    url = hostile_server(
        routes(
            {"/bad": resp(CORRUPT[kind], headers=[("Content-Encoding", "gzip")]), "/ok": resp(b"k")}
        )
    )
    res = get(rt, url + "/bad")
    assert res["errno"] == 600018, res
    assert res["errMsg"].startswith("request:fail bad response"), res
    assert_idle(rt)
    after = get(rt, url + "/ok")
    assert after["data"] == b"k" and after["profile"]["socketReused"] is False
    assert url.server.accepted == 2
    assert_idle(rt)


@pytest.mark.parametrize(
    "coding, body",
    [
        ("gzip", gzip.compress(PLAIN[:5000], mtime=0) + gzip.compress(PLAIN[5000:], mtime=0)),
        ("deflate", raw_deflate(PLAIN)),
    ],
    ids=["gzip-two-members", "deflate-raw"],
)
def test_download_saves_the_decoded_body(make_runtime, tmp_path, hostile_server, coding, body):
    rt = sandboxed(make_runtime, tmp_path)
    raw = resp(body, headers=[("Content-Encoding", coding)])
    url = hostile_server(routes({"/f.txt": raw}))
    res = rt.downloadFile(url=url + "/f.txt").result(WAIT)
    assert res["statusCode"] == 200
    assert read_file(res["tempFilePath"]) == PLAIN
    assert res["profile"]["receivedBytedCount"] == len(raw)
    assert_idle(rt)


def test_download_of_a_corrupt_body_fails_600018_and_leaves_no_file(
    make_runtime, tmp_path, hostile_server
):
    rt = sandboxed(make_runtime, tmp_path)
    body = CORRUPT["invalid-block-type"]
    url = hostile_server(routes({"/f.bin": resp(body, headers=[("Content-Encoding", "gzip")])}))
    with pytest.raises(ftcore.FtError) as info:
        rt.downloadFile(url=url + "/f.bin", filePath="kept.bin").result(WAIT)
    assert info.value.errno == 600018
    assert info.value.errMsg.startswith("downloadFile:fail bad response")
    assert not os.path.exists(os.path.join(rt.env["USER_DATA_PATH"], "kept.bin"))
    assert_idle(rt)


def test_brotli_is_decoded_when_available(rt, hostile_server):
    brotli = pytest.importorskip("brotli")
    raw = resp(brotli.compress(PLAIN), headers=[("Content-Encoding", "br")])
    url = hostile_server(routes({"/b": raw}))
    res = get(rt, url + "/b")
    assert res["data"] == PLAIN
    assert res["profile"]["receivedBytedCount"] == len(raw)
    assert_idle(rt)


# -- 2. a decompression bomb -------------------------------------------------------------------


@pytest.mark.parametrize("layers", [1, 2], ids=["gzip", "gzip-gzip"])
@pytest.mark.parametrize("api", ["request", "downloadFile"])
def test_decompression_bomb_stops_at_the_limit(make_runtime, tmp_path, hostile_server, api, layers):
    body = gzip_bomb(layers)
    coding = ", ".join(["gzip"] * layers)
    url = hostile_server(routes({"/bomb.bin": resp(body, headers=[("Content-Encoding", coding)])}))
    rt = sandboxed(make_runtime, tmp_path, limits={"downloadMaxBytes": MIB})
    before = maxrss_bytes()  # a high-water mark: see the fresh-process test for a clean one
    with pytest.raises(ftcore.FtError) as info:
        getattr(rt, api)(url=url + "/bomb.bin").result(WAIT)
    grown = maxrss_bytes() - before
    if api == "request":
        assert (info.value.errno, info.value.errMsg) == (600019, "request:fail response too large")
    else:
        assert (info.value.errno, info.value.errMsg) == (
            603301,
            "downloadFile:fail exceed max file size",
        )
    assert grown < 40 * MIB, grown
    assert_idle(rt)


BOMB_IN_A_FRESH_PROCESS = r"""
import json, resource, sys, zlib
import ftcore
from tests.peers import hostile

zeros = bytes(2**20)
obj = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
body = b"".join(obj.compress(zeros) for _ in range(64)) + obj.flush()
headers = [("Content-Encoding", "gzip"), ("Content-Length", str(len(body)))]
bomb = hostile.HostileServer(hostile.respond(hostile.response_head(headers=headers) + body))
small = hostile.HostileServer(hostile.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
rt = ftcore.Runtime(
    config={"limits": {"downloadMaxBytes": 2**20}, "sandbox": sys.argv[1]}, entrypoints=False
)
try:
    rt.request(url=small.url).result(20)  # every import and pool made before the baseline
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        rt.request(url=bomb.url, responseType="arraybuffer").result(20)
        errno = 0
    except ftcore.FtError as error:
        errno = error.errno
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    idle = rt.transport("http").wait_idle(5)
finally:
    rt.close()
    bomb.close()
    small.close()
scale = 1 if sys.platform == "darwin" else 1024
print(json.dumps({"errno": errno, "grown": (after - before) * scale, "idle": idle}))
"""


def test_decompression_bomb_does_not_balloon_a_fresh_process(tmp_path):
    """ru_maxrss is a high-water mark: a fresh process gives the bomb a clean baseline."""
    root = str(Path(__file__).resolve().parents[3])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.path.join(root, "plugins")]))
    out = subprocess.run(
        [sys.executable, "-c", BOMB_IN_A_FRESH_PROCESS, str(tmp_path / "sandbox")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=root,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errno"] == 600019 and result["idle"] is True, result
    assert result["grown"] < 40 * MIB, result


# -- 3. keep-alive -----------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_sequential_requests_reuse_one_connection(make_runtime, http_server_factory, tls):
    server = http_server_factory(tls=tls)
    rt = make_runtime({"tls": {"cafile": server.cafile}} if tls else None)
    first = get(rt, server.url + "/bytes/100")
    second = get(rt, server.url + "/chunked/5000?pieces=3")
    third = get(rt, server.url + "/bytes/10")
    assert [r["profile"]["socketReused"] for r in (first, second, third)] == [False, True, True]
    assert second["data"] == pattern_bytes(5000)
    assert server.connections_accepted == 1
    assert len({r.connection for r in server.requests}) == 1
    assert_idle(rt)


def test_idle_connection_closed_by_the_server_is_replaced(rt, hostile_server):
    closed = threading.Event()
    url = hostile_server(
        routes({"/first": then_close(resp(b"one"), closed), "/second": resp(b"two")})
    )
    assert get(rt, url + "/first")["data"] == b"one"
    assert closed.wait(5)  # the server's FIN is on its way before the next request starts
    res = get(rt, url + "/second")
    assert res["statusCode"] == 200 and res["data"] == b"two"
    assert res["profile"]["socketReused"] is False
    assert url.server.accepted == 2
    assert_idle(rt)


@pytest.mark.parametrize(
    "raw, reused",
    [
        (resp(b"one", headers=[CLOSE]), False),
        (resp(b"one", headers=[("Connection", "keep-alive, Close")]), False),
        (resp(b"one", version="HTTP/1.0"), False),
        (resp(b"one", version="HTTP/1.0", headers=[("Connection", "keep-alive")]), True),
        (resp(b"one", headers=[("Connection", "keep-alive")]), True),
    ],
    ids=["close", "close-in-a-list", "http-1.0", "http-1.0-keep-alive", "http-1.1-keep-alive"],
)
def test_reuse_follows_the_response_head(rt, hostile_server, raw, reused):
    """The server keeps every connection open: only the client decides not to reuse it."""
    url = hostile_server(routes({"/first": raw, "/second": resp(b"two")}))
    assert get(rt, url + "/first")["data"] == b"one"
    res = get(rt, url + "/second")
    assert res["data"] == b"two"
    assert res["profile"]["socketReused"] is reused
    assert url.server.accepted == (1 if reused else 2)
    assert_idle(rt)


def test_bytes_after_the_response_force_a_new_connection(rt, hostile_server):
    junk = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\njunk"
    url = hostile_server(routes({"/first": resp(b"one") + junk, "/second": resp(b"real")}))
    assert get(rt, url + "/first")["data"] == b"one"
    res = get(rt, url + "/second")
    assert res["statusCode"] == 200 and res["data"] == b"real"
    assert res["profile"]["socketReused"] is False
    assert url.server.accepted == 2
    assert_idle(rt)


# -- 4. framing on real sockets ----------------------------------------------------------------


def test_chunked_with_extensions_and_trailers(rt, hostile_server):
    body = (
        b'5;name=value\r\nhello\r\n6;quoted="a;b";x\r\n world\r\n'
        b"0;last\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n"
    )
    raw = resp(body, headers=[("Transfer-Encoding", "chunked")], length=False)
    url = hostile_server(routes({"/c": trickle(raw, 7), "/next": resp(b"n")}))
    res = get(rt, url + "/c")
    assert res["data"] == b"hello world"
    assert "X-Trailer" not in res["header"]
    assert get(rt, url + "/next")["profile"]["socketReused"] is True
    assert url.server.accepted == 1
    assert_idle(rt)


def test_body_read_until_the_server_closes(rt, hostile_server):
    body = pattern_bytes(700_000)  # more than one read buffer
    raw = resp(body, length=False)
    url = hostile_server(routes({"/eof": then_close(raw), "/next": resp(b"n")}))
    res = get(rt, url + "/eof")
    assert res["statusCode"] == 200 and res["data"] == body
    assert "Content-Length" not in res["header"]
    assert res["profile"]["receivedBytedCount"] == len(raw)
    assert get(rt, url + "/next")["profile"]["socketReused"] is False
    assert url.server.accepted == 2
    assert_idle(rt)


def test_head_with_content_length_reads_no_body_and_reuses(rt, hostile_server):
    head_only = resp(b"x" * 1000)[:-1000]  # the head announces 1000 bytes it never sends
    url = hostile_server(routes({"/h": head_only, "/g": resp(b"after")}))
    res = call(rt, url=url + "/h", method="HEAD", timeout=5000)
    assert res["statusCode"] == 200 and res["data"] == ""
    assert res["header"]["Content-Length"] == "1000"
    after = get(rt, url + "/g", timeout=5000)
    assert after["data"] == b"after" and after["profile"]["socketReused"] is True
    assert url.server.accepted == 1
    assert_idle(rt)


@pytest.mark.parametrize("status, reason", [(204, "No Content"), (304, "Not Modified")])
def test_no_body_statuses_ignore_content_length(rt, hostile_server, status, reason):
    head_only = resp(b"12345", status, reason)[:-5]
    url = hostile_server(routes({"/s": head_only, "/g": resp(b"after")}))
    res = get(rt, url + "/s", timeout=5000)
    assert res["statusCode"] == status and res["data"] == b""
    after = get(rt, url + "/g", timeout=5000)
    assert after["data"] == b"after" and after["profile"]["socketReused"] is True
    assert url.server.accepted == 1
    assert_idle(rt)


def test_interim_heads_are_skipped(rt, hostile_server):
    def interim_then_final(conn: socket.socket, head: bytes) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        time.sleep(0.005)  # separate segments: the final head arrives in a later read
        conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        time.sleep(0.005)
        conn.sendall(resp(b"ok", headers=[("X-Final", "1")]))

    url = hostile_server(routes({"/i": interim_then_final, "/next": resp(b"n")}))
    recorder = Recorder()
    with paused_loop(rt):
        task = rt.request(url=url + "/i", **recorder.callbacks())
        task.onHeadersReceived(recorder.listener("headers"))
    res = recorder.wait().outcome
    assert res["statusCode"] == 200 and res["data"] == "ok"
    assert res["header"].get("X-Final") == "1" and "Link" not in res["header"]
    heard = recorder.of("headers")
    assert [h["statusCode"] for h in heard] == [200]
    assert get(rt, url + "/next")["profile"]["socketReused"] is True
    assert_idle(rt)


# -- 5. uploads --------------------------------------------------------------------------------


def read_head(conn: socket.socket) -> Tuple[bytes, bytes]:
    """The request head and the body bytes that came with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            break
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def answer_early(then: str) -> hostile.Script:
    """Read the head and about 64 KiB of the body, answer 413, then "close" or "hold"."""

    def script(conn: socket.socket, release: threading.Event) -> None:
        _, got = read_head(conn)
        while len(got) < 64 * 1024:
            piece = conn.recv(65536)
            if not piece:
                return
            got += piece
        conn.sendall(resp(b"too large", 413, "Payload Too Large", [CLOSE]))
        if then == "hold":
            release.wait()  # neither reads nor closes: only the client can end this
        else:
            conn.close()  # unread bytes are left behind: the kernel answers with RST

    return script


@pytest.mark.parametrize("then", ["hold", "close"])
def test_upload_answered_413_before_the_body_was_read(make_runtime, tmp_path, hostile_server, then):
    rt = sandboxed(make_runtime, tmp_path)
    path = os.path.join(rt.env["USER_DATA_PATH"], "big.bin")
    with open(path, "wb") as handle:
        handle.write(os.urandom(8 * MIB))
    url = hostile_server(answer_early(then))
    started = time.monotonic()
    task = rt.uploadFile(url=url + "/up", filePath=path, name="file", timeout=20000)
    try:
        res: Dict[str, Any] = task.result(WAIT)
    except ftcore.FtError as error:
        res = {"errno": error.errno, "errMsg": error.errMsg}
    assert time.monotonic() - started < 5  # answered, not timed out
    if then == "hold":  # the response is all there is: nothing can reset it
        assert (res.get("statusCode"), res.get("data")) == (413, "too large"), res
    else:
        assert res.get("statusCode") == 413 or res.get("errno") == 600015, res
    assert_idle(rt)
    assert wait_until(lambda: client_sockets(url.server.port) == 0, 5)


def test_a_read_error_of_the_uploaded_file_fails_the_task(
    make_runtime, tmp_path, http_server, monkeypatch
):
    """An error reading the file mid-body (EIO) fails the upload, drops the connection and
    leaves the loop running (the exchange does not wait for the timeout)."""
    from ftcore._api import multipart as _multipart

    rt = sandboxed(make_runtime, tmp_path)
    path = os.path.join(rt.env["USER_DATA_PATH"], "big.bin")
    with open(path, "wb") as handle:
        handle.write(os.urandom(4 * MIB))
    reads = []
    read = _multipart.MultipartBody._read

    def failing_read(self: Any, size: int, offset: int) -> bytes:
        reads.append(offset)
        if len(reads) == 3:
            raise OSError(5, "Input/output error")
        return read(self, size, offset)

    monkeypatch.setattr(_multipart.MultipartBody, "_read", failing_read)
    # the byte route (pread): without `regions()` plain HTTP does not send the file with
    # sendfile (tests/http/test_upload_sendfile.py has the same test for that route)
    monkeypatch.delattr(_multipart.MultipartBody, "regions")
    started = time.monotonic()
    with pytest.raises(ftcore.FtError) as raised:
        rt.uploadFile(url=http_server.url + "/sink", filePath=path, name="f").result(WAIT)
    assert time.monotonic() - started < 5
    assert raised.value.errno == ftcore.Errno.NETWORK
    assert "Input/output error" in raised.value.errMsg
    assert_idle(rt)
    assert rt.request(url=http_server.url + "/json").result(WAIT)["statusCode"] == 200


def multipart_sink(conn: socket.socket, release: threading.Event, context: Any) -> None:
    """TLS: read a multipart upload by its Content-Length, streaming; answer with the size and
    sha256 of the file part and of the whole body, then close.

    The TLS socket takes over the descriptor (the tracker can no longer shut it down at
    teardown), so this script never waits for anything the client might not send: it reads
    exactly Content-Length bytes, with a timeout, and closes."""
    tls = context.wrap_socket(conn, server_side=True)
    try:
        tls.settimeout(WAIT)
        head, first = read_head(tls)
        fields = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        length = int(fields[b"content-length"])
        boundary = fields[b"content-type"].split(b"boundary=", 1)[1]
        tail = b"\r\n--" + boundary + b"--\r\n"
        whole, part = hashlib.sha256(), hashlib.sha256()
        received = size = 0
        prefix = bytearray()
        held = b""
        in_file = False
        data = first
        while True:
            received += len(data)
            whole.update(data)
            if not in_file:
                prefix += data
                mark = prefix.find(b'filename="')
                start = prefix.find(b"\r\n\r\n", mark) if mark >= 0 else -1
                if start >= 0:
                    in_file = True
                    data = bytes(prefix[start + 4 :])
            if in_file:
                data = held + data
                cut = max(0, len(data) - len(tail))
                part.update(data[:cut])
                size += cut
                held = data[cut:]
            if received >= length:
                break
            data = tls.recv(MIB)
            if not data:
                break
        answer = json.dumps(
            {
                "content_length": length,
                "received": received,
                "whole_sha256": whole.hexdigest(),
                "size": size,
                "sha256": part.hexdigest(),
                "tail_ok": held == tail,
            }
        ).encode()
        tls.sendall(resp(answer, headers=[("Content-Type", "application/json"), CLOSE]))
    finally:
        tls.close()


def test_big_upload_over_tls_arrives_byte_exact(make_runtime, tmp_path, tls_hostile, tls_material):
    rt = sandboxed(make_runtime, tmp_path, tls={"cafile": tls_material.cafile})
    content = os.urandom(32 * MIB)
    digest = hashlib.sha256(content).hexdigest()
    path = os.path.join(rt.env["USER_DATA_PATH"], "big.bin")
    with open(path, "wb") as handle:
        handle.write(content)
    del content
    server = tls_hostile(multipart_sink)
    progress: List[Dict[str, Any]] = []
    with paused_loop(rt):
        task = rt.uploadFile(
            url=server.url + "/up", filePath=path, name="file", formData={"a": "1"}
        )
        task.onProgressUpdate(progress.append)
    res = task.result(WAIT)
    seen = json.loads(res["data"])
    assert res["statusCode"] == 200
    assert (seen["size"], seen["sha256"], seen["tail_ok"]) == (32 * MIB, digest, True)
    assert seen["received"] == seen["content_length"]
    percents = [p["progress"] for p in progress]
    assert percents == sorted(percents) and percents[-1] == 100 and len(percents) >= 10
    assert progress[-1]["totalBytesSent"] == seen["content_length"]
    assert {p["totalBytesExpectedToSend"] for p in progress} == {seen["content_length"]}
    assert_idle(rt)


# -- 6. TLS bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/big/%d", "/chunked/%d?pieces=64"])
def test_4mib_response_over_tls_is_byte_exact(make_runtime, https_server, route):
    rt = make_runtime({"tls": {"cafile": https_server.cafile}})
    n = 4 * MIB + 3
    res = get(rt, https_server.url + route % n)
    assert res["statusCode"] == 200
    assert len(res["data"]) == n and res["data"] == pattern_bytes(n)
    assert n < res["profile"]["receivedBytedCount"] < n + HEADS  # exact: test_byte_counts.py
    assert_idle(rt)


def test_post_1mib_over_tls_is_byte_exact(make_runtime, https_server):
    rt = make_runtime({"tls": {"cafile": https_server.cafile}})
    body = os.urandom(MIB + 5)
    res = call(rt, url=https_server.url + "/sink", method="POST", data=body)
    assert res["statusCode"] == 200
    seen = res["data"]
    assert seen["received"] == seen["content_length"] == len(body)
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()
    assert len(body) < res["profile"]["sendBytesCount"] < len(body) + HEADS
    assert_idle(rt)


# -- 7. profile --------------------------------------------------------------------------------

ORDER = ["connectStart", "connectEnd", "requestStart", "requestEnd", "responseStart", "responseEnd"]


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("body_size", [777, 200_000], ids=["small-body", "large-body"])
def test_profile_of_a_fresh_then_a_reused_connection(
    make_runtime, http_server_factory, tls, body_size
):
    server = http_server_factory(tls=tls)
    rt = make_runtime({"tls": {"cafile": server.cafile}} if tls else None)
    body = os.urandom(body_size)
    first = call(rt, url=server.url + "/gzip", method="POST", data=body)
    second = get(rt, server.url + "/bytes/1000")
    assert first["data"] == json.loads(GZIP_PLAIN)
    fresh, reused = first["profile"], second["profile"]
    for profile in (fresh, reused):
        assert [profile[k] for k in ORDER] == sorted(profile[k] for k in ORDER), profile
        assert profile["fetchStart"] <= profile["connectStart"]
        assert (profile["peerIP"], profile["port"]) == ("127.0.0.1", server.port)
    assert (fresh["socketReused"], reused["socketReused"]) == (False, True)
    if tls:
        assert fresh["connectEnd"] <= fresh["SSLconnectionStart"] < fresh["SSLconnectionEnd"]
        assert fresh["SSLconnectionEnd"] <= fresh["requestStart"]
    else:
        assert fresh["SSLconnectionStart"] == fresh["SSLconnectionEnd"] == 0
    assert reused["SSLconnectionStart"] == reused["SSLconnectionEnd"] == 0
    # heads included (exact counts: test_byte_counts.py); received: gzip bytes, not decoded
    assert body_size < fresh["sendBytesCount"] < body_size + HEADS
    assert len(GZIP_BODY) < fresh["receivedBytedCount"] < len(GZIP_BODY) + HEADS
    assert 0 < reused["sendBytesCount"] < HEADS
    assert 1000 < reused["receivedBytedCount"] < 1000 + HEADS
    assert server.connections_accepted == 1
    assert_idle(rt)


# -- 8. the loop stays responsive ------------------------------------------------------------

BLOCK = pattern_bytes(MIB)


def firehose(stop: threading.Event, at_least: int) -> hostile.Script:
    """A chunked body sent as fast as the client takes it: `at_least` bytes, and more until
    `stop` is set, so the body is still streaming for as long as the test measures."""

    def script(conn: socket.socket, release: threading.Event) -> None:
        hostile.read_request(conn)
        conn.sendall(resp(headers=[("Transfer-Encoding", "chunked")], length=False))
        chunk = b"%x\r\n" % len(BLOCK) + BLOCK + b"\r\n"
        sent = 0
        while not release.is_set() and (sent < at_least or not stop.is_set()):
            conn.sendall(chunk)
            sent += len(BLOCK)
        conn.sendall(b"0\r\n\r\n")
        release.wait()

    return script


def test_timers_fire_on_time_during_a_64mib_download(make_runtime, tmp_path, hostile_server):
    # the body streams until the timers are done: on a fast machine it passed the default
    # 200 MiB cap before ten 10 ms timers had fired, so the timers are 2 ms and the cap 1 GiB
    rt = sandboxed(make_runtime, tmp_path, limits={"downloadMaxBytes": 2**30})
    stop = threading.Event()
    url = hostile_server(firehose(stop, 64 * MIB))
    written: List[int] = [0]
    flowing = threading.Event()
    enough = threading.Event()
    fired: List[Tuple[float, float, int]] = []  # (due, fired at, bytes written by then)

    def on_progress(res: Dict[str, Any]) -> None:
        written[0] = res["totalBytesWritten"]
        if written[0] >= MIB:
            flowing.set()

    with paused_loop(rt):
        task = rt.downloadFile(url=url + "/big.bin")
        task.onProgressUpdate(on_progress)
    assert flowing.wait(WAIT)

    def arm() -> None:  # loop thread: a 2 ms timer, re-armed ten times
        due = time.monotonic() + 0.002

        def fire() -> None:
            fired.append((due, time.monotonic(), written[0]))
            if len(fired) < 10:
                arm()
            else:
                enough.set()

        rt.loop.call_later(0.002, fire)

    asked = time.monotonic()
    rt.loop.call_soon_threadsafe(arm)  # asked from another thread while the body streams
    assert enough.wait(WAIT)
    stop.set()
    res = task.result(WAIT)
    size = os.path.getsize(res["tempFilePath"])
    assert size >= 64 * MIB and size % MIB == 0
    # The body streams until told to stop, so a loop that starved its timers would never fire
    # them: generous bounds tell "on time" from "starved" on a loaded machine too.
    assert fired[0][1] - asked < PROMPT, fired[0][1] - asked
    assert max(at - due for due, at, _ in fired) < PROMPT, fired
    assert fired[0][2] < fired[-1][2] < size  # the body kept streaming while the timers fired
    assert_idle(rt)


# -- 9. abort while a dial cannot finish -------------------------------------------------------


class SilentTls:
    """A peer that reads the ClientHello and never answers: the client waits inside the TLS
    handshake, on a dialling thread, until something interrupts it."""

    def __init__(self) -> None:
        self.hello = threading.Event()
        self.gone = threading.Event()
        self.let_go = threading.Event()

    def __call__(self, conn: socket.socket, release: threading.Event) -> None:
        if conn.recv(65536):  # the ClientHello: the client now waits inside the handshake
            self.hello.set()
        conn.settimeout(0.02)
        while not (self.let_go.is_set() or release.is_set()):  # never answered
            try:
                if not conn.recv(65536):
                    self.gone.set()  # the client shut the socket down
                    return
            except socket.timeout:
                pass


def test_abort_during_a_tls_handshake_that_never_completes(rt, hostile_server):
    peer = SilentTls()
    url = hostile_server(peer)
    recorder = Recorder()
    task = rt.request(
        url=url.replace("http://", "https://") + "/x", timeout=30000, **recorder.callbacks()
    )
    try:
        assert peer.hello.wait(WAIT)
        task.abort()
        recorder.wait(PROMPT)
        assert recorder.outcome == ABORT
        assert recorder.names() == ["fail", "complete"]
        assert set(recorder.threads()) == {LOOP_THREAD}
        # interrupted at once, not left to its 30 s timeout; 2 s is a generous bound for that
        assert_idle(rt, timeout=2)
        assert peer.gone.wait(2)  # the peer saw the connection end
        assert url.server.accepted == 1
    finally:
        peer.let_go.set()  # if the client did not end the handshake, the peer ends it
        assert rt.transport("http").wait_idle(5)


def test_closing_the_runtime_during_a_tls_handshake(make_runtime, hostile_server):
    """Runtime.close() while a dial hangs: the task fails, the dial is interrupted, and close
    returns promptly with no dialling thread left behind."""
    rt = make_runtime()
    peer = SilentTls()
    url = hostile_server(peer)
    recorder = Recorder()
    rt.request(url=url.replace("http://", "https://") + "/x", timeout=30000, **recorder.callbacks())
    try:
        assert peer.hello.wait(WAIT)
        closer = threading.Thread(target=rt.close)
        closer.start()
        closer.join(PROMPT)  # not left to the handshake's 30 s timeout
        assert not closer.is_alive()
        recorder.wait(5)
        assert recorder.names() == ["fail", "complete"]
        assert peer.gone.wait(2)
        assert not [t for t in threading.enumerate() if t.name.startswith("ftcore-http")]
    finally:
        peer.let_go.set()


def test_abort_during_a_tcp_connect_to_a_full_backlog(rt):
    listener = socket.socket()
    fillers: List[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                pytest.skip("this kernel accepts connections beyond a full backlog")
        baseline = client_sockets(port)
        recorder = Recorder()
        task = rt.request(url="http://127.0.0.1:%d/x" % port, timeout=500, **recorder.callbacks())
        assert wait_until(lambda: client_sockets(port) == baseline + 1, 5)  # SYN sent, unanswered
        task.abort()
        recorder.wait(5)
        assert recorder.outcome == ABORT  # settled by the abort, not by its 500 ms timeout
        assert recorder.names() == ["fail", "complete"]
        assert_idle(rt, timeout=5)  # a connect cannot be interrupted: it ends at its timeout
        assert client_sockets(port) == baseline
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
