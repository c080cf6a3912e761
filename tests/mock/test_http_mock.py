"""The HTTP mock: route matching, scripted replies, timing on the loop, failures, the record."""

from __future__ import annotations

import math
import re
import threading
from typing import Any, Dict, Iterator, List

import pytest

import ftcore
from ftcore import Errno, FtError
from ftcore.testing import MockRequest, MockTransport, Reply
from ftcore.transports import HttpRequest

API = "https://api.example.com"


@pytest.fixture
def mock() -> MockTransport:
    return MockTransport()


@pytest.fixture
def rt(mock: MockTransport) -> Iterator[ftcore.Runtime]:
    with mock.make_runtime() as runtime:
        yield runtime


def fails(task: Any) -> FtError:
    with pytest.raises(FtError) as info:
        task.result(timeout=5)
    return info.value


# -- matching ------------------------------------------------------------------------------------


def test_exact_url_ignores_the_query_unless_the_route_has_one(mock: MockTransport, rt: Any) -> None:
    mock.http.add("GET", API + "/search?q=1&lang=en", body="with query")
    mock.http.add("GET", "HTTPS://API.example.com:443/search", body="any query")
    assert rt.request(url=API + "/search?lang=en&q=1").result(5)["data"] == "with query"
    assert rt.request(url=API + "/search", data={"q": 2}).result(5)["data"] == "any query"
    assert mock.requests[1].params == {"q": "2"}


def test_prefix_regex_any_method_and_first_match_wins(mock: MockTransport, rt: Any) -> None:
    mock.http.add("GET", re.compile(r"/items/\d+$"), body="item")
    mock.http.add("*", API + "/items/", prefix=True, body="prefix")
    mock.http.add(None, API, prefix=True, body="fallback")
    assert rt.request(url=API + "/items/42").result(5)["data"] == "item"
    assert rt.request(url=API + "/items/abc", method="DELETE").result(5)["data"] == "prefix"
    assert rt.request(url=API + "/other", method="put").result(5)["data"] == "fallback"


def test_a_queue_is_consumed_in_order_then_later_routes_answer(
    mock: MockTransport, rt: Any
) -> None:
    route = mock.http.add("GET", API + "/poll", [Reply(status=503), Reply(json={"ready": True})])
    mock.http.add("GET", API + "/poll", status=410)
    codes = [rt.request(url=API + "/poll").result(5)["statusCode"] for _ in range(3)]
    assert codes == [503, 200, 410]
    assert route.exhausted and len(route.calls) == 2


def test_times_limits_a_route(mock: MockTransport, rt: Any) -> None:
    once = mock.http.add("GET", API + "/x", body="first", times=1)
    mock.http.add("GET", API + "/x", body="then")
    assert [rt.request(url=API + "/x").result(5)["data"] for _ in range(3)] == [
        "first",
        "then",
        "then",
    ]
    assert len(once.calls) == 1 and once.exhausted


def test_a_handler_sees_the_request_and_builds_the_reply(mock: MockTransport, rt: Any) -> None:
    def handler(request: MockRequest) -> Reply:
        return Reply(json={"got": request.json(), "ua": request.header("X-App")})

    mock.http.add("POST", API + "/echo", handler)
    res = rt.request(
        url=API + "/echo", method="POST", data={"a": 1}, header={"x-app": "demo"}
    ).result(5)
    assert res["data"] == {"got": {"a": 1}, "ua": "demo"}


def test_unmatched_requests_fail_as_connection_refused_naming_the_url(rt: Any) -> None:
    error = fails(rt.request(url=API + "/nowhere"))
    assert error.errno == Errno.CONNECTION_REFUSED
    assert "no mock route for GET %s/nowhere" % API in error.errMsg


def test_bad_route_arguments_raise_at_once(mock: MockTransport) -> None:
    with pytest.raises(ValueError):
        Reply(body=b"x", json={})
    with pytest.raises(ValueError):
        Reply(error="meltdown")
    with pytest.raises(TypeError):
        mock.http.add("GET", API, Reply(), status=201)
    with pytest.raises(TypeError):
        mock.http.add("GET", API, [])
    with pytest.raises(ValueError):
        mock.http.add("GET", re.compile("x"), prefix=True)


