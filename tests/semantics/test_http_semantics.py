"""HTTP semantics (API.md §3), identical over every transport of `conftest.transport`."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from typing import Any, Dict, List
from urllib.parse import parse_qsl

import pytest

from ftcore import Errno, FtError
from tests.peers.http_app import JSON_OBJECT, SET_COOKIES, pattern_bytes

from .conftest import Adapter


def ok(task: Any) -> Dict[str, Any]:
    return task.result(timeout=10)


def fails(task: Any) -> FtError:
    with pytest.raises(FtError) as info:
        task.result(timeout=10)
    return info.value


class Progress:
    """onProgressUpdate events; `wait()` returns once the final (100) event arrived.

    A listener attached after `downloadFile()` returns may get its events replayed after the
    task has completed (the backlog of `ftcore._core.listeners`), so the tests wait for them.
    """

    def __init__(self, task: Any) -> None:
        self.events: List[Dict[str, Any]] = []
        self._final = threading.Event()
        task.onProgressUpdate(self._on)

    def _on(self, res: Dict[str, Any]) -> None:
        self.events.append(res)
        if res["progress"] == 100:
            self._final.set()

    def wait(self) -> List[Dict[str, Any]]:
        assert self._final.wait(10), self.events
        return self.events


def marker() -> str:
    return uuid.uuid4().hex[:12]


# -- encoding ---------------------------------------------------------------------------------


def test_get_merges_data_into_the_query(transport: Adapter) -> None:
    rt = transport.runtime()
    res = ok(rt.request(url=transport.url("/echo?a=1"), data={"b": "x y", "nested": {"k": [1]}}))
    echo = res["data"]
    assert echo["method"] == "GET" and echo["body_len"] == 0
    assert parse_qsl(echo["query"]) == [("a", "1"), ("b", "x y"), ("nested", '{"k":[1]}')]


def test_post_sends_json_by_default(transport: Adapter) -> None:
    rt = transport.runtime()
    echo = ok(rt.request(url=transport.url("/echo"), method="post", data={"a": [1, "中"]}))["data"]
    assert echo["method"] == "POST"
    assert echo["headers"]["content-type"] == "application/json"
    assert json.loads(echo["body"].encode("latin-1").decode("utf-8")) == {"a": [1, "中"]}


def test_urlencoded_str_and_bytes_bodies(transport: Adapter) -> None:
    rt = transport.runtime()
    form = {"content-type": "application/x-www-form-urlencoded"}
    echo = ok(
        rt.request(
            url=transport.url("/echo"), method="PUT", header=form, data={"a": "1 2", "b": "&"}
        )
    )["data"]
    assert echo["body"] == "a=1%202&b=%26"
    echo = ok(rt.request(url=transport.url("/echo"), method="POST", data="héllo"))["data"]
    assert echo["body"].encode("latin-1") == "héllo".encode("utf-8")
    echo = ok(rt.request(url=transport.url("/echo"), method="POST", data=b"\x00\xff\x10"))["data"]
    assert echo["body"].encode("latin-1") == b"\x00\xff\x10" and echo["body_len"] == 3


def test_unencodable_data_fails_with_600010(transport: Adapter) -> None:
    rt = transport.runtime()
    error = fails(rt.request(url=transport.url("/echo"), method="POST", data={"x": object()}))
    assert error.errno == Errno.INVALID_DATA


def test_referer_is_dropped_and_custom_headers_pass(transport: Adapter) -> None:
    rt = transport.runtime()
    echo = ok(rt.request(url=transport.url("/echo"), header={"Referer": "x", "X-Trace": "t1"}))[
        "data"
    ]
    assert "referer" not in echo["headers"] and echo["headers"]["x-trace"] == "t1"


# -- decoding ---------------------------------------------------------------------------------


def test_data_type_and_response_type(transport: Adapter) -> None:
    rt = transport.runtime()
    assert ok(rt.request(url=transport.url("/json")))["data"] == JSON_OBJECT
    text = ok(rt.request(url=transport.url("/json"), dataType="text"))["data"]
    assert isinstance(text, str) and json.loads(text) == JSON_OBJECT
    assert ok(rt.request(url=transport.url("/not-json")))["data"] == "hello{"
    raw = ok(rt.request(url=transport.url("/bytes/300"), responseType="arraybuffer"))["data"]
    assert raw == pattern_bytes(300)


@pytest.mark.parametrize("status", [404, 500])
def test_any_status_is_a_success(transport: Adapter, status: int) -> None:
    res = ok(transport.runtime().request(url=transport.url("/status/%d" % status)))
    assert res["statusCode"] == status and res["errMsg"] == "request:ok"
    assert res["data"] == "status %d" % status


def test_headers_cookies_and_on_headers_received(transport: Adapter) -> None:
    rt = transport.runtime()
    task = rt.request(url=transport.url("/cookies"))
    heard: List[Dict[str, Any]] = []
    got = threading.Event()
    task.onHeadersReceived(lambda res: (heard.append(res), got.set()))
    res = ok(task)
    assert res["cookies"] == list(SET_COOKIES)
    # A listener attached after the event is replayed to: it may run after completion.
    assert (
        got.wait(10) and heard[0]["statusCode"] == 200 and heard[0]["cookies"] == list(SET_COOKIES)
    )
    res = ok(rt.request(url=transport.url("/headers")))
    assert res["header"]["X-Custom-Header"] == "ftcore-peer" and res["header"]["X-Multi"] == "a, b"
    assert set(res["profile"]) >= {
        "fetchStart",
        "requestStart",
        "responseEnd",
        "peerIP",
        "port",
        "receivedBytedCount",
        "sendBytesCount",
        "protocol",
    }


def test_enable_chunked_streams_the_body(transport: Adapter) -> None:
    task = transport.runtime().request(
        url=transport.url("/chunked/5000?pieces=5&delay_ms=10"),
        enableChunked=True,
        responseType="arraybuffer",
    )
    pieces: List[bytes] = []
    task.onChunkReceived(lambda res: pieces.append(res["data"]))
    res = ok(task)
    assert not res["data"]
    assert b"".join(pieces) == pattern_bytes(5000) and len(pieces) >= 2


# -- redirects --------------------------------------------------------------------------------


def test_redirect_follow_and_manual(transport: Adapter) -> None:
    rt = transport.runtime()
    res = ok(rt.request(url=transport.url("/redirect/302?to=/echo%3Fhop%3D1")))
    assert (
        res["statusCode"] == 200
        and res["data"]["path"] == "/echo"
        and res["data"]["query"] == "hop=1"
    )
    res = ok(rt.request(url=transport.url("/redirect/302?to=/echo"), redirect="manual"))
    assert res["statusCode"] == 302 and res["header"]["Location"] == "/echo"


@pytest.mark.parametrize(
    "code, method, keeps_body",
    [(301, "GET", False), (303, "GET", False), (307, "POST", True), (308, "POST", True)],
)
def test_redirect_method_and_body(
    transport: Adapter, code: int, method: str, keeps_body: bool
) -> None:
    rt = transport.runtime()
    echo = ok(
        rt.request(
            url=transport.url("/redirect/%d?to=/echo" % code), method="POST", data={"k": "v"}
        )
    )["data"]
    assert echo["method"] == method
    assert (echo["body"] == '{"k":"v"}') is keeps_body
    assert ("content-type" in echo["headers"]) is keeps_body


def test_a_redirect_loop_fails_with_600008(transport: Adapter) -> None:
    tag = marker()
    error = fails(transport.runtime().request(url=transport.url("/redirect-loop?m=" + tag)))
    assert (
        error.errno == Errno.TOO_MANY_REDIRECTS
        and error.errMsg == "request:fail too many redirects"
    )
    assert transport.seen(tag) == 11


def test_domain_lists_apply_to_the_first_url_and_every_hop(transport: Adapter) -> None:
    rt = transport.runtime({"domains": {"request": [transport.host]}})
    assert ok(rt.request(url=transport.url("/json")))["statusCode"] == 200
    tag = marker()
    error = fails(rt.request(url=transport.other_base + "/echo?m=" + tag))
    assert (
        error.errno == Errno.DOMAIN_NOT_ALLOWED
        and error.errMsg == "request:fail url not in domain list"
    )
    assert transport.seen(tag) == 0
    tag = marker()
    hop = transport.url("/redirect/302?to=" + transport.other_base + "/echo%3Fm%3D" + tag)
    assert fails(rt.request(url=hop)).errno == Errno.DOMAIN_NOT_ALLOWED
    assert transport.seen(tag) == 1  # the redirect itself; the refused hop never left
    nothing = transport.runtime({"domains": {"request": []}})
    assert fails(nothing.request(url=transport.url("/json"))).errno == Errno.DOMAIN_NOT_ALLOWED


# -- time: timeouts and aborts ------------------------------------------------------------------


def test_timeout(transport: Adapter) -> None:
    error = fails(transport.runtime().request(url=transport.url("/delay/3000"), timeout=150))
    assert error.errMsg == "request:fail timeout" and error.errno == Errno.TIMEOUT


def test_network_timeout_from_config(transport: Adapter) -> None:
    rt = transport.runtime({"networkTimeout": {"request": 150}})
    assert fails(rt.request(url=transport.url("/delay/3000"))).errno == Errno.TIMEOUT


def test_abort_mid_body(transport: Adapter) -> None:
    task = transport.runtime().request(url=transport.url("/slow-body/1000?pieces=10&delay_ms=100"))
    heard = threading.Event()

    def on_headers(res: Dict[str, Any]) -> None:
        task.abort()
        heard.set()

    task.onHeadersReceived(on_headers)
    assert heard.wait(10)
    error = fails(task)
    assert error.errMsg == "request:fail abort" and error.errno == Errno.ABORT


# -- files: download and upload progress --------------------------------------------------------


def test_download_progress_and_file(transport: Adapter) -> None:
    rt = transport.runtime()
    task = rt.downloadFile(url=transport.url("/slow-body/200000?pieces=4&delay_ms=5"))
    progress = Progress(task)
    res = ok(task)
    events = progress.wait()
    assert res["statusCode"] == 200 and res["errMsg"] == "downloadFile:ok"
    with open(res["tempFilePath"], "rb") as f:
        assert f.read() == pattern_bytes(200000)
    assert events[-1] == {
        "progress": 100,
        "totalBytesWritten": 200000,
        "totalBytesExpectedToWrite": 200000,
    }
    percents = [e["progress"] for e in events]
    assert percents == sorted(percents) and len(percents) >= 2


def test_download_without_content_length(transport: Adapter) -> None:
    rt = transport.runtime()
    task = rt.downloadFile(url=transport.url("/chunked/3000?pieces=3"), filePath="out.bin")
    progress = Progress(task)
    res = ok(task)
    events = progress.wait()
    assert res["filePath"] == os.path.join(rt.env["USER_DATA_PATH"], "out.bin")
    with open(res["filePath"], "rb") as f:
        assert f.read() == pattern_bytes(3000)
    assert all(e["totalBytesExpectedToWrite"] == 0 for e in events)
    assert [e["progress"] for e in events][-1] == 100
    assert all(e["progress"] == 0 for e in events[:-1])


def test_byte_counts_are_as_on_the_wire(transport: Adapter) -> None:
    """`sendBytesCount` counts the request's head and body, `receivedBytedCount` the
    response's head and body (API.md §3, issue 11 §2), for every transport with a wire (the
    mock's responses have no head: it counts bodies)."""
    if transport.kind == "mock":
        pytest.skip("the mock transport has no wire")
    rt = transport.runtime()
    body = b"x" * 1000
    res = ok(rt.request(url=transport.url("/bytes/3000"), method="POST", data=body))
    profile = res["profile"]
    assert len(res["data"]) == 3000
    assert len(body) + len("POST /bytes/3000 HTTP/1.1\r\n\r\n") < profile["sendBytesCount"]
    assert profile["sendBytesCount"] < len(body) + 4096  # a head, not a second body
    assert 3000 + len("HTTP/1.1 200 OK\r\n\r\n") < profile["receivedBytedCount"] < 3000 + 4096


def test_download_max_bytes(transport: Adapter) -> None:
    rt = transport.runtime({"limits": {"downloadMaxBytes": 1000}})
    error = fails(rt.downloadFile(url=transport.url("/bytes/5000")))
    assert error.errno == Errno.FILE_TOO_LARGE


def test_upload_progress_and_form(transport: Adapter) -> None:
    rt = transport.runtime()
    content = os.urandom(300_000)
    path = os.path.join(rt.env["USER_DATA_PATH"], "photo.jpg")
    with open(path, "wb") as f:
        f.write(content)
    task = rt.uploadFile(
        url=transport.url("/upload"), filePath=path, name="file", formData={"user": "ft", "n": 1}
    )
    progress = Progress(task)
    res = ok(task)
    events = progress.wait()
    assert res["errMsg"] == "uploadFile:ok" and res["statusCode"] == 200
    assert isinstance(res["data"], str)
    form = json.loads(res["data"])
    assert form["fields"] == {"user": "ft", "n": "1"}
    assert form["files"]["file"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert form["content_length"] == form["received"]
    last = events[-1]
    assert last["progress"] == 100
    assert last["totalBytesSent"] == last["totalBytesExpectedToSend"] == form["content_length"]
