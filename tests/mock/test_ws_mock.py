"""The WebSocket mock: scripted peers, handshake failures, closes and drops, the record."""

from __future__ import annotations

import math
import queue
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import ftcore
from ftcore import Errno
from ftcore.testing import ANY, MockTransport

URL = "wss://chat.example.com/socket"


@pytest.fixture
def mock() -> MockTransport:
    return MockTransport()


@pytest.fixture
def rt(mock: MockTransport) -> Iterator[ftcore.Runtime]:
    with mock.make_runtime() as runtime:
        yield runtime


class Events:
    """Every event of one SocketTask, in order, waited for without sleeping."""

    def __init__(self, task: Any) -> None:
        self.queue: "queue.Queue[Tuple[str, Dict[str, Any]]]" = queue.Queue()
        self.log: List[Tuple[str, Dict[str, Any]]] = []
        for name in ("Open", "Message", "Error", "Close"):
            getattr(task, "on" + name)(lambda res, name=name: self.queue.put((name, res)))

    def next(self, timeout: float = 5) -> Tuple[str, Dict[str, Any]]:
        event = self.queue.get(timeout=timeout)
        self.log.append(event)
        return event

    def until(self, name: str) -> List[Tuple[str, Dict[str, Any]]]:
        seen = []
        while True:
            event = self.next()
            seen.append(event)
            if event[0] == name:
                return seen


def connect(rt: Any, url: str = URL, **options: Any) -> Tuple[Any, Events]:
    task = rt.connectSocket(url=url, **options)
    return task, Events(task)


def test_messages_on_open_expectations_replies_and_a_server_close(
    mock: MockTransport, rt: Any
) -> None:
    peer = mock.ws.add(URL, headers={"X-Server": "mock"})
    peer.send("welcome").expect("ping").send("pong").expect(b"\x01\x02").send(b"ok").close(
        4000, "bye"
    )
    task, events = connect(rt, header={"X-Token": "t"}, protocols=["chat", "json"])
    name, opened = events.next()
    assert (
        name == "Open" and opened["protocol"] == "chat" and opened["header"]["X-Server"] == "mock"
    )
    assert events.next() == ("Message", {"data": "welcome"})
    task.send({"data": "ping"})
    assert events.next() == ("Message", {"data": "pong"})
    task.send({"data": b"\x01\x02"})
    assert events.next() == ("Message", {"data": b"ok"})
    assert events.next() == ("Close", {"code": 4000, "reason": "bye"})
    [conn] = peer.connections
    assert conn.received == ["ping", b"\x01\x02"] and conn.sent == ["welcome", "pong", b"ok"]
    assert conn.header("x-token") == "t" and conn.protocols == ["chat", "json"]
    assert conn.closed == (4000, "bye") and conn.client_close is None
    mock.verify()


def test_echo_after_the_script_and_a_client_close(mock: MockTransport, rt: Any) -> None:
    mock.ws.add(URL, echo=True, protocol="")
    task, events = connect(rt)
    assert events.next()[0] == "Open"
    for data in ("a", b"b", "c"):
        task.send({"data": data})
    assert [events.next()[1]["data"] for _ in range(3)] == ["a", b"b", "c"]
    task.close({"code": 1000, "reason": "done"})
    assert events.next() == ("Close", {"code": 1000, "reason": "done"})
    conn = mock.ws.connections[0]
    assert conn.client_close == (1000, "done") and not conn.open


def test_messages_sent_before_the_script_expects_them_are_kept(
    mock: MockTransport, rt: Any
) -> None:
    mock.ws.add(URL).wait(0.05).expect("early").send("seen")
    task, events = connect(rt)
    assert events.next()[0] == "Open"
    task.send({"data": "early"})
    assert events.next() == ("Message", {"data": "seen"})