# -- replies -------------------------------------------------------------------------------------


def test_reply_kinds_and_default_headers(mock: MockTransport, rt: Any) -> None:
    mock.http.add(
        "GET", API + "/json", json={"n": 1}, headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    )
    mock.http.add("GET", API + "/text", body="你好")
    mock.http.add(
        "GET", API + "/bytes", body=b"\x00\x01", headers={"Content-Type": "application/x-raw"}
    )
    res = rt.request(url=API + "/json").result(5)
    assert res["data"] == {"n": 1} and res["cookies"] == ["a=1", "b=2"]
    assert res["header"]["Content-Type"].startswith("application/json")
    res = rt.request(url=API + "/text").result(5)
    assert res["data"] == "你好" and res["header"]["Content-Length"] == str(len("你好".encode()))
    res = rt.request(url=API + "/bytes", responseType="arraybuffer").result(5)
    assert res["data"] == b"\x00\x01" and res["header"]["Content-Type"] == "application/x-raw"


def test_head_gets_headers_without_a_body(mock: MockTransport, rt: Any) -> None:
    mock.http.add("HEAD", API + "/doc", body=b"12345")
    res = rt.request(url=API + "/doc", method="HEAD").result(5)
    assert res["data"] == "" and res["header"]["Content-Length"] == "5"


def test_content_length_false_sends_no_length(mock: MockTransport, rt: Any) -> None:
    mock.http.add("GET", API + "/stream", chunks=[b"a", b"b"], content_length=False)
    res = rt.request(url=API + "/stream").result(5)
    assert res["data"] == "ab" and "Content-Length" not in res["header"]


def test_gzip_bodies_are_decoded_like_a_real_transport(mock: MockTransport, rt: Any) -> None:
    import gzip

    mock.http.add(
        "GET", API + "/gz", body=gzip.compress(b'{"z": 1}'), headers={"Content-Encoding": "gzip"}
    )
    assert rt.request(url=API + "/gz").result(5)["data"] == {"z": 1}


def test_chunks_arrive_as_separate_pieces(mock: MockTransport, rt: Any) -> None:
    mock.http.add(
        "GET", API + "/feed", chunks=["data: 1\n", "data: 2\n", b"data: 3\n"], chunk_delay=0.01
    )
    task = rt.request(url=API + "/feed", enableChunked=True)
    pieces: List[bytes] = []
    task.onChunkReceived(lambda res: pieces.append(res["data"]))
    assert task.result(5)["data"] == ""
    assert pieces == [b"data: 1\n", b"data: 2\n", b"data: 3\n"]


def test_redirects_are_scripted_3xx_followed_by_the_core(mock: MockTransport, rt: Any) -> None:
    mock.http.add("POST", API + "/old", Reply.redirect("/new", status=303))
    mock.http.add("GET", API + "/new", json={"moved": True})
    res = rt.request(url=API + "/old", method="POST", data={"a": 1}).result(5)
    assert res["data"] == {"moved": True}
    assert [(r.method, r.url, r.body) for r in mock.requests] == [
        ("POST", API + "/old", b'{"a":1}'),
        ("GET", API + "/new", b""),
    ]
    res = rt.request(url=API + "/old", method="POST", redirect="manual").result(5)
    assert res["statusCode"] == 303 and res["header"]["Location"] == "/new"


# -- timing: delays are loop timers, so timeouts and aborts behave as with a server ----------------


def test_a_delay_longer_than_the_timeout_times_out(mock: MockTransport, rt: Any) -> None:
    mock.http.add("GET", API + "/slow", json={}, delay=5)
    error = fails(rt.request(url=API + "/slow", timeout=100))
    assert error.errMsg == "request:fail timeout" and error.errno == Errno.TIMEOUT
    assert mock.requests[0].aborted


def test_a_delay_shorter_than_the_timeout_answers(mock: MockTransport, rt: Any) -> None:
    mock.http.add("GET", API + "/slowish", json={"ok": 1}, delay=0.05)
    assert rt.request(url=API + "/slowish", timeout=2000).result(5)["data"] == {"ok": 1}


