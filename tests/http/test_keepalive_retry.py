"""A request that meets a stale keep-alive connection is sent again, once (API.md §11).

A server closes an idle keep-alive connection (nginx after 75 s) just as the next request goes
out on it: the request meets an EOF or a reset before any byte of the response. The core
sends it again on a new connection, for every method, and says so in `exception`. The peer
(`tests.peers.scripted_http`) plays that race deterministically: `expire_idle` makes the
connections open at that moment close as their next request arrives, unanswered. It must not
retry anything else: a fresh connection, a response already begun, a timeout, a second time.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any, Dict, List

import pytest

import ftcore
from ftcore.errors import Errno, FtError
from ftcore.transports import HttpRequest, HttpSink
from tests.http.helpers import Recorder, call
from tests.peers.scripted_http import ScriptedPeer, Seen, answer, cut, drop, silent
from tests.support.waits import WAIT

pytestmark = pytest.mark.timeout(60)

MIB = 2**20


def retried(api: str = "request") -> Dict[str, Any]:
    """The `exception` of a result whose request was sent again after a stale connection."""
    return {
        "retryCount": 1,
        "reasons": [{"errno": 600015, "errMsg": ReasonPrefix(api + ":fail connection ")}],
    }


class ReasonPrefix(str):
    """Equal to any errMsg that starts with it (the reason names EOF or reset)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith(str(self))

    __hash__ = str.__hash__


def report_of(res: Dict[str, Any]) -> Dict[str, Any]:
    data = res["data"]
    return json.loads(data) if isinstance(data, str) else data


# -- both sides of the race ------------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("how", ["eof", "reset"])
def test_a_request_on_each_side_of_the_idle_close(make_runtime, scripted_peer, request, how, tls):
    peer: ScriptedPeer = scripted_peer(tls=tls)
    cafile = request.getfixturevalue("tls_material").cafile if tls else None
    rt = make_runtime({"tls": {"cafile": cafile}})
    first = call(rt, url=peer.url + "/1")
    before = call(rt, url=peer.url + "/2")  # arrives before the keep-alive timeout: answered
    assert (report_of(first)["connection"], report_of(before)["connection"]) == (1, 1)
    assert before["profile"]["socketReused"] is True and "exception" not in before
    peer.expire_idle(how)
    after = call(rt, url=peer.url + "/3")  # arrives just after it: sent again on a new one
    assert after["statusCode"] == 200 and report_of(after)["connection"] == 2
    assert after["exception"] == retried(), after.get("exception")
    profile = after["profile"]
    assert profile["socketReused"] is False  # the profile is the new connection's
    assert profile["connectStart"] >= before["profile"]["responseEnd"]
    assert profile["connectStart"] <= profile["connectEnd"] <= profile["requestStart"]
    assert profile["sendBytesCount"] == peer.wait_done(4)[3].received
    later = call(rt, url=peer.url + "/4")  # the new connection is kept alive in its turn
    assert report_of(later)["connection"] == 2 and "exception" not in later
    seen = peer.wait_done(5)
    assert [(s.connection, s.target, s.outcome) for s in seen] == [
        (1, "/1", "answered"),
        (1, "/2", "answered"),
        (1, "/3", how),
        (2, "/3", "answered"),
        (2, "/4", "answered"),
    ]
    assert peer.accepted == 2


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"])
def test_every_method_is_sent_again_with_its_body(make_runtime, scripted_peer, method):
    peer: ScriptedPeer = scripted_peer()
    rt = make_runtime()
    call(rt, url=peer.url + "/warm")
    peer.expire_idle("eof")
    body = os.urandom(200_000) if method in ("POST", "PUT") else None
    options = {"data": body} if body is not None else {}
    res = call(rt, url=peer.url + "/again", method=method, responseType="arraybuffer", **options)
    assert res["statusCode"] == 200 and res["exception"] == retried()
    stale, fresh = peer.wait_done(3)[1:]
    assert (stale.connection, stale.method, stale.outcome) == (1, method, "eof")
    assert (fresh.connection, fresh.method, fresh.outcome) == (2, method, "answered")
    if body is not None:
        digest = hashlib.sha256(body).hexdigest()
        assert stale.body_sha256 == fresh.body_sha256 == digest  # the same bytes, both times


