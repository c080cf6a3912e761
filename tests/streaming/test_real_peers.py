"""Streaming over real sockets (the urllib3 transport): chunked SSE over TCP and TLS with
characters cut across chunks, a stall that hits the timeout, and aborts (from a listener, by
leaving `iter_events()`) that the server sees as a closed connection within 100 ms.
Flow control with a 64 MiB body: test_flow_control.py."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List

import pytest

from ftcore import Errno, FtError
from tests.streaming.peer import PeerConn, StreamPeer

TOKENS = ["你", "好", "，", "世界", "😀", "!", " ok"]


def llm_stream() -> bytes:
    """An LLM-like answer: one JSON event per token, then [DONE]."""
    body = "".join('data: {"token": "%s"}\n\n' % token for token in TOKENS)
    return (": keep-alive\n\n" + body + "event: done\ndata: [DONE]\n\n").encode("utf-8")


def cut_everywhere(data: bytes, size: int = 5) -> List[bytes]:
    """Pieces of `size` bytes: multi-byte characters end up across two chunks."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def serve_llm(conn: PeerConn) -> None:
    conn.read_request()
    conn.respond()
    for piece in cut_everywhere(llm_stream()):
        conn.send(piece)
        time.sleep(0.002)  # separate reads, so the cuts reach the client as cut
    conn.end()
    conn.client_closed(1.0)


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_chunked_sse_cut_mid_character(
    tls: bool,
    stream_peer: Callable[..., StreamPeer],
    make_runtime: Callable[..., Any],
    tls_config: Dict[str, Any],
) -> None:
    peer = stream_peer(serve_llm, tls=tls)
    rt = make_runtime(tls_config if tls else None)
    task = rt.request(url=peer.url + "/chat", enableChunked=True)
    heard: List[Dict[str, Any]] = []
    task.onServerSentEvent(heard.append)
    text: List[str] = []
    task.onTextChunkReceived(lambda res: text.append(res["data"]))
    events = list(task.iter_events())
    assert task.result(5)["statusCode"] == 200
    tokens = [e["data"] for e in events if e["event"] == "message"]
    assert tokens == ['{"token": "%s"}' % t for t in TOKENS]
    assert events[-1] == {"event": "done", "data": "[DONE]", "id": "", "retry": None}
    assert heard == events
    assert "".join(text) == llm_stream().decode("utf-8")
    assert len(text) > 10 and all("\ufffd" not in piece for piece in text)


def test_a_server_stalling_mid_event_hits_the_timeout(
    stream_peer: Callable[..., StreamPeer], make_runtime: Callable[..., Any]
) -> None:
    def stall(conn: PeerConn) -> None:
        conn.read_request()
        conn.respond()
        conn.send(b"data: complete\n\n")
        conn.send(b"data: half of an ev")
        conn.release.wait()

    peer = stream_peer(stall)
    task = make_runtime().request(url=peer.url, enableChunked=True, timeout=400)
    got = []
    started = time.monotonic()
    with pytest.raises(FtError) as info:
        for event in task.iter_events():
            got.append(event["data"])
    assert info.value.errno == Errno.TIMEOUT
    assert got == ["complete"]  # the half event is never dispatched
    assert 0.3 < time.monotonic() - started < 5


def endless(conn: PeerConn) -> None:
    conn.read_request()
    conn.respond()
    conn.drip((b"data: %d\n\n" % i for i in range(100000)), interval=0.01)


def test_abort_from_a_listener_closes_the_connection_at_once(
    stream_peer: Callable[..., StreamPeer], make_runtime: Callable[..., Any]
) -> None:
    peer = stream_peer(endless)
    task = make_runtime().request(url=peer.url, enableChunked=True)
    aborted_at: List[float] = []

    def on_event(event: Dict[str, Any]) -> None:
        if event["data"] == "3" and not aborted_at:
            aborted_at.append(time.monotonic())
            task.abort()

    task.onServerSentEvent(on_event)
    with pytest.raises(FtError) as info:
        task.result(10)
    assert info.value.errno == Errno.ABORT
    assert_closed_soon(peer.conn(1), aborted_at[0])


def test_breaking_out_of_iter_events_closes_the_connection_at_once(
    stream_peer: Callable[..., StreamPeer], make_runtime: Callable[..., Any]
) -> None:
    peer = stream_peer(endless)
    task = make_runtime().request(url=peer.url, enableChunked=True)
    for event in task.iter_events():
        if event["data"] == "3":
            break
    left_at = time.monotonic()
    with pytest.raises(FtError) as info:
        task.result(10)
    assert info.value.errno == Errno.ABORT
    assert_closed_soon(peer.conn(1), left_at)


def assert_closed_soon(conn: PeerConn, since: float) -> None:
    deadline = time.monotonic() + 5
    while conn.closed_at is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert conn.closed_at is not None, "the server never saw the connection closed"
    assert conn.closed_at - since < 0.1


def test_lines_of_an_ndjson_stream_over_tls(
    stream_peer: Callable[..., StreamPeer],
    make_runtime: Callable[..., Any],
    tls_config: Dict[str, Any],
) -> None:
    rows = ['{"n": %d, "s": "行%d"}' % (i, i) for i in range(200)]
    raw = ("\r\n".join(rows)).encode("utf-8")  # CRLF ends, and no end after the last row

    def ndjson(conn: PeerConn) -> None:
        conn.read_request()
        conn.respond(headers=[("Content-Type", "application/x-ndjson")])
        for piece in cut_everywhere(raw, 333):
            conn.send(piece)
        conn.end()
        conn.client_closed(1.0)

    peer = stream_peer(ndjson, tls=True)
    task = make_runtime(tls_config).request(url=peer.url, enableChunked=True)
    assert list(task.iter_lines()) == rows


def test_async_iteration_over_a_real_stream(
    stream_peer: Callable[..., StreamPeer], make_runtime: Callable[..., Any]
) -> None:
    import asyncio

    peer = stream_peer(serve_llm)
    rt = make_runtime()

    async def main() -> List[str]:
        task = rt.request(url=peer.url, enableChunked=True)
        return [e["data"] async for e in task.aiter_events()]

    assert len(asyncio.run(main())) == len(TOKENS) + 1


def test_many_threads_iterating_their_own_streams(
    stream_peer: Callable[..., StreamPeer], make_runtime: Callable[..., Any]
) -> None:
    peer = stream_peer(serve_llm)
    rt = make_runtime()
    counts: List[int] = []

    def consume() -> None:
        task = rt.request(url=peer.url, enableChunked=True)
        counts.append(sum(1 for _ in task.iter_events()))

    threads = [threading.Thread(target=consume) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert counts == [len(TOKENS) + 1] * 8
