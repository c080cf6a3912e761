"""API.md §10 through the mock transport: text, line and SSE listeners, the iterators (sync and
async), their end and failure, late starts, leaving early, and the bound a transport that
cannot pause puts on a lagging consumer. Real sockets: test_real_peers.py.

The mock answers as fast as the loop runs, so the whole body may be in before the next line of
the test: a test that needs its listener or iterator there before the first chunk gives the
reply a `delay`; one that attaches a listener late waits for the loop (`settle`)."""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any, Dict, List

import pytest

from ftcore import Errno, FtError
from ftcore.testing import FtMock

API = "https://api.example.com"
SSE = {"Content-Type": "text/event-stream"}
EMOJI = "😀".encode("utf-8")


def settle(rt: Any) -> None:
    """Wait until the loop ran what was queued so far (a listener attached after the task
    ended hears it from a replay on the loop)."""
    ran = threading.Event()
    rt.loop.call_soon_threadsafe(ran.set)
    assert ran.wait(5)


def collect(task: Any, method: str) -> List[Any]:
    got: List[Any] = []
    getattr(task, method)(got.append)
    return got


def test_listeners_get_text_lines_and_events_cut_anywhere(ft_mock: FtMock) -> None:
    body = "data: 中文\r\n\r\nid: 7\ndata: a😀\ndata: b\n\n: comment\nevent: end\ndata: z\n\ntail"
    raw = body.encode("utf-8")
    ft_mock.http.add(
        "GET", API + "/sse", chunks=[raw[i : i + 3] for i in range(0, len(raw), 3)], headers=SSE
    )
    task = ft_mock.runtime.request(url=API + "/sse", enableChunked=True)
    chunks, texts = collect(task, "onChunkReceived"), collect(task, "onTextChunkReceived")
    lines, events = collect(task, "onLineReceived"), collect(task, "onServerSentEvent")
    res = task.result(5)
    settle(ft_mock.runtime)
    assert res["data"] == "" and res["statusCode"] == 200
    assert b"".join(c["data"] for c in chunks) == raw
    assert "".join(t["data"] for t in texts) == body
    assert all("\ufffd" not in t["data"] for t in texts)  # no character cut in two
    assert [x["data"] for x in lines] == [
        "data: 中文", "", "id: 7", "data: a😀", "data: b", "", ": comment", "event: end",
        "data: z", "", "tail",
    ]  # fmt: skip
    assert events == [
        {"event": "message", "data": "中文", "id": "", "retry": None},
        {"event": "message", "data": "a😀\nb", "id": "7", "retry": None},
        {"event": "end", "data": "z", "id": "7", "retry": None},
    ]