@pytest.mark.parametrize("how", ["eof", "reset"])
def test_an_upload_is_sent_again_byte_exact_and_its_progress_never_goes_back(
    make_runtime, tmp_path, scripted_peer, how
):
    rt = make_runtime({"sandbox": str(tmp_path / "sandbox")})
    peer: ScriptedPeer = scripted_peer(keep_bodies=True)
    content = os.urandom(6 * MIB + 7)
    path = os.path.join(rt.env["USER_DATA_PATH"], "up.bin")
    with open(path, "wb") as handle:
        handle.write(content)
    call(rt, url=peer.url + "/warm")
    peer.expire_idle(how)
    recorder = Recorder()
    task = rt.uploadFile(url=peer.url + "/up", filePath=path, name="file", **recorder.callbacks())
    task.onProgressUpdate(recorder.listener("progress"))
    res = recorder.wait(WAIT).outcome
    assert res["statusCode"] == 200 and res["exception"] == retried("uploadFile"), res
    assert res["profile"]["socketReused"] is False
    fresh = peer.wait_done(3)[2]
    assert fresh.connection == 2 and fresh.body_received == int(fresh.header("Content-Length"))
    assert file_part(fresh) == content
    progress = recorder.of("progress")
    percents = [event["progress"] for event in progress]
    sent = [event["totalBytesSent"] for event in progress]
    assert percents == sorted(percents) and sent == sorted(sent), progress
    assert percents[-1] == 100 and sent[-1] == fresh.body_received
    assert recorder.names()[-3:] == ["progress", "success", "complete"]


def file_part(seen: Seen) -> bytes:
    """The file's bytes in a one-file multipart body: after the part's head, before the
    closing boundary."""
    boundary = seen.header("Content-Type").split("boundary=")[1].encode()
    body = seen.body
    assert body.startswith(b"--" + boundary) and body.endswith(b"\r\n--" + boundary + b"--\r\n")
    start = body.index(b"\r\n\r\n") + 4
    return body[start : len(body) - len(boundary) - 8]


# -- what is not retried -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["eof", "reset"])
def test_a_fresh_connection_that_fails_is_not_retried(make_runtime, scripted_peer, how):
    peer: ScriptedPeer = scripted_peer(lambda seen: drop(how))
    rt = make_runtime()
    res = call(rt, url=peer.url + "/x", method="POST", data=b"payload")
    assert res["errno"] == 600015 and res["errMsg"].startswith("request:fail connection ")
    assert peer.accepted == 1 and len(peer.wait_done(1)) == 1


def test_a_reset_after_the_status_line_is_not_retried(make_runtime, scripted_peer):
    peer: ScriptedPeer = scripted_peer(
        lambda seen: cut(b"HTTP/1.1 200 OK\r\n") if seen.index == 2 else answer()
    )
    rt = make_runtime()
    assert call(rt, url=peer.url + "/1")["statusCode"] == 200
    res = call(rt, url=peer.url + "/2")
    assert res["errno"] == 600015, res
    assert peer.accepted == 1 and [s.outcome for s in peer.wait_done(2)] == ["answered", "cut"]


def test_a_timeout_on_a_reused_connection_is_not_retried(make_runtime, scripted_peer):
    peer: ScriptedPeer = scripted_peer(lambda seen: silent() if seen.index == 2 else answer())
    rt = make_runtime()
    assert call(rt, url=peer.url + "/1")["statusCode"] == 200
    res = call(rt, url=peer.url + "/2", timeout=300)
    assert (res["errno"], res["errMsg"]) == (600011, "request:fail timeout")
    assert peer.accepted == 1


def test_a_request_is_retried_once_only(make_runtime, scripted_peer):
    peer: ScriptedPeer = scripted_peer(lambda seen: answer() if seen.connection == 1 else drop())
    rt = make_runtime()
    assert call(rt, url=peer.url + "/1")["statusCode"] == 200
    peer.expire_idle("reset")
    res = call(rt, url=peer.url + "/2")
    assert res["errno"] == 600015 and "exception" not in res
    assert [(s.connection, s.outcome) for s in peer.wait_done(3)] == [
        (1, "answered"),
        (1, "reset"),
        (2, "eof"),
    ]
    assert peer.accepted == 2