def test_abort_while_the_server_is_thinking(mock: MockTransport, rt: Any) -> None:
    mock.http.add("GET", API + "/never", delay=math.inf)
    task = rt.request(url=API + "/never")
    headers: List[Any] = []
    task.onHeadersReceived(headers.append)
    seen = threading.Event()
    rt.loop.call_soon_threadsafe(lambda: rt.loop.call_later(0.05, seen.set))
    assert seen.wait(5)
    task.abort()
    error = fails(task)
    assert error.errMsg == "request:fail abort" and headers == []
    assert mock.requests[0].aborted


def test_abort_mid_body_stops_the_pieces(mock: MockTransport, rt: Any) -> None:
    mock.http.add("GET", API + "/drip", chunks=[b"x"] * 50, chunk_delay=0.02)
    task = rt.request(url=API + "/drip", enableChunked=True)
    got = threading.Event()
    count: List[int] = []

    def on_chunk(res: Dict[str, Any]) -> None:
        count.append(1)
        if len(count) == 3:
            task.abort()
            got.set()

    task.onChunkReceived(on_chunk)
    assert got.wait(5)
    assert fails(task).errMsg == "request:fail abort"
    assert len(count) == 3


def test_headers_before_a_slow_body_then_timeout(mock: MockTransport, rt: Any) -> None:
    mock.http.add("GET", API + "/half", chunks=[b"a", b"b"], chunk_delay=5)
    task = rt.request(url=API + "/half", timeout=150)
    statuses: List[int] = []
    heard = threading.Event()
    task.onHeadersReceived(lambda res: (statuses.append(res["statusCode"]), heard.set()))
    assert fails(task).errno == Errno.TIMEOUT
    assert heard.wait(5) and statuses == [200]


# -- failures --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, errno",
    [
        ("refused", Errno.CONNECTION_REFUSED),
        ("tls", Errno.TLS),
        ("dns", Errno.NAME_NOT_RESOLVED),
        ("network", Errno.NETWORK),
    ],
)
def test_connection_failures(mock: MockTransport, rt: Any, kind: str, errno: int) -> None:
    mock.http.add("GET", API + "/down", error=kind)
    task = rt.request(url=API + "/down")
    headers: List[Any] = []
    task.onHeadersReceived(headers.append)
    error = fails(task)
    assert error.errno == errno and error.errMsg.startswith("request:fail ")
    assert headers == []


def test_reset_mid_body_after_the_headers(mock: MockTransport, rt: Any) -> None:
    mock.http.add(
        "GET", API + "/cut", chunks=[b"partial"], error="reset", headers={"Content-Length": "100"}
    )
    task = rt.request(url=API + "/cut")
    headers: List[Any] = []
    heard = threading.Event()
    task.onHeadersReceived(lambda res: (headers.append(res), heard.set()))
    error = fails(task)
    assert error.errMsg == "request:fail connection reset" and error.errno == Errno.CONNECTION_RESET
    assert heard.wait(5) and headers[0]["statusCode"] == 200


def test_an_exception_among_the_chunks_ends_the_body(mock: MockTransport, rt: Any) -> None:
    mock.http.add("GET", API + "/odd", chunks=[b"ok", FtError(Errno.BAD_RESPONSE, "bad chunk")])
    assert fails(rt.request(url=API + "/odd")).errMsg == "request:fail bad chunk"
    mock.http.add("GET", API + "/oserror", error=ConnectionAbortedError("boom"))
    error = fails(rt.request(url=API + "/oserror"))
    assert error.errno == Errno.NETWORK and "boom" in error.errMsg


def test_a_handler_that_raises_fails_the_exchange(mock: MockTransport, rt: Any) -> None:
    def handler(request: MockRequest) -> Reply:
        raise RuntimeError("handler bug")

    mock.http.add("GET", API + "/bug", handler)
    assert "handler bug" in fails(rt.request(url=API + "/bug")).errMsg


# -- the record, and the transport on its own ------------------------------------------------------