def test_off_removes_a_view_listener(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/t", chunks=["one\n", "two\n"], chunk_delay=0.05)
    task = ft_mock.runtime.request(url=API + "/t", enableChunked=True)
    got: List[Dict[str, Any]] = []

    def first(res: Dict[str, Any]) -> None:
        got.append(res)
        task.offLineReceived(first)

    task.onLineReceived(first)
    task.result(5)
    assert [x["data"] for x in got] == ["one"]


def test_the_charset_of_the_content_type_decodes_text_and_lines(ft_mock: FtMock) -> None:
    raw = "第一行\n第二行".encode("gbk")
    ft_mock.http.add(
        "GET",
        API + "/gbk",
        chunks=[raw[i : i + 1] for i in range(len(raw))],
        headers={"Content-Type": "text/plain; charset=GBK"},
    )
    task = ft_mock.runtime.request(url=API + "/gbk", enableChunked=True)
    assert list(task.iter_lines()) == ["第一行", "第二行"]
    again = ft_mock.runtime.request(url=API + "/gbk", enableChunked=True)
    assert "".join(again.iter_text()) == "第一行\n第二行"


def test_sse_is_utf8_whatever_the_charset_says(ft_mock: FtMock) -> None:
    ft_mock.http.add(
        "GET",
        API + "/e",
        body="data:ok…\n\n".encode("utf-8"),
        headers={"Content-Type": "text/event-stream; charset=windows-1252"},
    )
    task = ft_mock.runtime.request(url=API + "/e", enableChunked=True)
    assert [e["data"] for e in task.iter_events()] == ["ok…"]


def test_every_iterator_sees_the_whole_body_from_its_first_byte(ft_mock: FtMock) -> None:
    raw = b"data: 1\n\n" + EMOJI[:2]
    ft_mock.http.add("GET", API + "/i", chunks=[raw, EMOJI[2:] + b"\ndata: 2\n\n"], headers=SSE)
    task = ft_mock.runtime.request(url=API + "/i", enableChunked=True)
    events = task.iter_events()
    chunks, text, lines = task.iter_chunks(), task.iter_text(), task.iter_lines()
    assert [e["data"] for e in events] == ["1", "2"]
    assert b"".join(chunks) == raw + EMOJI[2:] + b"\ndata: 2\n\n"
    assert "".join(text) == "data: 1\n\n😀\ndata: 2\n\n"
    assert list(lines) == ["data: 1", "", "😀", "data: 2", ""]


def test_an_iterator_started_after_the_task_ended_replays_the_body(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/done", chunks=["a\n", "b"])
    task = ft_mock.runtime.request(url=API + "/done", enableChunked=True)
    task.result(5)
    assert list(task.iter_lines()) == ["a", "b"]
    assert list(task.iter_lines()) == ["a", "b"]  # and again


def test_a_listener_added_after_the_task_ended_still_hears_the_body(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/late", chunks=["data: x\n\n"], headers=SSE)
    task = ft_mock.runtime.request(url=API + "/late", enableChunked=True)
    task.result(5)
    heard = threading.Event()
    task.onServerSentEvent(lambda res: heard.set())
    assert heard.wait(5)


def test_an_iterator_raises_the_tasks_error(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/cut", chunks=["one\n", "tw"], error="reset")
    task = ft_mock.runtime.request(url=API + "/cut", enableChunked=True)
    got = []
    with pytest.raises(FtError) as info:
        for line in task.iter_lines():
            got.append(line)
    assert got == ["one"]  # the unfinished line is not made up at a failure
    assert info.value.errno == Errno.CONNECTION_RESET
    assert info.value.errMsg == "request:fail connection reset"
    with pytest.raises(FtError):
        task.result(5)


def test_the_timeout_ends_an_iterator(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/slow", chunks=["data: 1\n\n", "data: 2\n\n"], chunk_delay=30)
    task = ft_mock.runtime.request(url=API + "/slow", enableChunked=True, timeout=200)
    events = task.iter_events()
    assert next(events)["data"] == "1"
    with pytest.raises(FtError) as info:
        next(events)
    assert info.value.errno == Errno.TIMEOUT


def test_breaking_out_of_an_iterator_aborts_the_task(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/long", chunks=["data: x\n\n"] * 100, chunk_delay=0.01)
    task = ft_mock.runtime.request(url=API + "/long", enableChunked=True)
    for event in task.iter_events():
        assert event["data"] == "x"
        break
    with pytest.raises(FtError) as info:
        task.result(5)
    assert info.value.errno == Errno.ABORT
    assert ft_mock.requests[0].aborted


def test_an_exception_in_the_loop_body_aborts_the_task(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/long", chunks=["x\n"] * 100, chunk_delay=0.01)
    task = ft_mock.runtime.request(url=API + "/long", enableChunked=True)

    def consume() -> None:
        for _ in task.iter_lines():
            raise KeyError("the caller's bug")

    with pytest.raises(KeyError):
        consume()
    gc.collect()  # not needed on CPython (the frame drops the iterator); harmless elsewhere
    with pytest.raises(FtError) as info:
        task.result(5)
    assert info.value.errno == Errno.ABORT


def test_an_iterator_never_used_and_dropped_aborts_the_task(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/long", chunks=["x\n"] * 100, chunk_delay=0.01)
    task = ft_mock.runtime.request(url=API + "/long", enableChunked=True)
    task.iter_chunks()  # dropped at once
    with pytest.raises(FtError) as info:
        task.result(5)
    assert info.value.errno == Errno.ABORT


def test_an_iterator_finished_does_not_abort_anything(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/ok", chunks=["a\n"])
    task = ft_mock.runtime.request(url=API + "/ok", enableChunked=True)
    lines = task.iter_lines()
    assert list(lines) == ["a"]
    lines.close()
    del lines
    assert task.result(5)["errMsg"] == "request:ok"


def test_iterators_need_enable_chunked(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/x", body="x")
    task = ft_mock.runtime.request(url=API + "/x")
    with pytest.raises(ValueError, match="enableChunked"):
        task.iter_events()
    task.result(5)


def test_iterating_on_the_loop_thread_raises(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/x", chunks=["a\n"], headers=SSE, delay=0.05)
    task = ft_mock.runtime.request(url=API + "/x", enableChunked=True)
    caught: List[BaseException] = []

    def on_headers(res: Dict[str, Any]) -> None:
        try:
            next(task.iter_lines())
        except RuntimeError as error:
            caught.append(error)

    task.onHeadersReceived(on_headers)
    try:
        task.result(5)
    except FtError:
        pass  # the iterator left at once aborts the task, unless the error still holds it
    assert caught and "deadlock" in str(caught[0])


def test_a_lagging_consumer_fails_a_transport_that_cannot_pause(ft_mock: FtMock) -> None:
    runtime = ft_mock.make_runtime({"limits": {"streamBufferBytes": 1000}})
    ft_mock.http.add("GET", API + "/big", chunks=[b"x" * 300] * 20, chunk_delay=0.001, delay=0.05)
    task = runtime.request(url=API + "/big", enableChunked=True)
    chunks = task.iter_chunks()
    first = next(chunks)  # then the consumer stops reading: the mock cannot pause
    assert first == b"x" * 300
    with pytest.raises(FtError) as info:
        task.result(5)
    assert info.value.errno == Errno.STREAM_BUFFER_FULL == 600022
    assert info.value.errMsg == "request:fail stream buffer full"
    received = len(first) + sum(len(c) for c in _drain_until_error(chunks))
    assert received <= 1000 + 300 + 300  # the bound, a chunk over it, and the one in hand


def _drain_until_error(chunks: Any) -> List[bytes]:
    got = []
    try:
        for chunk in chunks:
            got.append(chunk)
    except FtError:
        pass
    return got


def test_a_consumer_that_keeps_up_is_never_failed(ft_mock: FtMock) -> None:
    runtime = ft_mock.make_runtime({"limits": {"streamBufferBytes": 1000}})
    ft_mock.http.add("GET", API + "/big", chunks=[b"x" * 300] * 50, chunk_delay=0.002, delay=0.05)
    task = runtime.request(url=API + "/big", enableChunked=True)
    assert sum(len(c) for c in task.iter_chunks()) == 300 * 50


def test_a_line_past_the_parser_limit_fails_the_task(ft_mock: FtMock) -> None:
    from ftcore._api.streaming import lines

    ft_mock.http.add("GET", API + "/endless", chunks=["x" * 100] * 5)
    task = ft_mock.runtime.request(url=API + "/endless", enableChunked=True)
    original = lines.MAX_LINE
    lines.LineSplitter.__init__.__defaults__ = (250,)  # type: ignore[attr-defined]
    try:
        with pytest.raises(FtError) as info:
            list(task.iter_lines())
    finally:
        lines.LineSplitter.__init__.__defaults__ = (original,)  # type: ignore[attr-defined]
    assert info.value.errno == Errno.RESPONSE_TOO_LARGE
    assert "line longer than 250" in info.value.errMsg


# -- asyncio ------------------------------------------------------------------------------------


def test_async_iterators(ft_mock: FtMock) -> None:
    ft_mock.http.add(
        "GET", API + "/a", chunks=["data: 1\n\n", "data: 2\n", "\n"], chunk_delay=0.01, headers=SSE
    )

    async def main() -> List[str]:
        task = ft_mock.runtime.request(url=API + "/a", enableChunked=True)
        data = [event["data"] async for event in task.aiter_events()]
        res = await task
        assert res["errMsg"] == "request:ok"
        return data

    assert asyncio.run(main()) == ["1", "2"]


def test_async_iterator_raises_and_aborts(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/cut", chunks=["a\n"], error="reset")
    ft_mock.http.add("GET", API + "/long", chunks=["x\n"] * 100, chunk_delay=0.01)

    async def main() -> None:
        task = ft_mock.runtime.request(url=API + "/cut", enableChunked=True)
        with pytest.raises(FtError):
            async for _ in task.aiter_lines():
                pass
        long = ft_mock.runtime.request(url=API + "/long", enableChunked=True)
        async with long.aiter_text() as text:
            async for _ in text:
                break
        with pytest.raises(FtError) as info:
            await long
        assert info.value.errno == Errno.ABORT

    asyncio.run(main())


def test_a_listener_added_mid_body_hears_the_whole_body_before_success(
    ft_mock: FtMock,
) -> None:
    rt = ft_mock.make_runtime(autostart=False)  # this test runs the loop, pass by pass
    ft_mock.http.add("GET", API + "/two", chunks=["data: a\n\nline", " end"], headers=SSE)
    order: List[str] = []
    task = rt.request(url=API + "/two", enableChunked=True, success=lambda r: order.append("ok"))
    task.onChunkReceived(lambda res: order.append("chunk"))
    while "chunk" not in order:
        rt.loop.run_once(0)
    task.onServerSentEvent(lambda ev: order.append("event " + ev["data"]))
    task.onLineReceived(lambda res: order.append("line " + res["data"]))
    while "ok" not in order:
        rt.loop.run_once(0)
    assert order[-1] == "ok"
    assert [entry for entry in order if entry.startswith("event")] == ["event a"]
    assert [entry for entry in order if entry.startswith("line")] == [
        "line data: a",
        "line ",
        "line line end",
    ]


def test_a_listener_added_after_a_fast_response_still_hears_it_all(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/fast", body="data: a\n\ndata: b\n\n", headers=SSE)
    for _ in range(20):  # as fast as the mock answers: the task may end before the listener
        task = ft_mock.runtime.request(url=API + "/fast", enableChunked=True)
        heard = collect(task, "onServerSentEvent")
        task.result(5)
        settle(ft_mock.runtime)
        assert [event["data"] for event in heard] == ["a", "b"]


def test_iterators_leave_no_chunk_backlog(ft_mock: FtMock, caplog: Any) -> None:
    ft_mock.http.add("GET", API + "/many", chunks=["x\n"] * 200, delay=0.05)
    task = ft_mock.runtime.request(url=API + "/many", enableChunked=True)
    assert len(list(task.iter_lines())) == 200  # (started before the first chunk)
    assert "no onChunkReceived listener" not in caplog.text


def test_chunk_listeners_still_hear_every_chunk_beside_an_iterator(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/many", chunks=["x\n"] * 100, chunk_delay=0.001, delay=0.05)
    task = ft_mock.runtime.request(url=API + "/many", enableChunked=True)
    chunks = collect(task, "onChunkReceived")
    assert len(list(task.iter_lines())) == 100
    task.result(5)
    assert len(chunks) == 100


def test_an_empty_body_yields_nothing(ft_mock: FtMock) -> None:
    ft_mock.http.add("GET", API + "/empty", body=b"")
    for method in ("iter_chunks", "iter_text", "iter_lines", "iter_events"):
        task = ft_mock.runtime.request(url=API + "/empty", enableChunked=True)
        assert list(getattr(task, method)()) == [], method


def test_a_big_last_line_at_the_end_is_no_lagging_consumer(ft_mock: FtMock) -> None:
    runtime = ft_mock.make_runtime({"limits": {"streamBufferBytes": 1000}})
    ft_mock.http.add("GET", API + "/one-line", chunks=["x" * 900, "y" * 900], delay=0.05)
    task = runtime.request(url=API + "/one-line", enableChunked=True)
    lines = task.iter_lines()
    assert list(lines) == ["x" * 900 + "y" * 900]  # held by the splitter, then out at the end
    assert task.result(5)["statusCode"] == 200