# -- the rule is the core's: any transport that reports the facts gets it ----------------------


class FactsTransport:
    """A transport without a network: each exchange fails with the error and facts given, on
    a thread of its own, until none are left; then it answers 200. Records every request."""

    def __init__(self, failures: List[Any]) -> None:
        self.failures = list(failures)
        self.requests: List[HttpRequest] = []
        self.threads: List[threading.Thread] = []

    def start(self, request: HttpRequest, sink: HttpSink) -> Any:
        self.requests.append(request)
        failure = self.failures.pop(0) if self.failures else None
        thread = threading.Thread(target=self._run, args=(request, sink, failure))
        self.threads.append(thread)
        thread.start()
        return self

    def _run(self, request: HttpRequest, sink: HttpSink, failure: Any) -> None:
        for chunk in [request.body] if isinstance(request.body, bytes) else []:
            sink.sent(len(chunk))
        if failure is not None:
            error, info, heard = failure
            if heard:
                sink.headers(200, [], {})
            sink.error(error, info)
            return
        sink.headers(200, [("Content-Length", "2")], {"socketReused": False})
        sink.body(b"ok")
        sink.end({"sendBytesCount": 1, "receivedBytedCount": 2})

    def abort(self) -> None:
        pass

    def close(self) -> None:
        for thread in self.threads:
            thread.join(WAIT)


class FactsPlugin:
    def __init__(self, transport: FactsTransport) -> None:
        self.transport = transport

    @ftcore.hookimpl
    def ftcore_http_transport_make(self, runtime: Any) -> FactsTransport:
        return self.transport


RESET = FtError(Errno.CONNECTION_RESET)
STALE = {"socketReused": True, "receivedBytedCount": 0}


@pytest.mark.parametrize(
    "error, info, heard, retries",
    [
        (RESET, STALE, False, True),
        (RESET, dict(STALE, socketReused=False), False, False),
        (RESET, dict(STALE, receivedBytedCount=12), False, False),
        (RESET, {"socketReused": True}, False, False),  # a transport that does not count
        (RESET, STALE, True, False),  # the head was reported: the response had begun
        (RESET, None, False, False),  # a transport that reports no facts
        (FtError(Errno.TIMEOUT), STALE, False, False),
        (FtError(Errno.CONNECTION_REFUSED), STALE, False, False),
    ],
    ids=["stale", "fresh", "bytes-seen", "uncounted", "head-seen", "no-facts", "timeout", "refuse"],
)
def test_the_core_decides_from_the_facts_a_transport_reports(
    make_runtime, error, info, heard, retries
):
    transport = FactsTransport([(error, info, heard)])
    rt = make_runtime(plugins=[FactsPlugin(transport)])
    res = call(rt, url="http://example.invalid/x", method="POST", data=b"body")
    if retries:
        assert res["statusCode"] == 200 and res["exception"] == retried()
        first, again = transport.requests
        assert (first.fresh_connection, again.fresh_connection) == (False, True)
        assert (again.method, again.url, again.body) == (first.method, first.url, first.body)
        assert again.headers == first.headers
    else:
        assert res["errno"] == error.errno and "exception" not in res
        assert len(transport.requests) == 1


def test_only_a_body_that_can_be_read_again_is_replayed(tmp_path):
    """Bytes, and iterables that start over (uploadFile's body re-reads its file); never a
    one-shot iterator (API.md §11: "whose body can be replayed")."""
    from ftcore._api.http import _replayable
    from ftcore._api.multipart import MultipartBody

    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    with MultipartBody({}, "file", str(path)) as multipart:
        assert [_replayable(body) for body in (None, b"x", [b"x"], multipart)] == [True] * 4
        assert list(multipart) == list(multipart)
    assert _replayable(iter([b"x"])) is False
    assert _replayable(piece for piece in [b"x"]) is False