def test_a_drop_is_a_close_with_1006_and_no_error(mock: MockTransport, rt: Any) -> None:
    mock.ws.add(URL).send("hi").drop()
    _, events = connect(rt)
    assert [name for name, _ in events.until("Close")] == ["Open", "Message", "Close"]
    assert events.log[-1][1]["code"] == 1006


@pytest.mark.parametrize("options", [{"status": 403}, {"error": "refused"}, {"error": "tls"}])
def test_a_failed_handshake_fires_error_then_close(
    mock: MockTransport, rt: Any, options: Dict[str, Any]
) -> None:
    mock.ws.add(URL, **options)
    task, events = connect(rt)
    seen = events.until("Close")
    assert [name for name, _ in seen] == ["Error", "Close"]
    assert seen[0][1]["errMsg"].startswith("connectSocket:fail ")
    assert seen[1][1]["code"] == 1006 and task.readyState == task.CLOSED


def test_unmatched_urls_fail_the_handshake(rt: Any) -> None:
    _, events = connect(rt, url="ws://nowhere.example.com/")
    name, res = events.next()
    assert name == "Error" and "no mock route for ws://nowhere.example.com/" in res["errMsg"]
    assert events.next()[0] == "Close"


def test_a_slow_handshake_times_out(mock: MockTransport, rt: Any) -> None:
    mock.ws.add(URL, delay=math.inf)
    _, events = connect(rt, timeout=100)
    name, res = events.next()
    assert name == "Error" and res["errno"] == Errno.TIMEOUT
    assert events.next() == ("Close", {"code": 1006, "reason": ""})


def test_an_unexpected_message_closes_with_1008_and_verify_fails(
    mock: MockTransport, rt: Any
) -> None:
    mock.ws.add(URL).expect(lambda m: m.startswith("hello")).expect("ping")
    task, events = connect(rt)
    assert events.next()[0] == "Open"
    task.send({"data": "hello there"})
    task.send({"data": "pong"})
    assert events.next() == (
        "Close",
        {"code": 1008, "reason": "ftcore.testing: unexpected message"},
    )
    with pytest.raises(AssertionError, match="expected 'ping', received 'pong'"):
        mock.verify()


def test_the_server_side_can_be_driven_from_the_test(mock: MockTransport, rt: Any) -> None:
    mock.ws.add(URL).expect(ANY)
    task, events = connect(rt)
    assert events.next()[0] == "Open"
    conn = mock.ws.connections[0]
    assert conn.open
    conn.push("pushed")
    assert events.next() == ("Message", {"data": "pushed"})
    conn.close(3001, "server going")
    assert events.next() == ("Close", {"code": 3001, "reason": "server going"})


def test_send_after_close_fails_and_runtime_close_fires_on_close(mock: MockTransport) -> None:
    mock.ws.add(URL)
    rt = mock.make_runtime()
    task, events = connect(rt)
    assert events.next()[0] == "Open"
    rt.close()
    name, res = events.next()
    assert name == "Close" and res["code"] == 1001
    assert not mock.ws.connections[0].open


def test_the_global_socket_api_over_the_mock(mock: MockTransport, rt: Any) -> None:
    mock.ws.add(URL, echo=True)
    got: "queue.Queue[Any]" = queue.Queue()
    rt.onSocketMessage(lambda res: got.put(res["data"]))
    rt.onSocketOpen(lambda res: rt.sendSocketMessage({"data": "hi"}))
    rt.connectSocket(url=URL)
    assert got.get(timeout=5) == "hi"


def test_routes_limit_connections_and_reset(mock: MockTransport, rt: Any) -> None:
    mock.ws.add(URL, times=1).send("first")
    mock.ws.add(URL).send("second")
    for expected in ("first", "second"):
        task, events = connect(rt)
        assert events.next()[0] == "Open"
        assert events.next()[1]["data"] == expected
        task.close()
        assert events.until("Close")
    mock.reset()
    assert mock.ws.connections == [] and mock.ws.routes == []