def test_every_request_is_recorded_with_headers_and_body(mock: MockTransport, rt: Any) -> None:
    mock.http.add("PUT", API + "/doc", status=204)
    res = rt.request(url=API + "/doc", method="PUT", data="hello", header={"X-Trace": "1"}).result(
        5
    )
    assert res["statusCode"] == 204
    [seen] = mock.requests
    assert (seen.method, seen.url, seen.body, seen.text) == ("PUT", API + "/doc", b"hello", "hello")
    assert seen.header("x-trace") == "1" and seen.header("content-type") == "application/json"
    assert seen.route is mock.http.routes[0] and seen.route.calls == [seen]


class RecordingSink:
    def __init__(self) -> None:
        self.events: List[Any] = []
        self.done = threading.Event()

    def sent(self, nbytes: int) -> None:
        self.events.append(("sent", nbytes))

    def headers(self, status: int, headers: Any, info: Dict[str, Any]) -> None:
        self.events.append(("headers", status))

    def body(self, chunk: Any) -> None:
        self.events.append(("body", bytes(chunk)))

    def end(self, info: Dict[str, Any]) -> None:
        self.events.append(("end", info["sendBytesCount"], info["receivedBytedCount"]))
        self.done.set()

    def error(self, error: Exception) -> None:
        self.events.append(("error", error))
        self.done.set()


def test_a_streamed_body_is_drained_piece_by_piece_reporting_sent(
    mock: MockTransport, rt: Any
) -> None:
    mock.http.add("POST", API + "/up", body="stored")
    transport = rt.transport("http")
    sink = RecordingSink()
    request = HttpRequest("POST", API + "/up", [], body=iter([b"abc", b"", b"defg"]), body_length=7)
    transport.start(request, sink)
    assert sink.done.wait(5)
    assert sink.events == [
        ("sent", 3),
        ("sent", 4),
        ("headers", 200),
        ("body", b"stored"),
        ("end", 7, 6),
    ]
    assert mock.requests[0].body == b"abcdefg"


def test_a_body_that_fails_while_streaming_fails_the_exchange(mock: MockTransport, rt: Any) -> None:
    mock.http.add("POST", API + "/up", body="stored")

    def body() -> Iterator[bytes]:
        yield b"abc"
        raise FtError(Errno.INVALID_DATA, "file changed")

    sink = RecordingSink()
    rt.transport("http").start(
        HttpRequest("POST", API + "/up", [], body=body(), body_length=9), sink
    )
    assert sink.done.wait(5)
    assert sink.events[0] == ("sent", 3) and sink.events[1][0] == "error"
    assert sink.events[1][1].errno == Errno.INVALID_DATA


def test_verify_reports_unused_routes_and_replies(mock: MockTransport, rt: Any) -> None:
    mock.http.add("GET", API + "/used", body="x")
    mock.http.add("GET", API + "/queue", [Reply(), Reply()])
    mock.http.add("GET", API + "/unused", body="x")
    rt.request(url=API + "/used").result(5)
    rt.request(url=API + "/queue").result(5)
    with pytest.raises(AssertionError) as info:
        mock.verify()
    assert "/unused" in str(info.value) and "1 unused" in str(info.value)
    mock.reset()
    mock.verify()
    assert mock.requests == []


def test_one_mock_serves_several_runtimes_and_overrides_builtins(mock: MockTransport) -> None:
    mock.http.add("GET", API + "/x", body="mocked")
    with ftcore.Runtime(plugins=[mock]) as one, mock.make_runtime() as two:
        assert one.request(url=API + "/x").result(5)["data"] == "mocked"
        assert two.request(url=API + "/x").result(5)["data"] == "mocked"
    assert len(mock.requests) == 2


def test_without_the_loop_thread_the_host_drives_the_mock(mock: MockTransport) -> None:
    mock.http.add("GET", API + "/embedded", json={"ok": True}, delay=0.01)
    rt = mock.make_runtime(autostart=False)
    try:
        task = rt.request(url=API + "/embedded")
        for _ in range(200):
            if task.done():
                break
            rt.loop.run_once(0.05)
        assert task.result(0)["data"] == {"ok": True}
    finally:
        rt.close()
