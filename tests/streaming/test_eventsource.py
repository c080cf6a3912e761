"""`rt.connectEventSource` against real peers: open, messages and custom types, reconnection
with `Last-Event-ID` after the server's `retry`, the stop rules (HTTP errors, 204, a wrong
Content-Type: no reconnection), `close()` during the reconnect delay, and `rt.close()`."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List

import pytest

import ftcore
from ftcore import EventSource
from ftcore.testing import FtMock
from tests.streaming.peer import PeerConn, StreamPeer

WAIT = 5.0


class Journal:
    """Every event of an EventSource, in order, with a way to wait for one."""

    def __init__(self, source: EventSource, *types: str) -> None:
        self.entries: List[Dict[str, Any]] = []
        self._cond = threading.Condition()
        source.onOpen(self._note)
        source.onMessage(self._note)
        source.onError(self._note)
        for kind in types:
            source.addEventListener(kind, self._note)

    def _note(self, res: Dict[str, Any]) -> None:
        with self._cond:
            self.entries.append(dict(res, at=time.monotonic()))
            self._cond.notify_all()

    def wait(self, test: Callable[[List[Dict[str, Any]]], bool], timeout: float = WAIT) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: test(self.entries), timeout), self.entries

    def of(self, kind: str) -> List[Dict[str, Any]]:
        return [e for e in self.entries if e["type"] == kind]


def count(kind: str, n: int) -> Callable[[List[Dict[str, Any]]], bool]:
    return lambda entries: sum(1 for e in entries if e["type"] == kind) >= n


def test_open_messages_and_custom_types(
    stream_peer: Callable[..., StreamPeer], make_runtime: Callable[..., Any]
) -> None:
    def serve(conn: PeerConn) -> None:
        conn.read_request()
        conn.respond()
        conn.send(b"data: hello\n\nevent: delta\nid: 9\ndata: \xe4\xb8")
        conn.send(b"\xad\n\nevent: unheard\ndata: x\n\ndata: bye\n\n")
        conn.release.wait()

    peer = stream_peer(serve)
    source = make_runtime().connectEventSource(
        {"url": peer.url + "/events", "header": {"X-A": "1"}}
    )
    assert source.readyState == EventSource.CONNECTING == 0
    journal = Journal(source, "delta")
    journal.wait(count("message", 2))
    assert source.readyState == EventSource.OPEN == 1
    open_, hello, delta, bye = journal.entries
    assert open_["type"] == "open" and open_["statusCode"] == 200
    origin = peer.url
    assert hello == dict(hello, type="message", data="hello", lastEventId="", origin=origin)
    assert delta == dict(delta, type="delta", data="中", lastEventId="9")
    assert bye["data"] == "bye" and bye["lastEventId"] == "9"
    head = peer.conn(1).head.decode("latin-1").lower()
    assert "accept: text/event-stream" in head and "x-a: 1" in head
    assert "last-event-id" not in head
    source.close()
    assert source.readyState == EventSource.CLOSED == 2


def test_reconnects_with_last_event_id_after_the_servers_retry(
    stream_peer: Callable[..., StreamPeer], make_runtime: Callable[..., Any]
) -> None:
    ended_at: List[float] = []

    def serve(conn: PeerConn) -> None:
        conn.read_request()
        conn.respond()
        if conn.index == 1:
            conn.send("retry: 300\nid: 1\ndata: a\n\nid: …\ndata: b\n\nid: 3\ndata: cut".encode())
            conn.end()  # the stream ends (the last event was never finished)
            ended_at.append(time.monotonic())
            return
        conn.send(b"data: again %s\n\n" % (conn.header("Last-Event-ID") or "").encode("latin-1"))
        conn.release.wait()

    peer = stream_peer(serve)
    # the option says 10 s: only the server's `retry: 300` makes the test pass
    source = make_runtime().connectEventSource(url=peer.url, retry=10000)
    journal = Journal(source)
    journal.wait(count("message", 3))
    (first, error, second) = (journal.of("open")[0], journal.of("error")[0], journal.of("open")[1])
    assert error["readyState"] == 0 and "stream ended" in error["errMsg"]
    assert first["at"] < error["at"] < second["at"]
    delay = peer.conn(2).accepted_at - ended_at[0]
    assert 0.25 < delay < 2.0, delay
    assert peer.conn(2).header("Last-Event-ID") == "…".encode("utf-8").decode("latin-1")
    # the server echoes the header's bytes: the UTF-8 of "…" went out and came back
    assert [m["data"] for m in journal.of("message")] == ["a", "b", "again …"]
    assert source.lastEventId == "…"
    source.close()


@pytest.mark.parametrize(
    "status, headers, reason",
    [
        (204, [("Content-Type", "text/event-stream")], "HTTP status 204"),
        (500, [("Content-Type", "text/event-stream")], "HTTP status 500"),
        (200, [("Content-Type", "text/html")], "content-type 'text/html' is not text/event-stream"),
        (200, [], "content-type '' is not text/event-stream"),
    ],
)
def test_stops_on_an_error_status_a_204_or_a_wrong_type(
    status: int,
    headers: List[Any],
    reason: str,
    stream_peer: Callable[..., StreamPeer],
    make_runtime: Callable[..., Any],
) -> None:
    def serve(conn: PeerConn) -> None:
        conn.read_request()
        conn.respond(status=status, headers=headers, chunked=status != 204)
        if status != 204:
            conn.send(b"data: never\n\n")
            conn.end()
        conn.client_closed(1.0)

    peer = stream_peer(serve)
    source = make_runtime().connectEventSource(url=peer.url, retry=20)
    journal = Journal(source)
    journal.wait(count("error", 1))
    time.sleep(0.3)  # fifteen reconnection times: none may happen
    assert [e["type"] for e in journal.entries] == ["error"]
    error = journal.entries[0]
    assert error["readyState"] == 2 and error["errMsg"] == "connectEventSource:fail " + reason
    assert source.readyState == 2
    assert len(peer.conns) == 1


def test_close_during_the_reconnect_delay(
    stream_peer: Callable[..., StreamPeer], make_runtime: Callable[..., Any]
) -> None:
    def serve(conn: PeerConn) -> None:
        conn.read_request()
        conn.respond()
        conn.send(b"data: once\n\n")
        conn.end()

    peer = stream_peer(serve)
    source = make_runtime().connectEventSource(url=peer.url, retry=300)
    journal = Journal(source)
    journal.wait(count("error", 1))
    assert source.readyState == 0  # waiting to reconnect
    source.close()
    assert source.readyState == 2
    time.sleep(0.6)  # twice the delay: the reconnection was cancelled
    assert len(peer.conns) == 1
    assert [e["type"] for e in journal.entries] == ["open", "message", "error"]


def test_close_from_a_listener_stops_everything_at_once(
    stream_peer: Callable[..., StreamPeer], make_runtime: Callable[..., Any]
) -> None:
    def serve(conn: PeerConn) -> None:
        conn.read_request()
        conn.respond()
        conn.drip((b"data: %d\n\n" % i for i in range(1000)), interval=0.005)

    peer = stream_peer(serve)
    source = make_runtime().connectEventSource(url=peer.url, retry=20)
    got: List[str] = []

    def on_message(res: Dict[str, Any]) -> None:
        got.append(res["data"])
        if res["data"] == "2":
            source.close()

    source.onMessage(on_message)
    conn = peer.conn(1)
    deadline = time.monotonic() + WAIT
    while conn.closed_at is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert conn.closed_at is not None  # the request was aborted
    time.sleep(0.1)
    assert got == ["0", "1", "2"] and len(peer.conns) == 1


def test_network_errors_are_retried(make_runtime: Callable[..., Any]) -> None:
    import socket

    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    source = make_runtime().connectEventSource(url="http://127.0.0.1:%d/" % port, retry=30)
    journal = Journal(source)
    journal.wait(count("error", 3))
    errors = journal.of("error")
    assert all(
        e["readyState"] == 0 and e["errno"] == ftcore.Errno.CONNECTION_REFUSED for e in errors
    )
    source.close()


@pytest.mark.parametrize(
    "options, reason",
    [
        ({"url": "ftp://example.com/"}, "invalid url"),
        ({"url": "http://127.0.0.1:9/", "retry": "soon"}, "invalid retry 'soon'"),
        ({"url": "http://127.0.0.1:9/", "header": ["X-A"]}, "header must be an object"),
    ],
)
def test_bad_options_fail_the_connection(
    options: Dict[str, Any], reason: str, make_runtime: Callable[..., Any]
) -> None:
    source = make_runtime().connectEventSource(options)
    journal = Journal(source)
    journal.wait(count("error", 1))
    assert journal.entries[0]["errMsg"] == "connectEventSource:fail " + reason
    assert source.readyState == 2


def test_the_domain_list_applies(make_runtime: Callable[..., Any]) -> None:
    rt = make_runtime({"domains": {"request": ["api.example.com"]}})
    source = rt.connectEventSource(url="http://127.0.0.1:9/")
    journal = Journal(source)
    journal.wait(count("error", 1))
    assert journal.entries[0]["errno"] == ftcore.Errno.DOMAIN_NOT_ALLOWED
    assert source.readyState == 2


def test_runtime_close_closes_it(
    stream_peer: Callable[..., StreamPeer],
) -> None:
    def serve(conn: PeerConn) -> None:
        conn.read_request()
        conn.respond()
        conn.send(b"data: x\n\n")
        conn.client_closed(WAIT)

    peer = stream_peer(serve)
    rt = ftcore.Runtime(entrypoints=False)
    source = rt.connectEventSource(url=peer.url)
    journal = Journal(source)
    journal.wait(count("message", 1))
    rt.close()
    assert source.readyState == 2
    assert source not in rt.live_tasks()


def test_the_default_ft_forwards_it(ft_mock: FtMock) -> None:
    # a default made (or remade) here is closed at the end: no loop thread may outlive the test
    made_here = ftcore._default is None or ftcore._default.closed
    ft_mock.http.add(
        "GET",
        "https://api.example.com/sse",
        chunks=["data: from the mock\n\n"],
        headers={"Content-Type": "text/event-stream"},
    )
    source = ftcore.ft.connectEventSource(url="https://api.example.com/sse", retry=10000)
    journal = Journal(source)
    journal.wait(count("message", 1))
    assert journal.of("message")[0]["data"] == "from the mock"
    source.close()
    if made_here:
        ftcore.ft.close()
